// The orphan sweep: an agent set up pods and stopped; one pod lost its VIP meanwhile. The
// next agent removes exactly our objects from that pod and nothing else: a pod it still
// wants, a pod outside the node's pod ranges, and namespaces without our markers (one with
// look-alikes: the tunnel side's kst-vxlan, a kst-g* link) are never written to.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { IpAddress, PodSetup } from '../../src/model/types.js';
import { metricsRegistry } from '../../src/observe/index.js';
import { NamespaceFinder, PodNetworks, isPodNamespace, orphanRemoval, parsePodRanges, podSideLinks, VXLAN_POD_MAC } from '../../src/podnet/index.js';
import type { PodKernelState } from '../../src/podnet/objects.js';
import { runCommand, type CommandRunner } from '../../src/system/index.js';
import { ownedState, unrelatedState } from './inspect.js';
import { PodLab, type LabPod } from './lab.js';

const encap = { mode: 'vxlan-lwt' as const, vni: 4343, vxlanPort: 4789, mplsLabel: 100 };
const POD_RANGE = '203.0.113.0/26';
const VIP_ORPHAN = '203.0.113.230' as IpAddress;
const VIP_KEPT = '203.0.113.231' as IpAddress;
const VIP_OUTSIDE = '203.0.113.232' as IpAddress;
const LO_VIP = '203.0.113.233';

const setup = (name: string, pod: LabPod, vip: IpAddress): PodSetup =>
  ({ pod: { namespace: 'shop', name, uid: `uid-${name}` }, podIp: pod.ip as IpAddress, containerIds: ['c1'], vips: [vip], mode: 'vxlan-lwt' });

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await metricsRegistry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (m?.values as Array<{ labels: Record<string, string>; value: number }> | undefined)?.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

