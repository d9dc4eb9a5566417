import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { allocate, parseIp, preparePools, resolveVips, type IpAddress } from '../../src/model/index.js';
import { service, settings, tunnelService } from './helpers.js';

const reasons = (r: ReturnType<typeof resolveVips>) => r.problems.map((p) => `${p.ref.namespace}/${p.ref.name} ${p.reason}`);

describe('tunnel annotation', () => {
  test('one address, a list, IPv4 and IPv6, canonicalised and deduplicated', () => {
    const r = resolveVips(settings(), [tunnelService('web', ' 203.0.113.10 ,2001:DB8:1::0010, 203.0.113.10,')]);
    expect(r.problems).toEqual([]);
    expect(r.vips.map((v) => [v.vip, v.family, v.pool.name, v.origin])).toEqual([
      ['203.0.113.10', 4, 'public', 'annotation'],
      ['2001:db8:1::10', 6, 'public', 'annotation'],
    ]);
  });

  test('the annotation key comes from the configuration', () => {
    const s = service('web', { annotations: { 'example.com/vip': '203.0.113.10', 'cmd.nu/tunnel': '203.0.113.11' } });
    expect(resolveVips(settings({ annotationKey: 'example.com/vip' }), [s]).vips.map((v) => v.vip)).toEqual(['203.0.113.10']);
  });

  test.each([
    ['bogus', 'InvalidTunnelAddress', '"bogus" is not an IPv4 or IPv6 address'],
    ['', 'InvalidTunnelAddress', 'is empty'],
    ['0.0.0.0', 'InvalidTunnelAddress', '0.0.0.0 is an unspecified address'],
    ['127.0.0.1', 'InvalidTunnelAddress', 'loopback'],
    ['224.0.0.5', 'InvalidTunnelAddress', 'multicast'],
    ['ff05::2', 'InvalidTunnelAddress', 'multicast'],
    ['169.254.0.9', 'InvalidTunnelAddress', 'link-local'],
    ['fe80::9', 'InvalidTunnelAddress', 'link-local'],
    ['255.255.255.255', 'InvalidTunnelAddress', 'broadcast'],
    ['192.0.2.1', 'VipNotInPool', '192.0.2.1 is outside every configured pool'],
    ['2001:db8:9::1', 'VipNotInPool', 'outside every configured pool'],
  ])('%j is rejected: %s', (value, reason, text) => {
    const r = resolveVips(settings(), [tunnelService('web', value)]);
    expect(r.vips).toEqual([]);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ ref: { kind: 'Service', namespace: 'default', name: 'web' }, reason });
    expect(r.problems[0]!.message).toContain('metadata.annotations["cmd.nu/tunnel"]');
    expect(r.problems[0]!.message).toContain(text);
  });

  test('a pool that does not allow the namespace rejects the VIP', () => {
    const r = resolveVips(settings(), [tunnelService('web', '203.0.113.130', { namespace: 'other' })]);
    expect(r.vips).toEqual([]);
    expect(r.problems[0]!.reason).toBe('VipNamespaceNotAllowed');
    expect(r.problems[0]!.message).toContain('pool "auto", which does not allow namespace "other"');
  });

  test('a bad source range rejects the Service (fail closed)', () => {
    const r = resolveVips(settings(), [tunnelService('web', '203.0.113.10', { loadBalancerSourceRanges: ['198.51.100.0/24', 'nope'] })]);
    expect(r.vips).toEqual([]);
    expect(r.problems[0]).toMatchObject({ reason: 'InvalidSourceRange' });
    expect(r.problems[0]!.message).toContain('spec.loadBalancerSourceRanges[1]');
    const ok = resolveVips(settings(), [tunnelService('web', '203.0.113.10', { loadBalancerSourceRanges: ['198.51.100.7/24'] })]);
    expect(ok.vips[0]!.sourceRanges).toEqual(['198.51.100.0/24']);
  });
});

