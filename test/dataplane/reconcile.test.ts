// Converge by diff against a real kernel (one namespace per test, no traffic): idempotence,
// adoption and clean-up of leftovers, objects the project does not own, fail static,
// coalescing and drift repair.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { TunnelDataplane, MARK_BASE } from '../../src/dataplane/index.js';
import { NEXTHOP_ID_BASE } from '../../src/dataplane/layout.js';
import { NetnsSet } from '../../src/lab/index.js';
import { MemoryEventSink, metricsRegistry } from '../../src/observe/index.js';
import { runCommand } from '../../src/system/index.js';
import { activeRoutes, desiredState, testConfig, type VipFixture } from './fixtures.js';
import { recordKernelSuite } from '../support/kernel-report.js';

// Host kernel (or the QEMU guest under `npm run test:guest`): a row of the "what ran where" table.
recordKernelSuite({ suite: 'dataplane converge by diff (nexthops, nft)', kernel: process.env.KST_IN_GUEST ? 'guest' : 'host' });

const B = 16;
const config = testConfig();
const TABLE_BASE = config.dataplane.tableBase;

async function errorCount(): Promise<number> {
  const text = await metricsRegistry.getSingleMetricAsString('kst_dataplane_reconcile_errors_total');
  return Number(/ (\d+)$/m.exec(text)?.[1] ?? 0);
}

const vips = (n: number, backends = ['192.0.2.11', '192.0.2.12']): VipFixture[] =>
  Array.from({ length: n }, (_, i) => ({ vip: `203.0.113.${10 + i}`, backends }));

