// BFD state driving a real gobgpd: a BFD session failing disables the BGP peer in gobgpd,
// coming back Up re-enables it. BFD runs between two managers over loopback; gobgpd runs in
// its own namespace and is reached through its unix-socket API.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BfdBgpBinding, BfdManager } from '../../src/bfd/index.js';
import { GobgpClient, GobgpdProcess } from '../../src/bgp/index.js';
import { NetnsSet, waitFor } from '../../src/lab/index.js';

// Its own loopback /24 (test/support/bfd-loopback.ts): files run at the same time.
const A = '127.88.64.1';
const B = '127.88.64.2';
const fast = { minTxMs: 30, minRxMs: 30, multiplier: 3 };

describe('BFD -> gobgpd peer control', () => {
  const ns = new NetnsSet();
  let gobgpd: GobgpdProcess;
  let client: GobgpClient;
  const managers: BfdManager[] = [];

  beforeAll(async () => {
    const node = await ns.create('kbbg');
    gobgpd = new GobgpdProcess({ netns: node });
    await gobgpd.start();
    client = new GobgpClient({ target: gobgpd.target, callTimeoutMs: 5000 });
    await client.startBgp({ asn: 64512, routerId: '192.0.2.1', listenPort: -1 });
    // The BGP peer is the BFD peer's address; it never answers BGP here, which does not matter.
    await client.addPeer({ address: B, asn: 65000, holdTimeSeconds: 9, keepaliveSeconds: 3, connectRetrySeconds: 1 });
  }, 30000);

  afterAll(async () => {
    for (const m of managers) await m.stop();
    client?.close();
    await gobgpd?.destroy();
    await ns.destroy();
  });

  const adminDownInGobgpd = async (): Promise<boolean> => (await client.listPeers(B))[0]!.adminDown;

  it('BFD Down disables the peer in gobgpd; BFD Up again re-enables it', async () => {
    const a = new BfdManager();
    const b = new BfdManager();
    managers.push(a, b);
    const binding = new BfdBgpBinding(a, client, undefined, { holdDownMs: 0 });
    binding.start();
    await a.setSessions([{ peer: B, local: A, profile: fast }]);
    await b.setSessions([{ peer: A, local: B, profile: fast }]);
    await waitFor(() => a.status()[0]?.state === 'Up', 8000, 20);
    expect(await adminDownInGobgpd()).toBe(false);

    await b.stop();
    await waitFor(() => a.status()[0]?.state === 'Down', 3000, 10);
    await binding.settled();
    expect(await adminDownInGobgpd()).toBe(true);

    const b2 = new BfdManager();
    managers.push(b2);
    await b2.setSessions([{ peer: A, local: B, profile: fast }]);
    await waitFor(() => a.status()[0]?.state === 'Up', 8000, 20);
    await binding.settled();
    expect(await adminDownInGobgpd()).toBe(false);

    // Our own AdminDown (drain) is not a path failure: the BGP peer stays enabled.
    await binding.drain(async () => undefined);
    await new Promise((r) => setTimeout(r, 200));
    await binding.settled();
    expect(await adminDownInGobgpd()).toBe(false);
    binding.stop();
  }, 30000);
});