/** Every command the reconciler runs, by the namespace it runs in. */
class RecordingRunner {
  readonly calls: Array<{ netns: string | undefined; write: boolean }> = [];
  readonly run: CommandRunner = (file, args, opts = {}) => {
    const named = args[0] === '-n' ? args[1] : undefined;
    const netns = named ?? opts.netns ?? opts.netnsPath?.replace(/^\/(?:var\/)?run\/netns\//, '');
    this.calls.push({ netns, write: file === 'sysctl' || args.includes('-batch') });
    return runCommand(file, args, opts);
  };
  to(netns: string) {
    return this.calls.filter((c) => c.netns === netns);
  }
}

describe('podnet orphan sweep (host kernel, vxlan-lwt)', () => {
  const lab = new PodLab();
  const mine = new Set<number>();
  const accept = (c: { inode: number }) => mine.has(c.inode);
  let orphan: LabPod;
  let kept: LabPod;
  let outside: LabPod;
  let decoy: LabPod;
  let plain: LabPod;
  const started: PodNetworks[] = [];
  const reconciler = (extra: Partial<ConstructorParameters<typeof PodNetworks>[0]> = {}) => {
    const nets = new PodNetworks({ encap, finder: new NamespaceFinder({ accept, ...(extra.run ? { run: extra.run } : {}) }), retry: { initialMs: 50, maxMs: 200 }, ...extra });
    started.push(nets);
    nets.start();
    return nets;
  };
  // The kernel's local route for the lo:kst VIP goes with it: not a foreign object.
  // IPv6 link-local addresses (and their local routes) appear on their own once DAD is
  // done, whenever that is: not the sweep's doing.
  const othersIn = async (netns: string) => {
    const s = await unrelatedState(runCommand, netns);
    const linkLocal = / fe80:/;
    return { ...s, addresses: s.addresses.filter((a) => !linkLocal.test(a)), routes: s.routes.split('\n').filter((l) => !l.includes(LO_VIP) && !linkLocal.test(l)).join('\n') };
  };
  /** Links with kind, MAC, details and global addresses (carrier and IPv6 DAD settle on their own). */
  const fullReadback = async (netns: string) => {
    type Link = { ifname: string; address?: string; linkinfo?: unknown; addr_info?: Array<{ local: string; prefixlen: number; scope: string; label?: string }> };
    const links = JSON.parse((await runCommand('ip', ['-n', netns, '-d', '-j', 'addr', 'show'])).stdout) as Link[];
    return links.map((l) => ({ ifname: l.ifname, mac: l.address, linkinfo: l.linkinfo, addrs: (l.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen} ${a.label ?? ''}`) }));
  };

  beforeAll(async () => {
    await lab.build();
    orphan = await lab.addPod('203.0.113.20');
    kept = await lab.addPod('203.0.113.21');
    decoy = await lab.addPod('203.0.113.22');
    plain = await lab.addPod('203.0.113.23');
    outside = await lab.addPod('203.0.113.100'); // another node's pod, as in a lab on one machine
    // Not ours, in the pod that loses its VIP: must survive the sweep.
    await lab.ip(orphan.netns, 'link add app0 type bridge');
    await lab.ip(orphan.netns, 'addr add 192.0.2.77/32 dev lo');
    // Look-alikes in a pod of this node: the tunnel side's kst-vxlan (external, node MAC), a
    // kst-g* link, an unlabelled address on lo. Not pod-side markers: never touched.
    await lab.ip(decoy.netns, `link add kst-vxlan type vxlan external dstport ${encap.vxlanPort} nolearning`);
    await lab.ip(decoy.netns, 'link add kst-g1a2b3c4d type bridge');
    await lab.ip(decoy.netns, 'addr add 203.0.113.234/32 dev lo');
    // The tunnel namespace holds a real tunnel-side kst-vxlan (and no pod-range address).
    await lab.tunnelVxlan(encap.vni, encap.vxlanPort, []);
    for (const n of await lab.inodes()) mine.add(n);
  });
  afterAll(async () => {
    for (const n of started) await n.stop();
    await lab.destroy();
  });

  it('a first agent makes three pods ready, then stops (their objects stay)', async () => {
    const first = reconciler();
    const r = await first.set([setup('orphan', orphan, VIP_ORPHAN), setup('kept', kept, VIP_KEPT), setup('outside', outside, VIP_OUTSIDE)]);
    expect(r.pods.map((p) => p.state)).toEqual(['ready', 'ready', 'ready']);
    expect(r.orphans).toBeUndefined(); // no pod ranges: no sweep
    await first.stop();
    // mpls mode's leftover, made by hand: a VIP on lo with the project's label.
    await lab.ip(orphan.netns, `addr add ${LO_VIP}/32 dev lo label lo:kst`);
    expect((await ownedState(runCommand, orphan.netns)).addresses.sort()).toEqual([`kst-vxlan ${VIP_ORPHAN}/32`, `lo ${LO_VIP}/32`]);
  });

  it('sweeps nothing without pod ranges, nor before the desired set is known', async () => {
    const noRanges = reconciler();
    expect((await noRanges.set([])).orphans).toBeUndefined();
    await noRanges.stop();

    const early = reconciler({ podRanges: () => [POD_RANGE] });
    expect((await early.resync()).orphans).toBeUndefined();
    await early.stop();
    expect((await ownedState(runCommand, orphan.netns)).links).toEqual(['kst-vxlan']);
  });

  it('the first pass after a restart removes our objects from the unclaimed pod, and only those', async () => {
    const untouched = [decoy.netns, plain.netns, lab.tunnel, outside.netns];
    const before = new Map(await Promise.all(untouched.map(async (n) => [n, await fullReadback(n)] as const)));
    const orphanOthers = await othersIn(orphan.netns);
    const keptOwned = await ownedState(runCommand, kept.netns);
    const metricsBefore = {
      sweeps: await metric('kst_podnet_orphan_sweeps_total'),
      namespaces: await metric('kst_podnet_orphans_removed_total', { kind: 'namespace' }),
      links: await metric('kst_podnet_orphans_removed_total', { kind: 'link' }),
      addresses: await metric('kst_podnet_orphans_removed_total', { kind: 'address' }),
    };

    const rec = new RecordingRunner();
    const second = reconciler({ run: rec.run, podRanges: () => [POD_RANGE, 'not-a-range'] });
    const r = await second.set([setup('kept', kept, VIP_KEPT)]);

    expect(r.pods).toEqual([expect.objectContaining({ state: 'ready' })]);
    expect(r.orphans).toEqual([{ netns: `/run/netns/${orphan.netns}`, removed: [`link kst-vxlan (${VIP_ORPHAN}/32)`, `address ${LO_VIP}/32 on lo`] }]);
    expect(await ownedState(runCommand, orphan.netns)).toEqual({ links: [], addresses: [], mplsRoutes: [] });
    expect(await othersIn(orphan.netns)).toEqual(orphanOthers);
    expect(await ownedState(runCommand, kept.netns)).toEqual(keptOwned);

    // Namespaces without our markers, and the pod outside the ranges: read once (the
    // discovery scan, reused by the sweep), never written, unchanged.
    for (const n of untouched) {
      expect({ n, calls: rec.to(n) }).toEqual({ n, calls: [{ netns: n, write: false }] });
      expect(await fullReadback(n)).toEqual(before.get(n));
    }
    expect(rec.to(orphan.netns).filter((c) => c.write)).toHaveLength(1); // one ip -batch

    expect(await metric('kst_podnet_orphan_sweeps_total')).toBe(metricsBefore.sweeps + 1);
    expect(await metric('kst_podnet_orphans_removed_total', { kind: 'namespace' })).toBe(metricsBefore.namespaces + 1);
    expect(await metric('kst_podnet_orphans_removed_total', { kind: 'link' })).toBe(metricsBefore.links + 1);
    expect(await metric('kst_podnet_orphans_removed_total', { kind: 'address' })).toBe(metricsBefore.addresses + 1);

    // A set() that is not the first pass does not sweep; a periodic resync does.
    await lab.ip(orphan.netns, `addr add ${LO_VIP}/32 dev lo label lo:kst`);
    expect((await second.set([setup('kept', kept, VIP_KEPT)])).orphans).toBeUndefined();
    const writesBefore = rec.calls.filter((c) => c.write).length;
    const again = await second.resync();
    expect(again.orphans).toEqual([{ netns: `/run/netns/${orphan.netns}`, removed: [`address ${LO_VIP}/32 on lo`] }]);
    expect(again.ops).toBe(1);
    expect(rec.calls.filter((c) => c.write).length).toBe(writesBefore + 1);
    expect((await second.resync()).orphans).toEqual([]);
    expect(await ownedState(runCommand, kept.netns)).toEqual(keptOwned);
  });
});

describe('orphan markers (pure)', () => {
  const link = (name: string, kind: string, info: Record<string, unknown>, addresses: string[] = [], mac?: string) => ({
    name, kind, up: true, noarp: kind === 'vxlan', info, ...(mac ? { mac } : {}),
    addresses: addresses.map((a) => ({ address: a.split('/')[0]!, prefixLen: Number(a.split('/')[1]), family: a.includes(':') ? 6 as const : 4 as const, scope: 'global' })),
  });
  const eth0 = link('eth0', 'veth', {}, ['203.0.113.5/32', '2001:db8::5/128']);
  const lo = { ...link('lo', 'loopback', {}, ['127.0.0.1/8']) };
  const loKst = { ...lo, addresses: [...lo.addresses, { address: '203.0.113.240', prefixLen: 32, family: 4 as const, scope: 'global', label: 'lo:kst' }] };

  it('recognises exactly the pod-side shapes', () => {
    const pod = [eth0, lo,
      link('kst-vxlan', 'vxlan', { local: '203.0.113.5', id: 1 }, ['203.0.113.250/32'], VXLAN_POD_MAC)];
    expect(podSideLinks(pod).map((l) => l.name)).toEqual(['kst-vxlan']);
    // A dual-stack pod's IPv6 decap link (IPv6 VIPs) beside the IPv4 one.
    const dual = [...pod, link('kst-vxlan6', 'vxlan', { local6: '2001:db8::5', id: 1 }, ['2001:db8:4b53::250/128'], VXLAN_POD_MAC)];
    expect(podSideLinks(dual).map((l) => l.name)).toEqual(['kst-vxlan', 'kst-vxlan6']);
    expect(podSideLinks([eth0, link('kst-vxlan6', 'vxlan', { local6: '2001:db8::99' }, [], VXLAN_POD_MAC)])).toEqual([]);
    expect(podSideLinks([eth0, link('kst-gre', 'gre', { local: '203.0.113.5' })]).map((l) => l.name)).toEqual(['kst-gre']);
    expect(podSideLinks([eth0, link('kst-gre', 'ip6gre', { local: '2001:db8::5' })]).map((l) => l.name)).toEqual(['kst-gre']);
    expect(podSideLinks([eth0, link('kst-gre', 'gre', { external: true })]).map((l) => l.name)).toEqual(['kst-gre']);
    // Tunnel-side vxlan (external, node MAC), a gre bound elsewhere, other kst names: not ours here.
    expect(podSideLinks([eth0, link('kst-vxlan', 'vxlan', { external: true }, [], '02:6b:73:74:00:01')])).toEqual([]);
    expect(podSideLinks([eth0, link('kst-vxlan', 'vxlan', { local: '198.51.100.9' }, [], VXLAN_POD_MAC)])).toEqual([]);
    expect(podSideLinks([eth0, link('kst-gre', 'gre', { local: '198.51.100.9' })])).toEqual([]);
    expect(podSideLinks([eth0, link('kst-g1a2b3c4d', 'gre', { external: true }), link('kstx', 'dummy', {})])).toEqual([]);
  });

  it('a pod of this node holds a pod-range address that is not one of our VIPs', () => {
    const { ranges, invalid } = parsePodRanges(['203.0.113.0/26', '2001:db8::5', 'nonsense', '203.0.113.77/24']);
    expect(invalid).toEqual(['nonsense']);
    expect(ranges).toEqual(['203.0.113.0/26', '2001:db8::5/128', '203.0.113.0/24']);
    expect(isPodNamespace([eth0, lo], parsePodRanges(['203.0.113.0/30', '203.0.113.5']).ranges)).toBe(true);
    expect(isPodNamespace([eth0, lo], parsePodRanges(['203.0.113.0/30', '203.0.113.4/32']).ranges)).toBe(false);
    expect(isPodNamespace([eth0, lo], parsePodRanges(['2001:db8::5']).ranges)).toBe(true);
    const tunnelLike = [link('veth1', 'veth', {}, ['198.51.100.1/30']), loKst, link('kst-gre', 'gre', { external: true }, ['203.0.113.9/32'])];
    expect(isPodNamespace(tunnelLike, parsePodRanges(['203.0.113.0/24']).ranges)).toBe(false);
  });

  it('plans removal of links, lo:kst addresses and our mpls route only; no settings', () => {
    const actual: PodKernelState = {
      links: [eth0, loKst, link('kst-gre', 'gre', { external: true }, ['203.0.113.250/32']), link('kst-g1a2b3c4d', 'gre', {})],
      mplsRoutes: [{ label: 100, dev: 'lo', protocol: '245' }, { label: 200, dev: 'eth0', protocol: '245' }],
      sysctls: new Map([['net/ipv4/conf/eth0/arp_ignore', '1']]),
    };
    const r = orphanRemoval(actual);
    expect(r.plan.ipBatch).toEqual(['link del kst-gre', 'addr del 203.0.113.240/32 dev lo']);
    expect(r.plan.mplsBatch).toEqual(['route del 100']);
    expect([...r.plan.sysctlsBefore, ...r.plan.sysctlsAfter]).toEqual([]);
    expect(r.removed).toEqual(['link kst-gre (203.0.113.250/32)', 'address 203.0.113.240/32 on lo', 'mpls route 100']);
    expect(r.counts).toEqual({ link: 1, address: 1, mplsRoute: 1 });
    expect(orphanRemoval({ links: [eth0, lo], mplsRoutes: [], sysctls: new Map() }).plan.ops).toBe(0);
  });
});