describe('reconcile', () => {
  let sets: NetnsSet;
  let ns: string;
  const ip = (...args: string[]) => runCommand('ip', ['-n', ns, ...args]);
  const nft = (input: string) => runCommand('nft', ['-f', '-'], { netns: ns, input });
  const made: TunnelDataplane[] = [];
  const dataplane = (opts: Partial<ConstructorParameters<typeof TunnelDataplane>[0]> = {}): TunnelDataplane => {
    const dp = new TunnelDataplane({ config, netns: ns, ...opts });
    made.push(dp);
    dp.start();
    return dp;
  };

  beforeEach(async () => {
    sets = new NetnsSet();
    ns = await sets.create('kdr');
    // The underlay: the node's own address, so encapsulated packets have a way out.
    const other = await sets.create('kdo');
    await sets.link(ns, other, { aAddrs: ['192.0.2.1/24'], bAddrs: ['192.0.2.2/24'] });
  });

  afterEach(async () => {
    for (const dp of made.splice(0)) await dp.stop();
    await sets.destroy();
  });

  test('a second converge issues zero kernel operations (fast path and full readback)', async () => {
    const dp = dataplane();
    const d = desiredState({ bucketCount: B, vips: [...vips(3), { vip: '2001:db8:ff::1', backends: ['2001:db8:f::11'] }, { vip: '203.0.113.99', backends: ['192.0.2.13'], sourceRanges: ['198.51.100.0/24', '198.51.100.128/25', '192.0.2.7/32'] }] });
    const first = await dp.set(d);
    expect(first).toMatchObject({ ok: true, full: true });
    expect(first.operations).toBeGreaterThan(4 * B);
    expect(await dp.set(d)).toMatchObject({ ok: true, full: false, operations: 0 });
    expect(await dp.resync()).toMatchObject({ ok: true, full: true, operations: 0 });
    // And the kernel really holds the plan: B routes per VIP (one table generation so far);
    // per family a guard, a group rule per 16 buckets and parity, 2B bucket rules (pinning
    // is on by default) and an anchor.
    const state = await dp.kernel.read(TABLE_BASE);
    expect(state.routes.get('203.0.113.10')?.size).toBe(B);
    expect(state.routes.get('2001:db8:ff::1')?.size).toBe(B);
    expect(state.rules.size).toBe(2 * (1 + 2 * (B / 16) + 2 * B + 1));
    expect(state.nft.elements.get('allowed4')).toEqual(new Set(['203.0.113.99 . 192.0.2.7', '203.0.113.99 . 198.51.100.0/24']));
  });

  test('a restart adopts the previous run\'s state without touching it, counters kept', async () => {
    const d = desiredState({ bucketCount: B, vips: vips(2) });
    const dp1 = dataplane();
    await dp1.set(d);
    await dp1.stop(); // "killed": leaves everything in place
    await ip('route', 'get', '203.0.113.10', 'mark', String(MARK_BASE)); // the data path is still there
    const dp2 = dataplane();
    expect(await dp2.set(d)).toMatchObject({ ok: true, full: true, operations: 0 });
  });

  test('routes with inline nexthops (versions before nexthop objects) are rewritten once, by nhid', async () => {
    const dp = dataplane();
    await dp.set(desiredState({ bucketCount: B, vips: vips(1) }));
    const table = String(TABLE_BASE + 3);
    const spec = (await ip('-json', 'route', 'show', 'table', table)).stdout;
    const dst = /"dst":"(192\.0\.2\.1[12])"/.exec(spec)?.[1];
    expect(dst).toBeDefined();
    await ip('route', 'replace', '203.0.113.10/32', 'table', table, 'proto', '245', 'via', '169.254.75.83', 'dev', 'kst-vxlan', 'onlink', 'encap', 'ip', 'id', '4242', 'dst', dst!);
    expect((await ip('route', 'show', 'table', table)).stdout).not.toContain('nhid');
    expect(await dp.resync()).toMatchObject({ ok: true, operations: 1 });
    expect((await ip('route', 'show', 'table', table)).stdout).toContain('nhid');
    expect(await dp.resync()).toMatchObject({ ok: true, operations: 0 });
  });

  test('leftovers of an earlier run are removed; objects the project does not own survive', async () => {
    // Not ours: another nft table, a route in another table (even with our protocol), a
    // route of another protocol in our table range, a rule of another protocol, links.
    await nft('table inet someone_else {\n chain c {\n  type filter hook prerouting priority 0;\n  counter\n }\n}\n');
    await ip('route', 'add', '198.51.100.1/32', 'dev', 'lo', 'table', '100', 'proto', '245');
    await ip('route', 'add', '198.51.100.2/32', 'dev', 'lo', 'table', String(TABLE_BASE + 5), 'proto', 'static');
    await ip('rule', 'add', 'fwmark', String(MARK_BASE + 1), 'lookup', '100', 'priority', '3000');
    await ip('link', 'add', 'kst-other', 'type', 'bridge'); // a kst link, but not the data plane's
    await ip('link', 'add', 'other0', 'type', 'bridge');
    // Nexthop objects: one in our id range but of another protocol, one of our protocol
    // outside the range.
    await ip('nexthop', 'add', 'id', String(NEXTHOP_ID_BASE), 'dev', 'lo', 'proto', 'static');
    await ip('nexthop', 'add', 'id', '7', 'dev', 'lo', 'proto', '245');
    // Ours, from a "previous run" with more buckets and another port: stale everything.
    await ip('link', 'add', 'kst-vxlan', 'type', 'vxlan', 'external', 'dstport', '4790');
    await ip('link', 'set', 'kst-vxlan', 'up');
    await ip('route', 'add', '203.0.113.200/32', 'dev', 'kst-vxlan', 'table', String(TABLE_BASE + 40), 'proto', '245');
    await ip('rule', 'add', 'fwmark', String(MARK_BASE + 40), 'lookup', String(TABLE_BASE + 40), 'priority', '2999', 'protocol', '245');
    await ip('nexthop', 'add', 'id', String(NEXTHOP_ID_BASE + 1), 'dev', 'lo', 'proto', '245');
    await nft('table inet kube_service_tunnel {\n counter vip4_203_0_113_200 { }\n chain stale {\n  type filter hook prerouting priority -150;\n  meta mark set 1\n }\n}\n');

    const dp = dataplane();
    const adopted = await dp.set(desiredState({ bucketCount: B, vips: vips(1) }));
    expect(adopted.error).toBeUndefined();
    const state = await dp.kernel.read(TABLE_BASE);
    expect([...state.routes.keys()]).toEqual(['203.0.113.10']);
    const parityOffset = (t: number): number => (t - TABLE_BASE) % 4096;
    const lookups = [...state.rules.values()].flatMap((r) => ('lookup' in r.action ? [r.action.lookup] : []));
    expect(lookups.length).toBe(2 * 2 * B);
    expect(lookups.every((t) => parityOffset(t) < B)).toBe(true);
    expect([...state.rules.values()].every((r) => r.priority >= 3000 && r.priority <= 3000 + 2 + 2 * (B / 16))).toBe(true);
    expect(state.links.get('kst-vxlan')?.spec).toContain('dstport 4789');
    expect(state.nft.counters).toEqual(new Set(['vip4_203_0_113_10']));
    // The stale object is gone; the foreign id in our range was never handed out.
    expect([...state.nexthops.values()].map((n) => n.spec).sort()).toEqual(['192.0.2.11', '192.0.2.12'].map((a) => `via 169.254.75.83 dev kst-vxlan onlink encap ip id 4242 dst ${a}`));
    expect(state.nexthops.has(NEXTHOP_ID_BASE) || state.nexthops.has(NEXTHOP_ID_BASE + 1)).toBe(false);
    expect(state.foreignNexthopIds).toEqual(new Set([NEXTHOP_ID_BASE]));
    const ruleset = (await runCommand('nft', ['list', 'ruleset'], { netns: ns })).stdout;
    expect(ruleset).not.toContain('chain stale');
    expect(await dp.resync()).toMatchObject({ ok: true, operations: 0 });

    const survivors = async (): Promise<void> => {
      expect((await ip('route', 'show', 'table', '100')).stdout).toContain('198.51.100.1');
      expect((await ip('route', 'show', 'table', String(TABLE_BASE + 5))).stdout).toContain('198.51.100.2');
      expect((await ip('rule', 'show')).stdout).toMatch(/fwmark 0x4b530001 lookup 100/);
      expect((await ip('link', 'show', 'kst-other')).stdout).toContain('kst-other');
      expect((await ip('link', 'show', 'other0')).stdout).toContain('other0');
      expect((await runCommand('nft', ['list', 'tables'], { netns: ns })).stdout).toContain('someone_else');
      expect((await ip('nexthop', 'show', 'id', String(NEXTHOP_ID_BASE))).stdout).toContain('proto static');
      expect((await ip('nexthop', 'show', 'id', '7')).stdout).toContain('proto 245');
    };
    await survivors();

    // Clean-up removes everything the data plane owns, and only that.
    const removed = await dp.cleanup();
    expect(removed.operations).toBeGreaterThan(0);
    const after = await dp.kernel.read(TABLE_BASE);
    expect(after.routes.size + after.rules.size + after.links.size + after.nexthops.size).toBe(0);
    expect(after.nft.structure).toBeUndefined();
    await survivors();
  });

  test('fail static: bad input holds the VIP\'s previous routes; a kernel refusal is reported, retried and repaired', async () => {
    const events = new MemoryEventSink();
    const dp = dataplane({ events, backoffMs: 100 });
    await dp.set(desiredState({ bucketCount: B, vips: vips(2) }));
    const before = await dp.kernel.read(TABLE_BASE);

    // Bad input for one VIP: an IPv6 backend for an IPv4 VIP. The other VIP still changes.
    const bad = desiredState({ bucketCount: B, vips: [{ vip: '203.0.113.10', backends: ['2001:db8::1'] }, { vip: '203.0.113.11', backends: ['192.0.2.13'] }] });
    const r = await dp.set(bad);
    expect(r.ok).toBe(true);
    expect(r.problems).toEqual([expect.objectContaining({ vip: '203.0.113.10', message: expect.stringContaining('2001:db8::1') })]);
    expect(events.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'InvalidDataplaneInput', ref: expect.objectContaining({ name: 'svc-203-0-113-10' }) })]);
    const held = await dp.kernel.read(TABLE_BASE);
    expect(held.routes.get('203.0.113.10')).toEqual(before.routes.get('203.0.113.10'));
    const activeheld = activeRoutes(held, '203.0.113.11', TABLE_BASE);
    expect(activeheld).toHaveLength(B);
    expect(activeheld.every((x) => x.nexthop.includes('dst 192.0.2.13'))).toBe(true);

    // The kernel refuses the change: someone made the VXLAN gateway address local, so
    // `via 169.254.75.83 onlink` is an invalid gateway. Nothing of ours is removed.
    const errorsBefore = await errorCount();
    await ip('addr', 'add', '169.254.75.83/32', 'dev', 'lo');
    const failed = await dp.set(desiredState({ bucketCount: B, vips: [{ vip: '203.0.113.10', backends: ['192.0.2.14'] }, { vip: '203.0.113.11', backends: ['192.0.2.13'] }] }));
    expect(failed.ok).toBe(false);
    expect(failed.error).toMatch(/invalid gateway/);
    expect(events.events.some((e) => e.reason === 'DataplaneProgrammingFailed' && e.ref.name === 'svc-203-0-113-10')).toBe(true);
    expect(await errorCount()).toBe(errorsBefore + 1);
    expect((await dp.kernel.read(TABLE_BASE)).routes.get('203.0.113.10')).toEqual(before.routes.get('203.0.113.10'));
    // Retried with backoff (full resync each time) until the kernel accepts it.
    await new Promise((res) => setTimeout(res, 400));
    expect(await errorCount()).toBeGreaterThan(errorsBefore + 1);
    await ip('addr', 'del', '169.254.75.83/32', 'dev', 'lo');
    const deadline = Date.now() + 10_000;
    while (!dp.lastResult.ok && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    expect(dp.lastResult).toMatchObject({ ok: true, full: true });
    const repaired = await dp.kernel.read(TABLE_BASE);
    const activerepaired = activeRoutes(repaired, '203.0.113.10', TABLE_BASE);
    expect(activerepaired).toHaveLength(B);
    expect(activerepaired.every((x) => x.nexthop.includes('dst 192.0.2.14'))).toBe(true);
  });

  test('a burst of changes becomes one batch', async () => {
    const dp = dataplane({ config: testConfig({ coalesceMs: 300 }) });
    await dp.set(desiredState({ bucketCount: B, vips: vips(5) }));
    await new Promise((res) => setTimeout(res, 400)); // let the window after that batch close
    const batches = dp.batches;
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => dp.set(desiredState({ bucketCount: B, vips: vips(5, [`192.0.2.${20 + i}`]) }))));
    expect(results.every((x) => x.ok)).toBe(true);
    // The first change goes at once, the other 49 within the window become one batch.
    expect(dp.batches - batches).toBe(2);
    const state = await dp.kernel.read(TABLE_BASE);
    expect(activeRoutes(state, '203.0.113.14', TABLE_BASE)[0]!.nexthop).toContain('dst 192.0.2.69');
  });

  test('xtables HMARK backend (kernels without nft IP families): converge, no-op, clean-up', async () => {
    const dp = dataplane({ flowHash: 'iptables-legacy' });
    const d = desiredState({ bucketCount: B, vips: [...vips(2), { vip: '203.0.113.99', backends: ['192.0.2.13'], sourceRanges: ['198.51.100.0/24'] }, { vip: '2001:db8:ff::1', backends: ['2001:db8:f::11'] }] });
    expect(await dp.set(d)).toMatchObject({ ok: true, full: true });
    expect(await dp.resync()).toMatchObject({ ok: true, full: true, operations: 0 });
    const save = (await runCommand('iptables-legacy-save', [], { netns: ns })).stdout;
    expect(save).toMatch(/-A KST-HASH .*-j HMARK/);
    expect(save).toMatch(/-A KST-PREROUTING -s 198\.51\.100\.0\/24 -d 203\.0\.113\.99\/32 .*-j KST-HASH/);
    // The mark is cleared after routing, as with nft (docs/dataplane.md, "Cost per packet").
    expect(save).toMatch(/-A POSTROUTING -j KST-POSTROUTING/);
    expect(save).toMatch(/-A KST-POSTROUTING -m mark --mark 0x4b530000\/0xffffe000 .*-j MARK --set-xmark 0x0\/0xffffffff/);
    expect((await runCommand('nft', ['list', 'tables'], { netns: ns })).stdout).not.toContain('kube_service_tunnel');
    // A node programmed before KST-POSTROUTING existed: the chains are completed, the
    // PREROUTING jump is not doubled.
    for (const cmd of [['-D', 'POSTROUTING', '-j', 'KST-POSTROUTING'], ['-F', 'KST-POSTROUTING'], ['-X', 'KST-POSTROUTING']]) {
      await runCommand('iptables-legacy', ['-t', 'mangle', ...cmd], { netns: ns });
    }
    expect(await dp.resync()).toMatchObject({ ok: true, full: true });
    const upgraded = (await runCommand('iptables-legacy-save', ['-t', 'mangle'], { netns: ns })).stdout;
    expect(upgraded.match(/-A PREROUTING -j KST-PREROUTING/g)).toHaveLength(1);
    expect(upgraded.match(/-A POSTROUTING -j KST-POSTROUTING/g)).toHaveLength(1);
    expect(await dp.resync()).toMatchObject({ ok: true, operations: 0 });
    await dp.cleanup();
    expect((await runCommand('iptables-legacy-save', [], { netns: ns })).stdout).not.toMatch(/KST-/);
    const after = await dp.kernel.read(TABLE_BASE, true);
    expect(after.xt.v4.fingerprint).toBeUndefined();
    expect(after.xt.v6.fingerprint).toBeUndefined();
    expect(after.routes.size + after.rules.size).toBe(0);
  });

  test('IPv6 at scale: 100 VIPs x 256 buckets through shared nexthop objects', async () => {
    // With an encapsulation inline in every route (seg6, on the kernel that had it) IPv6
    // routes were refused after about 21,000 ("Cannot allocate memory"); through objects
    // (here VXLAN over IPv6) they all install, and the resync reads the objects back as
    // written (`encap ip6 ... csum`), so converge-by-diff finds nothing to do.
    const dp = dataplane();
    const v6 = Array.from({ length: 100 }, (_, i) => ({ vip: `2001:db8:ff::${(i + 1).toString(16)}`, backends: ['2001:db8:f::11', '2001:db8:f::12'] }));
    const r = await dp.set(desiredState({ bucketCount: 256, vips: v6 }));
    expect(r.error).toBeUndefined();
    const state = await dp.kernel.read(TABLE_BASE);
    expect([...state.routes.values()].reduce((n, m) => n + m.size, 0)).toBe(100 * 256);
    expect([...state.nexthops.values()].map((n) => n.family)).toEqual([6, 6]);
    expect(await dp.resync()).toMatchObject({ ok: true, operations: 0 });
  });

  test('the periodic resync repairs drift', async () => {
    const dp = dataplane({ config: testConfig({ resyncSeconds: 1 }) });
    await dp.set(desiredState({ bucketCount: B, vips: vips(1) }));
    await ip('route', 'del', '203.0.113.10/32', 'table', String(TABLE_BASE + 3));
    await runCommand('nft', ['delete', 'element', 'inet', 'kube_service_tunnel', 'vips4', '{ 203.0.113.10 }'], { netns: ns });
    // The next resync waits at least 10x the last full batch's duration (tunnel-dataplane.ts),
    // seconds on a loaded machine: an order-of-magnitude bound, not a timing.
    const deadline = Date.now() + 30_000;
    let state = await dp.kernel.read(TABLE_BASE);
    while ((state.routes.get('203.0.113.10')?.size !== B || !state.nft.elements.get('vips4')?.has('203.0.113.10')) && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 200));
      state = await dp.kernel.read(TABLE_BASE);
    }
    expect(state.routes.get('203.0.113.10')?.size).toBe(B);
    expect(state.nft.elements.get('vips4')?.has('203.0.113.10')).toBe(true);
  }, 60_000);
});
