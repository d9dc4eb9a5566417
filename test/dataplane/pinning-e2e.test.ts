// Connection pinning end to end (vxlan-lwt, this kernel): long-lived TCP and UDP flows
// through the tunnel node to two pods; then some buckets move to a third pod. With
// pinning every established flow stays on its pod and new flows follow the new table;
// without it the moved flows land on the new pod (TCP: reset there). IPv6 (VXLAN over IPv6) too.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { TunnelDataplane } from '../../src/dataplane/index.js';
import { desiredState, testConfig } from './fixtures.js';
import { buildFabric, pod4, pod6, setupVxlanPod, type Fabric } from './topology.js';
import { connectOnce, openFlows, startNamedServer, type FlowClient, type Proc } from './long-flows.js';
import { recordKernelSuite } from '../support/kernel-report.js';

// Host kernel (or the QEMU guest under `npm run test:guest`): a row of the "what ran where" table.
recordKernelSuite({ suite: 'dataplane pinning e2e (nft flow map)', kernel: process.env.KST_IN_GUEST ? 'guest' : 'host' });

const VIP = '203.0.113.40';
const VIP6 = '2001:db8:ff::40';
const PORT = 7800;
const B = 16;
const FLOWS = 32;
const backends = [pod4(0), pod4(1), pod4(2)];
// Before: pod0 and pod1 alternate. After: every 4th bucket moves to pod2 (a new endpoint).
const before = Array.from({ length: B }, (_, i) => i % 2);
const after = before.map((b, i) => (i % 4 === 0 ? 2 : b));
const state = (buckets: number[]) =>
  desiredState({ bucketCount: B, vips: [{ vip: VIP, backends, buckets }, { vip: VIP6, backends: [pod6(0), pod6(1), pod6(2)], buckets }] });

