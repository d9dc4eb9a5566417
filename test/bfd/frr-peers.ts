// Reading FRR bfdd's view of a session (vtysh JSON), shared by the FRR tests.
import type { FrrRouter } from '../../src/lab/index.js';

export interface FrrPeer {
  peer: string;
  status: string;
  id: number;
  'remote-id': number;
  diagnostic: string;
  'remote-diagnostic': string;
  'transmit-interval': number;
  'receive-interval': number;
  'remote-transmit-interval': number;
  'remote-receive-interval': number;
  'remote-detect-multiplier': number;
}

export interface FrrCounters {
  'control-packet-input': number;
  'control-packet-output': number;
  'session-up': number;
  'session-down': number;
}

export async function frrPeer(router: FrrRouter, peer: string): Promise<FrrPeer | undefined> {
  const out = await router.vtysh('show bfd peers json');
  try {
    return (JSON.parse(out) as FrrPeer[]).find((p) => p.peer === peer);
  } catch {
    return undefined;
  }
}

export async function frrCounters(router: FrrRouter, peer: string): Promise<FrrCounters> {
  const all = JSON.parse(await router.vtysh('show bfd peers counters json')) as Array<FrrCounters & { peer: string }>;
  const found = all.find((p) => p.peer === peer);
  if (!found) throw new Error(`FRR has no BFD peer ${peer}`);
  return found;
}
