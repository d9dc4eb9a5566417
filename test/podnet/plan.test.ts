// The pure part: what each mode asks for in a pod and the plan from a read-back. Plans
// for an empty pod are golden files (rewrite on purpose with UPDATE_GOLDEN=1); the rest
// checks the diff's promises: nothing when equal, only the project's objects touched,
// a changed link recreated, originals of settings put back on removal.
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { expectGolden } from '../support/golden.js';
import type { EncapMode, IpAddress, PodSetup } from '../../src/model/types.js';
import { planPod, podModes, type PodPlan } from '../../src/podnet/index.js';
import type { KernelLink, PodKernelState } from '../../src/podnet/objects.js';

const dir = join(process.cwd(), 'test', 'podnet', 'golden');
const encap = { mode: 'gre-lwt' as const, vni: 4242, vxlanPort: 4789, mplsLabel: 100 };

const golden = (name: string, text: string): void => expectGolden(dir, name, text);

const render = (p: PodPlan) => [
  '# sysctl before', ...p.sysctlsBefore.map((w) => `${w.path}=${w.value}`),
  '# ip -batch', ...p.ipBatch,
  '# ip -f mpls -batch', ...p.mplsBatch,
  '# sysctl after', ...p.sysctlsAfter.map((w) => `${w.path}=${w.value}`),
  '',
].join('\n');

const setup = (mode: EncapMode, vips: string[] = ['203.0.113.250', '2001:db8::250']): PodSetup => ({
  pod: { namespace: 'shop', name: 'web-0', uid: 'u0' }, podIp: '203.0.113.10' as IpAddress, podIps: ['203.0.113.10', '2001:db8::10'] as IpAddress[], containerIds: ['c'], vips: vips as IpAddress[], mode,
});

const lo: KernelLink = { name: 'lo', up: true, noarp: true, info: {}, addresses: [{ address: '127.0.0.1', prefixLen: 8, family: 4, scope: 'host', label: 'lo' }, { address: '192.0.2.77', prefixLen: 32, family: 4, scope: 'global', label: 'lo' }] };
const eth0: KernelLink = { name: 'eth0', up: true, noarp: false, kind: 'veth', info: {}, addresses: [{ address: '203.0.113.10', prefixLen: 32, family: 4, scope: 'global', label: 'eth0' }] };
const freshSysctls = new Map([
  ['net/ipv4/conf/eth0/arp_ignore', '0'], ['net/ipv4/conf/eth0/arp_announce', '0'], ['net/ipv4/conf/all/rp_filter', '0'], ['net/ipv4/conf/lo/rp_filter', '0'],
  ['net/mpls/platform_labels', '0'], ['net/mpls/conf/eth0/input', '0'], ['net/ipv6/conf/all/seg6_enabled', '0'], ['net/ipv6/conf/eth0/seg6_enabled', '0'],
]);
const empty: PodKernelState = { links: [lo, eth0], mplsRoutes: [], sysctls: freshSysctls };

/** What the kernel would show after applying `objects` to `empty` (for "nothing to do"). */
function applied(mode: EncapMode): PodKernelState {
  const o = podModes[mode].objects({ setup: podModes[mode].unsupported('2001:db8::250' as IpAddress, setup(mode)) ? setup(mode, ['203.0.113.250']) : setup(mode), podIf: 'eth0', encap });
  const links: KernelLink[] = [lo, eth0].map((l) => ({ ...l, addresses: [...l.addresses, ...o.addresses.filter((a) => a.dev === l.name).map((a) => ({ address: a.address, prefixLen: a.prefixLen, family: a.address.includes(':') ? 6 as const : 4 as const, scope: 'global', ...(a.label ? { label: a.label } : {}) }))] }));
  for (const s of o.links) {
    links.push({ name: s.name, up: true, noarp: s.noarp ?? true, kind: s.kind, ...(s.mac ? { mac: s.mac } : {}), info: { ...s.expect }, addresses: o.addresses.filter((a) => a.dev === s.name).map((a) => ({ address: a.address, prefixLen: a.prefixLen, family: a.address.includes(':') ? 6 as const : 4 as const, scope: 'global' })) });
  }
  const sysctls = new Map(freshSysctls);
  for (const s of o.sysctls) sysctls.set(s.path, s.value);
  return { links, mplsRoutes: o.mplsRoutes.map((r) => ({ label: r.label, dev: r.dev, protocol: '245' })), sysctls };
}