describe('conflicts', () => {
  test('the oldest Service keeps a contested VIP; the other gets a Problem', () => {
    const old = tunnelService('zeta', '203.0.113.10', { creationTimestamp: '2025-01-01T00:00:00Z' });
    const young = tunnelService('alpha', '203.0.113.10, 203.0.113.11', { creationTimestamp: '2026-01-01T00:00:00Z' });
    for (const order of [[old, young], [young, old]]) {
      const r = resolveVips(settings(), order);
      expect(r.vips.map((v) => [v.vip, v.service.name])).toEqual([
        ['203.0.113.10', 'zeta'],
        ['203.0.113.11', 'alpha'],
      ]);
      expect(reasons(r)).toEqual(['default/alpha VipConflict']);
      expect(r.problems[0]!.message).toContain('already used by Service default/zeta');
    }
  });

  test('same creation time: namespace/name decides, deterministically', () => {
    const a = tunnelService('a', '203.0.113.10', { namespace: 'ns2' });
    const b = tunnelService('b', '203.0.113.10', { namespace: 'ns1' });
    fc.assert(
      fc.property(fc.boolean(), (swap) => {
        const r = resolveVips(settings(), swap ? [a, b] : [b, a]);
        expect(r.vips[0]!.service.namespace).toBe('ns1');
        expect(reasons(r)).toEqual(['ns2/a VipConflict']);
      }),
    );
  });
});

describe('LoadBalancer allocation', () => {
  const lb = (name: string, over = {}) =>
    service(name, { type: 'LoadBalancer', loadBalancerClass: 'cmd.nu/kube-service-tunnel', ...over });

  test('allocates the lowest free address per family, skipping the network address', () => {
    const r = resolveVips(settings(), [lb('a', { ipFamilies: ['IPv4', 'IPv6'] }), lb('b', { creationTimestamp: '2026-02-01T00:00:00Z' })]);
    expect(r.problems).toEqual([]);
    expect(Object.fromEntries(r.loadBalancerIngress)).toEqual({ 'default/a': ['203.0.113.129', '2001:db8:2::1'], 'default/b': ['203.0.113.130'] });
    expect(r.vips.every((v) => v.origin === 'allocated' && v.pool.name === 'auto')).toBe(true);
  });

  test('keeps current status addresses while valid, even when a lower one is free', () => {
    const r = resolveVips(settings(), [lb('a', { statusIngressIps: ['203.0.113.133'] }), lb('b', { creationTimestamp: '2026-02-01T00:00:00Z' })]);
    expect(Object.fromEntries(r.loadBalancerIngress)).toEqual({ 'default/a': ['203.0.113.133'], 'default/b': ['203.0.113.129'] });
  });

  test('a status address outside every pool is replaced', () => {
    const r = resolveVips(settings(), [lb('a', { statusIngressIps: ['192.0.2.50'] })]);
    expect(r.loadBalancerIngress.get('default/a')).toEqual(['203.0.113.129']);
  });

  test('other classes and plain LoadBalancers are not ours', () => {
    const r = resolveVips(settings(), [service('x', { type: 'LoadBalancer' }), service('y', { type: 'LoadBalancer', loadBalancerClass: 'metallb' })]);
    expect(r.vips).toEqual([]);
    expect(r.loadBalancerIngress.size).toBe(0);
  });

  test('an annotation on our LoadBalancer wins over allocation', () => {
    const r = resolveVips(settings(), [lb('a', { annotations: { 'cmd.nu/tunnel': '203.0.113.10' } })]);
    expect(r.loadBalancerIngress.get('default/a')).toEqual(['203.0.113.10']);
  });

  test('exhaustion and missing pools are Problems on the Service', () => {
    // auto has 203.0.113.128/29: .129-.134 usable (6 addresses).
    const many = Array.from({ length: 7 }, (_, i) => lb(`s${i}`, { creationTimestamp: `2026-01-0${i + 1}T00:00:00Z` }));
    const r = resolveVips(settings(), [...many, lb('far', { namespace: 'other', creationTimestamp: '2026-03-01T00:00:00Z' })]);
    expect(r.vips).toHaveLength(6);
    expect(reasons(r)).toEqual(['default/s6 AllocationFailed', 'other/far AllocationFailed']);
    expect(r.problems[0]!.message).toContain('no free IPv4 address left in pool "auto"');
    expect(r.problems[1]!.message).toContain('no autoAssign pool with IPv4 addresses allows namespace "other"');
  });

  test('an older LoadBalancer keeps its address against a younger annotation', () => {
    const holder = lb('holder', { creationTimestamp: '2025-01-01T00:00:00Z', statusIngressIps: ['203.0.113.130'] });
    const claimant = tunnelService('claimant', '203.0.113.130');
    const r = resolveVips(settings(), [claimant, holder]);
    expect(r.loadBalancerIngress.get('default/holder')).toEqual(['203.0.113.130']);
    expect(reasons(r)).toEqual(['default/claimant VipConflict']);
  });
});