describe('connection pinning (vxlan-lwt)', () => {
  let f: Fabric;
  const procs: Proc[] = [];
  const made: TunnelDataplane[] = [];
  const dataplane = (pin: boolean): TunnelDataplane => {
    const dp = new TunnelDataplane({ config: testConfig({ pin }), netns: f.tunnel });
    made.push(dp);
    dp.start();
    return dp;
  };
  const flows = async (first: number, vip = VIP): Promise<FlowClient> => {
    const c = await openFlows(f.client, vip, PORT, first, FLOWS);
    procs.push(c);
    return c;
  };

  beforeAll(async () => {
    f = await buildFabric(3);
    for (const [i, pod] of f.pods.entries()) {
      await setupVxlanPod(pod, [VIP], [VIP6], pod6(i));
      procs.push(await startNamedServer(pod, `pod${i}`, VIP, PORT));
      procs.push(await startNamedServer(pod, `pod${i}`, VIP6, PORT));
    }
  }, 120_000);

  afterAll(async () => {
    for (const dp of made) await dp.stop();
    for (const p of procs) p.stop();
    await f?.sets.destroy();
  });

  test('pinning on: established flows keep their pod, new flows follow the new table; converge and restart are no-ops', async () => {
    const dp = dataplane(true);
    expect(await dp.set(state(before))).toMatchObject({ ok: true });
    const old = await flows(40000);
    const start = await old.ping();
    expect(new Set([...start.tcp, ...start.udp])).toEqual(new Set(['pod0', 'pod1']));
    const old6 = await flows(43000, VIP6);
    const start6 = await old6.ping();
    expect(new Set([...start6.tcp, ...start6.udp])).toEqual(new Set(['pod0', 'pod1']));

    const changed = await dp.set(state(after));
    expect(changed).toMatchObject({ ok: true, full: false });
    // Per VIP, the new table goes into the other parity (B routes), the new pod's nexthop
    // object and the VIP's flip: nothing deleted.
    expect(changed.operations).toBe(2 * (B + 1 + 1));
    const pinned = await old.ping();
    expect(pinned).toEqual(start);
    // IPv6 flows are pinned by a hash of their 5-tuple.
    expect(await old6.ping()).toEqual(start6);
    const fresh6 = await flows(44000, VIP6);
    expect((await fresh6.ping()).tcp.filter((p) => p === 'pod2').length).toBeGreaterThan(0);
    old6.stop();
    fresh6.stop();

    // New flows use the new table: pod2 gets about a quarter of them.
    const fresh = await flows(41000);
    const now = await fresh.ping();
    expect([...now.tcp, ...now.udp].every((p) => ['pod0', 'pod1', 'pod2'].includes(p))).toBe(true);
    expect(now.tcp.filter((p) => p === 'pod2').length).toBeGreaterThan(0);

    // Converged: again = nothing, full readback = nothing.
    expect(await dp.set(state(after))).toMatchObject({ ok: true, operations: 0 });
    expect(await dp.resync()).toMatchObject({ ok: true, full: true, operations: 0 });
    // A restarted agent adopts the parity from the kernel and flips nothing.
    await dp.stop();
    const dp2 = dataplane(true);
    expect(await dp2.set(state(after))).toMatchObject({ ok: true, full: true, operations: 0 });
    expect(await old.ping()).toEqual(start);
    expect(await fresh.ping()).toEqual(now);
    old.stop();
    fresh.stop();
    await dp2.cleanup();
  }, 120_000);

  test('pinning on: a new TCP connection on a 5-tuple whose pin outlived its connection follows the active table', async () => {
    const dp = dataplane(true);
    expect(await dp.set(state(before))).toMatchObject({ ok: true });
    // Each connection is pinned by its first packet, then closed; its pin stays (idle timeout).
    const first = { 4: await connectOnce(f.client, VIP, PORT, 46000, FLOWS), 6: await connectOnce(f.client, VIP6, PORT, 46000, FLOWS) };
    for (const r of Object.values(first)) expect(new Set(r)).toEqual(new Set(['pod0', 'pod1']));
    // A new generation (buckets move away from live pods): the old pins point at the
    // previous one. A SYN starts a new pin, so the same 5-tuples now follow the new table:
    // the moved buckets' flows reach pod2, the others stay where they were. Without the
    // re-pin every connection would reach its old pod (P(no moved bucket in 32) < 1e-4).
    expect(await dp.set(state(after))).toMatchObject({ ok: true, full: false });
    for (const [family, vip] of [[4, VIP], [6, VIP6]] as const) {
      const again = await connectOnce(f.client, vip, PORT, 46000, FLOWS);
      const moved = again.filter((p, i) => p !== first[family][i]);
      expect(moved.length).toBeGreaterThan(0);
      expect(new Set(moved)).toEqual(new Set(['pod2']));
    }
    await dp.cleanup();
  }, 120_000);

  test('pinning off: flows in moved buckets go to the new pod, TCP is reset there', async () => {
    const dp = dataplane(false);
    expect(await dp.set(state(before))).toMatchObject({ ok: true });
    const old = await flows(42000);
    const start = await old.ping();
    expect(new Set([...start.tcp, ...start.udp])).toEqual(new Set(['pod0', 'pod1']));
    expect(await dp.set(state(after))).toMatchObject({ ok: true, operations: 2 * (B / 4 + 1) }); // per VIP: moved routes + the new pod's nexthop object
    const moved = await old.ping();
    let reset = 0;
    for (const [i, p] of moved.tcp.entries()) {
      if (p === start.tcp[i]) continue;
      expect(p).toBe('ECONNRESET');
      reset += 1;
    }
    let toPod2 = 0;
    for (const [i, p] of moved.udp.entries()) {
      if (p === start.udp[i]) continue;
      expect(p).toBe('pod2');
      toPod2 += 1;
    }
    // A quarter of the buckets moved: with 32 flows each, P(none moved) = 0.75^32 < 1e-4.
    expect(reset).toBeGreaterThan(0);
    expect(toPod2).toBeGreaterThan(0);
    old.stop();
    await dp.cleanup();
  }, 120_000);
});