describe('podnet modes and plans', () => {
  for (const mode of ['gre', 'gre-lwt', 'vxlan-lwt', 'mpls'] as EncapMode[]) {
    it(`${mode}: plan for a fresh pod (golden), nothing to do once applied`, () => {
      const s = podModes[mode].unsupported('2001:db8::250' as IpAddress, setup(mode)) ? setup(mode, ['203.0.113.250']) : setup(mode);
      const objects = podModes[mode].objects({ setup: s, podIf: 'eth0', encap });
      golden(`${mode}.plan`, render(planPod(objects, empty, new Map())));
      expect(planPod(objects, applied(mode), new Map()).ops).toBe(0);
    });
  }

  it('mpls refuses IPv6 VIPs (lo cannot mark them as the project\'s); the others take them', () => {
    expect(podModes.mpls.unsupported('2001:db8::1' as IpAddress, setup('mpls'))).toMatch(/IPv6/);
    for (const m of ['gre', 'gre-lwt', 'vxlan-lwt'] as const) expect(podModes[m].unsupported('2001:db8::1' as IpAddress, setup(m))).toBeUndefined();
  });

  it('vxlan-lwt: one decap link per VIP family, each bound to the pod address of that family; no seg6', () => {
    const o = podModes['vxlan-lwt'].objects({ setup: setup('vxlan-lwt'), podIf: 'eth0', encap });
    expect(o.links.map((l) => [l.name, l.expect])).toEqual([
      ['kst-vxlan', { id: 4242, port: 4789, local: '203.0.113.10', learning: false }],
      ['kst-vxlan6', { id: 4242, port: 4789, local6: '2001:db8::10', learning: false }],
    ]);
    expect(o.addresses.map((a) => `${a.dev} ${a.address}/${a.prefixLen}`)).toEqual(['kst-vxlan 203.0.113.250/32', 'kst-vxlan6 2001:db8::250/128']);
    expect(o.sysctls.map((x) => x.path).filter((x) => x.includes('seg6'))).toEqual([]);
    // Only IPv6 VIPs: no IPv4 link, no IPv4 settings (rp_filter, ARP).
    const only6 = podModes['vxlan-lwt'].objects({ setup: setup('vxlan-lwt', ['2001:db8::250']), podIf: 'eth0', encap });
    expect(only6.links.map((l) => l.name)).toEqual(['kst-vxlan6']);
    expect(only6.sysctls).toEqual([]);
    // A pod with no address of the VIP's family cannot be reached by it: refused with the reason.
    const v4pod = { ...setup('vxlan-lwt'), podIps: undefined };
    expect(podModes['vxlan-lwt'].unsupported('2001:db8::250' as IpAddress, v4pod)).toMatch(/IPv6 VIP to the pod's IPv6 address, and pod shop\/web-0 has none/);
    expect(podModes['vxlan-lwt'].unsupported('203.0.113.250' as IpAddress, v4pod)).toBeUndefined();
  });

  it('removal touches only the project\'s objects and puts original settings back', () => {
    const state = applied('mpls');
    const foreign: KernelLink = { name: 'app0', up: true, noarp: false, kind: 'bridge', info: {}, addresses: [{ address: '192.0.2.9', prefixLen: 32, family: 4, scope: 'global', label: 'app0' }] };
    const originals = new Map([['net/mpls/conf/eth0/input', '0'], ['net/mpls/platform_labels', '0'], ['net/ipv4/conf/eth0/arp_ignore', '0']]);
    const p = planPod({ links: [], addresses: [], mplsRoutes: [], sysctls: [] }, { ...state, links: [...state.links, foreign] }, originals);
    expect(p.ipBatch).toEqual(['addr del 203.0.113.250/32 dev lo']);
    expect(p.mplsBatch).toEqual(['route del 100']);
    expect(p.sysctlsBefore).toEqual([]);
    // Restored after the route is gone (platform_labels cannot shrink under a route).
    expect(p.sysctlsAfter).toEqual([
      { path: 'net/mpls/conf/eth0/input', value: '0' }, { path: 'net/mpls/platform_labels', value: '0' }, { path: 'net/ipv4/conf/eth0/arp_ignore', value: '0' },
    ]);
    expect([...p.originalsRestored].sort()).toEqual([...originals.keys()].sort());
  });

  it('recreates a project link whose parameters changed, and removes stray project links', () => {
    const state = applied('vxlan-lwt');
    const changed = state.links.map((l) => (l.name === 'kst-vxlan' ? { ...l, info: { ...l.info, id: 99 } } : l));
    const stray: KernelLink = { name: 'kst-gre', up: true, noarp: true, kind: 'gre', info: {}, addresses: [] };
    const objects = podModes['vxlan-lwt'].objects({ setup: setup('vxlan-lwt'), podIf: 'eth0', encap });
    const p = planPod(objects, { ...state, links: [...changed, stray] }, new Map());
    expect(p.ipBatch).toEqual([
      'link del kst-vxlan',
      'link del kst-gre',
      'link add kst-vxlan address 02:6b:73:74:00:02 arp off type vxlan id 4242 dstport 4789 local 203.0.113.10 nolearning',
      'link set kst-vxlan addrgenmode none',
      'link set kst-vxlan up',
      'addr add 203.0.113.250/32 dev kst-vxlan',
    ]);
    // The IPv6 link (kst-vxlan6) did not change: it keeps its VIP, untouched.
  });

  it('leaves a non-strict reverse-path filter alone and relaxes a strict one', () => {
    const objects = podModes.mpls.objects({ setup: setup('mpls', ['203.0.113.250']), podIf: 'eth0', encap });
    const rp = (all: string, lo: string) => {
      const st = applied('mpls');
      const sysctls = new Map(st.sysctls).set('net/ipv4/conf/all/rp_filter', all).set('net/ipv4/conf/lo/rp_filter', lo);
      return planPod(objects, { ...st, sysctls }, new Map()).sysctlsBefore;
    };
    expect(rp('0', '0')).toEqual([]);
    expect(rp('2', '0')).toEqual([]);
    expect(rp('1', '0')).toEqual([{ path: 'net/ipv4/conf/lo/rp_filter', value: '2' }]);
    expect(rp('0', '1')).toEqual([{ path: 'net/ipv4/conf/lo/rp_filter', value: '2' }]);
  });
});