describe('requested addresses, pool by annotation, pools selecting Services by label', () => {
  const lb = (name: string, over = {}) => service(name, { type: 'LoadBalancer', loadBalancerClass: 'cmd.nu/kube-service-tunnel', ...over });
  const labelled = () =>
    settings({
      pools: [
        ...settings().pools,
        { name: 'edge', cidrs: ['198.51.100.0/29'], namespaces: ['*'], autoAssign: true, serviceSelector: 'tier=edge', communities: [], largeCommunities: [] },
        { name: 'manual', cidrs: ['198.51.100.16/29'], namespaces: ['shop'], autoAssign: false, communities: [], largeCommunities: [] },
      ],
    });

  test('spec.loadBalancerIP is the Service\'s address when it lies in a pool that admits the Service', () => {
    const r = resolveVips(settings(), [lb('a', { loadBalancerIP: '203.0.113.133' })]);
    expect(r.problems).toEqual([]);
    expect(r.loadBalancerIngress.get('default/a')).toEqual(['203.0.113.133']);
    expect(r.vips.map((v) => [v.vip, v.origin, v.pool.name])).toEqual([['203.0.113.133', 'requested', 'auto']]);
  });

  test('spec.loadBalancerIP outside the pools, in a pool that refuses the namespace, or taken: an Event, no other address instead', () => {
    const r = resolveVips(settings(), [
      lb('outside', { loadBalancerIP: '192.0.2.99' }),
      lb('refused', { namespace: 'other', loadBalancerIP: '203.0.113.130' }),
      lb('holder', { creationTimestamp: '2025-01-01T00:00:00Z', statusIngressIps: ['203.0.113.131'] }),
      lb('late', { loadBalancerIP: '203.0.113.131' }),
    ]);
    expect(reasons(r).sort()).toEqual(['default/late VipConflict', 'default/outside VipNotInPool', 'other/refused VipNamespaceNotAllowed']);
    expect(r.problems.find((p) => p.ref.name === 'outside')!.message).toContain('spec.loadBalancerIP: 192.0.2.99 is outside every configured pool');
    expect(r.loadBalancerIngress.get('default/outside')).toEqual([]);
    expect(r.loadBalancerIngress.get('default/late')).toEqual([]);
    expect(r.loadBalancerIngress.get('default/holder')).toEqual(['203.0.113.131']);
  });

  test('the tunnel annotation and spec.loadBalancerIP both set: the annotation wins, with an Event', () => {
    const r = resolveVips(settings(), [lb('a', { loadBalancerIP: '203.0.113.133', annotations: { 'cmd.nu/tunnel': '203.0.113.10' } })]);
    expect(r.loadBalancerIngress.get('default/a')).toEqual(['203.0.113.10']);
    expect(reasons(r)).toEqual(['default/a ConflictingAddressRequest']);
  });

  test('the pool annotation picks the pool, autoAssign or not; an unknown or refusing pool gives no address', () => {
    const r = resolveVips(labelled(), [
      lb('manual', { namespace: 'shop', annotations: { 'cmd.nu/tunnel-pool': 'manual' } }),
      lb('typo', { annotations: { 'cmd.nu/tunnel-pool': 'manuel' } }),
      lb('refused', { annotations: { 'cmd.nu/tunnel-pool': 'manual' } }),
    ]);
    expect(r.loadBalancerIngress.get('shop/manual')).toEqual(['198.51.100.17']);
    expect(r.loadBalancerIngress.get('default/typo')).toEqual([]);
    expect(r.loadBalancerIngress.get('default/refused')).toEqual([]);
    expect(reasons(r).sort()).toEqual(['default/refused VipNamespaceNotAllowed', 'default/typo UnknownPool']);
    expect(r.problems.find((p) => p.ref.name === 'typo')!.message).toContain('"manuel" is not a configured pool (pools: public, auto, edge, manual)');
  });

  test('a requested address must lie in the requested pool', () => {
    const r = resolveVips(labelled(), [lb('a', { namespace: 'shop', loadBalancerIP: '203.0.113.130', annotations: { 'cmd.nu/tunnel-pool': 'manual' } })]);
    expect(reasons(r)).toEqual(['shop/a VipNotInRequestedPool']);
  });

  test('a pool with a serviceSelector serves only Services whose labels match', () => {
    const r = resolveVips(labelled(), [lb('edge', { labels: { tier: 'edge' }, annotations: { 'cmd.nu/tunnel-pool': 'edge' } }), lb('plain', { annotations: { 'cmd.nu/tunnel-pool': 'edge' } })]);
    expect(r.loadBalancerIngress.get('default/edge')).toEqual(['198.51.100.1']);
    expect(r.loadBalancerIngress.get('default/plain')).toEqual([]);
    expect(r.problems.map((p) => p.message)).toEqual(['metadata.annotations["cmd.nu/tunnel-pool"]: pool "edge" admits only Services whose labels match "tier=edge"; the Service gets no address']);
    const annotated = resolveVips(labelled(), [tunnelService('x', '198.51.100.2'), tunnelService('y', '198.51.100.3', { labels: { tier: 'edge' } })]);
    expect(annotated.vips.map((v) => v.vip)).toEqual(['198.51.100.3']);
    expect(reasons(annotated)).toEqual(['default/x VipNamespaceNotAllowed']);
  });

  test('autoAssign pools with a serviceSelector are skipped for Services that do not match', () => {
    const only = settings({ pools: [{ name: 'edge', cidrs: ['198.51.100.0/29'], namespaces: ['*'], autoAssign: true, serviceSelector: 'tier=edge', communities: [], largeCommunities: [] }] });
    const r = resolveVips(only, [lb('a', { labels: { tier: 'edge' } }), lb('b', { labels: { tier: 'core' } })]);
    expect(r.loadBalancerIngress.get('default/a')).toEqual(['198.51.100.1']);
    expect(r.loadBalancerIngress.get('default/b')).toEqual([]);
    expect(r.problems[0]!.message).toContain("and the Service's labels");
  });
});

