// Two BFD speakers in this process over loopback, no namespaces: `a` is the agent's side,
// `b` the router's, both at 30 ms x 3. Each test file takes its own /24 of 127.88.0.0/16:
// jest runs files at the same time, and two files binding one address steal each other's
// packets.
import { afterEach } from '@jest/globals';
import type { BfdSessionRunner, BfdSessionSpec, PeerControl } from '../../src/bfd/index.js';
import { waitFor } from '../../src/lab/index.js';

export const FAST_LOOPBACK = { minTxMs: 30, minRxMs: 30, multiplier: 3 };

export interface LoopbackPair {
  /** The agent's side. */
  readonly a: string;
  /** The router's side. */
  readonly b: string;
}

export function loopbackPair(subnet: number): LoopbackPair {
  return { a: `127.88.${subnet}.1`, b: `127.88.${subnet}.2` };
}

/** One side's session towards the other. */
export function sessionFrom(addrs: LoopbackPair, side: 'a' | 'b'): BfdSessionSpec {
  return side === 'a' ? { peer: addrs.b, local: addrs.a, profile: FAST_LOOPBACK } : { peer: addrs.a, local: addrs.b, profile: FAST_LOOPBACK };
}

export function stateOf(m: BfdSessionRunner, peer: string): string | undefined {
  return m.status().find((s) => s.peer === peer)?.state;
}

/** Gives `a` its session towards `b` and `b` its own back; waits until both are Up unless `waitUp` is false. */
export async function connect(a: BfdSessionRunner, b: BfdSessionRunner, addrs: LoopbackPair, opts: { waitUp?: boolean } = {}): Promise<void> {
  await a.setSessions([sessionFrom(addrs, 'a')]);
  await b.setSessions([sessionFrom(addrs, 'b')]);
  if (opts.waitUp ?? true) await waitFor(() => stateOf(a, addrs.b) === 'Up' && stateOf(b, addrs.a) === 'Up', 8000, 20);
}

/** The BGP side of a BfdBgpBinding as a list of what it was told. */
export class RecordingPeers implements PeerControl {
  readonly calls: string[] = [];
  async disablePeer(address: string, reason: string): Promise<void> {
    this.calls.push(`disable ${address} (${reason})`);
  }
  async enablePeer(address: string): Promise<void> {
    this.calls.push(`enable ${address}`);
  }
}

/**
 * Call at a test file's top level: what the returned function is given is stopped after
 * each test, the last made first (a binding before the managers it listens to).
 */
export function stoppedAfterEach(): <T extends { stop(): unknown }>(made: T) => T {
  const made: Array<{ stop(): unknown }> = [];
  afterEach(async () => {
    for (const m of made.splice(0).reverse()) await m.stop();
  });
  return (m) => {
    made.push(m);
    return m;
  };
}