describe('allocate (pure allocator)', () => {
  const pools = preparePools(settings().pools);
  const ip = (s: string) => parseIp(s)!;

  test('deterministic, and never hands out a taken address or the same address twice', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 128, max: 135 }), { maxLength: 4 }), fc.integer({ min: 1, max: 8 }), (takenOctets, n) => {
        const taken = new Set(takenOctets.map((o) => ip(`203.0.113.${o}`)));
        const reqs = Array.from({ length: n }, (_, i) => ({ key: `default/s${i}`, namespace: 'default', families: [4 as const], current: [] as IpAddress[] }));
        const a = allocate(pools, reqs, taken);
        expect(allocate(pools, reqs, taken)).toEqual(a);
        const got = [...a.values()].flatMap((x) => x.addresses.map((y) => y.ip));
        expect(new Set(got).size).toBe(got.length);
        for (const g of got) expect(taken.has(g)).toBe(false);
        const free = [129, 130, 131, 132, 133, 134].filter((o) => !takenOctets.includes(o)).length;
        expect(got).toHaveLength(Math.min(n, free));
      }),
    );
  });

  test('the keep pass runs before new allocations', () => {
    const reqs = [
      { key: 'a', namespace: 'default', families: [4 as const], current: [] },
      { key: 'b', namespace: 'default', families: [4 as const], current: [ip('203.0.113.129')] },
    ];
    const a = allocate(pools, reqs, new Set());
    expect(a.get('b')!.addresses).toEqual([{ ip: '203.0.113.129', pool: 'auto', kept: true }]);
    expect(a.get('a')!.addresses).toEqual([{ ip: '203.0.113.130', pool: 'auto', kept: false }]);
  });
});
