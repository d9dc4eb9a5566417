import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { bucketShares, computeDesiredState, formatStoredTables, IncrementalModel, STORED_TABLE_REASON, storedTablesKey, toStoredTable, type ClusterSnapshot, type IpAddress } from '../../src/model/index.js';
import { cluster, ep, node, pod, service, settings, slice, tunnelService } from './helpers.js';

const web = tunnelService('web', '203.0.113.10');
const webSlice = slice('web', [
  ep('198.51.100.130', 'worker-1', { pod: { namespace: 'default', name: 'w1a' } }),
  ep('198.51.100.194', 'worker-2'),
  ep('198.51.100.195', 'worker-2', { ready: false, serving: true, terminating: true }), // draining
  ep('198.51.100.196', 'worker-2', { ready: false, serving: false, terminating: true }), // gone
  ep('198.51.100.197', 'worker-2', { ready: false, serving: false, terminating: false }), // not ready
]);
const pods = [pod('w1a', 'worker-1', '198.51.100.130'), pod('w2a', 'worker-2', '198.51.100.194'), pod('w2b', 'worker-2', '198.51.100.195'), pod('w2d', 'worker-2', '198.51.100.197')];
const snap = (over: Partial<ClusterSnapshot> = {}): ClusterSnapshot => ({ services: [web], endpointSlices: [webSlice], nodes: cluster, localPods: pods, ...over });

describe('tunnel modes', () => {
  test('a tunnel node announces a VIP with ready endpoints; draining backends own no bucket', () => {
    const s = computeDesiredState(settings(), snap(), 'tunnel-1');
    expect(s).toMatchObject({ node: 'tunnel-1', isTunnelNode: true, mode: 'vxlan-lwt', bucketCount: 256, problems: [] });
    expect(s.vips).toHaveLength(1);
    const v = s.vips[0]!;
    expect(v).toMatchObject({ vip: '203.0.113.10', announced: true, announceReason: 'ready endpoints', pool: 'public' });
    expect(v.table.backends).toEqual([
      { address: '198.51.100.130', nodeName: 'worker-1', pod: { namespace: 'default', name: 'w1a' }, draining: false },
      { address: '198.51.100.194', nodeName: 'worker-2', draining: false },
      { address: '198.51.100.195', nodeName: 'worker-2', draining: true },
    ]);
    expect(Object.fromEntries(bucketShares(v.table))).toEqual({ '198.51.100.130': 128, '198.51.100.194': 128, '198.51.100.195': 0 });
    expect(s.announcements).toEqual([
      { prefix: '203.0.113.10/32', vip: '203.0.113.10', family: 4, communities: ['64512:100'], largeCommunities: [], service: { namespace: 'default', name: 'web', uid: 'uid-web' } },
    ]);
  });

  test('every tunnel node computes the same tables; workers compute them too but announce nothing', () => {
    const t1 = computeDesiredState(settings(), snap(), 'tunnel-1');
    const t2 = computeDesiredState(settings(), snap(), 'tunnel-2');
    const w1 = computeDesiredState(settings(), snap(), 'worker-1');
    expect(t2.vips).toEqual(t1.vips);
    expect(w1.isTunnelNode).toBe(false);
    expect(w1.announcements).toEqual([]);
    expect(w1.vips[0]!.table).toEqual(t1.vips[0]!.table);
    expect(w1.vips[0]!.announceReason).toBe('not a tunnel node (tunnelNodeSelector node=tunnel)');
  });

  test('no ready endpoints: listed, not announced', () => {
    const s = computeDesiredState(settings(), snap({ endpointSlices: [] }), 'tunnel-1');
    expect(s.vips[0]).toMatchObject({ announced: false, announceReason: 'no ready endpoints', table: { backends: [], buckets: { length: 0 } } });
    expect(s.announcements).toEqual([]);
  });

  test('a Service without selector is valid but has nothing to announce', () => {
    const s = computeDesiredState(settings(), snap({ services: [tunnelService('web', '203.0.113.10', { hasSelector: false })], endpointSlices: [] }), 'tunnel-1');
    expect(s.problems).toEqual([]);
    expect(s.vips[0]!.announceReason).toBe('no ready endpoints (Service has no selector)');
  });

  test.each([
    ['exclude-from-external-load-balancers label', { labels: { node: 'tunnel', 'node.kubernetes.io/exclude-from-external-load-balancers': '' } }, 'node tunnel-1 has the label node.kubernetes.io/exclude-from-external-load-balancers'],
    ['maintenance taint', { taintKeys: ['cmd.nu/tunnel-maintenance'] }, 'node tunnel-1 has the maintenance taint cmd.nu/tunnel-maintenance'],
    ['NotReady', { ready: false }, 'node tunnel-1 is NotReady'],
  ])('node maintenance (%s) announces nothing and says why', (_what, over, reason) => {
    const nodes = cluster.map((n) => (n.name === 'tunnel-1' ? node('tunnel-1', over) : n));
    const s = computeDesiredState(settings(), snap({ nodes }), 'tunnel-1');
    expect(s.announcements).toEqual([]);
    expect(s.vips[0]!.announced).toBe(false);
    expect(s.vips[0]!.announceReason).toBe(reason);
    expect(s.vips[0]!.table.buckets).toHaveLength(256); // tables stay: fail static while withdrawn
  });

  test('cordoning alone no longer withdraws (kubernetes#90823); bgp.withdrawWhenCordoned brings it back', () => {
    const nodes = cluster.map((n) => (n.name === 'tunnel-1' ? node('tunnel-1', { unschedulable: true }) : n));
    const s = computeDesiredState(settings(), snap({ nodes }), 'tunnel-1');
    expect(s.maintenance).toBeUndefined();
    expect(s.announcements.map((a) => a.vip)).toEqual(['203.0.113.10']);
    const opted = computeDesiredState(settings({ bgp: { maintenanceTaint: 'cmd.nu/tunnel-maintenance', withdrawWhenCordoned: true } }), snap({ nodes }), 'tunnel-1');
    expect(opted.announcements).toEqual([]);
    expect(opted.maintenance).toBe('node tunnel-1 is cordoned (spec.unschedulable) and bgp.withdrawWhenCordoned is set');
  });

  test('the exclude label counts whatever its value; other labels do not', () => {
    const withLabel = (labels: Record<string, string>) => computeDesiredState(settings(), snap({ nodes: cluster.map((n) => (n.name === 'tunnel-1' ? node('tunnel-1', { labels }) : n)) }), 'tunnel-1');
    expect(withLabel({ node: 'tunnel', 'node.kubernetes.io/exclude-from-external-load-balancers': 'true' }).announcements).toEqual([]);
    expect(withLabel({ node: 'tunnel', 'node.kubernetes.io/exclude-disruption': 'true' }).announcements).toHaveLength(1);
  });

  test('an unknown node announces nothing', () => {
    expect(computeDesiredState(settings(), snap(), 'nowhere').vips[0]!.announceReason).toBe('node nowhere not found');
  });

  test('pod set-ups: local endpoint pods of valid VIPs, ready or not; draining ones keep their VIP', () => {
    const s = computeDesiredState(settings(), snap(), 'worker-2');
    expect(s.podSetups.map((p) => [p.pod.name, p.podIp, p.vips, p.mode])).toEqual([
      ['w2a', '198.51.100.194', ['203.0.113.10'], 'vxlan-lwt'],
      ['w2b', '198.51.100.195', ['203.0.113.10'], 'vxlan-lwt'],
      ['w2d', '198.51.100.197', ['203.0.113.10'], 'vxlan-lwt'],
    ]);
    // Pods of other nodes are ignored even if passed in.
    expect(computeDesiredState(settings(), snap(), 'worker-1').podSetups.map((p) => p.pod.name)).toEqual(['w1a']);
  });

  test('hostNetwork pods get a Problem on the Pod and no set-up', () => {
    const hostPods = [pod('w1a', 'worker-1', '198.51.100.130', { hostNetwork: true })];
    const s = computeDesiredState(settings(), snap({ localPods: hostPods }), 'worker-1');
    expect(s.podSetups).toEqual([]);
    expect(s.problems).toEqual([
      expect.objectContaining({ ref: { kind: 'Pod', namespace: 'default', name: 'w1a', uid: 'uid-w1a' }, reason: 'HostNetworkEndpoint' }),
    ]);
  });

  test('IPv6 VIPs hash over IPv6 endpoints; a family mismatch is a Problem', () => {
    const dual = tunnelService('web', '203.0.113.10, 2001:db8:1::10');
    const s = computeDesiredState(settings(), snap({ services: [dual] }), 'tunnel-1');
    expect(s.vips.map((v) => [v.vip, v.announced])).toEqual([
      ['203.0.113.10', true],
      ['2001:db8:1::10', false],
    ]);
    expect(s.problems.map((p) => p.reason)).toEqual(['VipFamilyMismatch']);
    const v6 = slice('web', [ep('2001:db8:ff::1', 'worker-1')]);
    const s2 = computeDesiredState(settings(), snap({ services: [dual], endpointSlices: [webSlice, v6] }), 'tunnel-1');
    expect(s2.announcements.map((a) => a.prefix)).toEqual(['203.0.113.10/32', '2001:db8:1::10/128']);
    expect(s2.problems).toEqual([]);
  });

  test('a dual-stack pod serving an IPv4 and an IPv6 VIP: one set-up with both VIPs and both pod addresses', () => {
    const dual = tunnelService('web', '203.0.113.10, 2001:db8:1::10');
    const v6 = slice('web', [ep('2001:db8:ff::130', 'worker-1', { pod: { namespace: 'default', name: 'w1a' } })]);
    const dualPod = pod('w1a', 'worker-1', '198.51.100.130', { podIps: ['198.51.100.130', '2001:db8:ff::130'] as IpAddress[] });
    const s = computeDesiredState(settings(), snap({ services: [dual], endpointSlices: [webSlice, v6], localPods: [dualPod] }), 'worker-1');
    // The pod side binds a VXLAN link per family to the pod's address of that family.
    expect(s.podSetups.map((p) => [p.pod.name, p.podIp, p.podIps, p.vips])).toEqual([
      ['w1a', '198.51.100.130', ['198.51.100.130', '2001:db8:ff::130'], ['203.0.113.10', '2001:db8:1::10']],
    ]);
  });

  test('pool BGP attributes go on the announcement', () => {
    const lb = service('api', { type: 'LoadBalancer', loadBalancerClass: 'cmd.nu/kube-service-tunnel' });
    const s = computeDesiredState(settings(), snap({ services: [lb], endpointSlices: [slice('api', [ep('198.51.100.130', 'worker-1')])] }), 'tunnel-1');
    expect(s.announcements).toEqual([expect.objectContaining({ prefix: '203.0.113.129/32', communities: [], largeCommunities: ['64512:1:2'], localPref: 150 })]);
  });
});

describe('mpls mode', () => {
  const mpls = settings({ encapsulation: { mode: 'mpls' } });

  test('a serving node announces a VIP while it has a ready local endpoint, hashing among local endpoints only', () => {
    const w2 = computeDesiredState(mpls, snap(), 'worker-2');
    expect(w2.isTunnelNode).toBe(true);
    expect(w2.announcements.map((a) => a.prefix)).toEqual(['203.0.113.10/32']);
    expect(w2.vips[0]!.table.backends.map((b) => b.address)).toEqual(['198.51.100.194', '198.51.100.195']);
    expect(Object.fromEntries(bucketShares(w2.vips[0]!.table))).toEqual({ '198.51.100.194': 256, '198.51.100.195': 0 });
    expect(w2.vips[0]!.announceReason).toBe('ready local endpoints');
  });

  test('a node without ready local endpoints announces nothing, tunnel label or not', () => {
    const t1 = computeDesiredState(mpls, snap(), 'tunnel-1');
    expect(t1.isTunnelNode).toBe(false);
    expect(t1.announcements).toEqual([]);
    expect(t1.vips[0]!.announceReason).toBe('no ready local endpoints');
    const onlyDraining = slice('web', [ep('198.51.100.195', 'worker-2', { ready: false, terminating: true })]);
    expect(computeDesiredState(mpls, snap({ endpointSlices: [onlyDraining] }), 'worker-2').announcements).toEqual([]);
  });

  test('a serving node with the maintenance taint withdraws; a cordoned one keeps announcing', () => {
    const tainted = cluster.map((n) => (n.name === 'worker-2' ? node('worker-2', { taintKeys: ['cmd.nu/tunnel-maintenance'] }) : n));
    expect(computeDesiredState(mpls, snap({ nodes: tainted }), 'worker-2').announcements).toEqual([]);
    const cordoned = cluster.map((n) => (n.name === 'worker-2' ? node('worker-2', { unschedulable: true }) : n));
    expect(computeDesiredState(mpls, snap({ nodes: cordoned }), 'worker-2').announcements).not.toEqual([]);
  });
});

describe('determinism and incremental updates', () => {
  const many = (n: number) => {
    const services = Array.from({ length: n }, (_, i) => tunnelService(`s${i}`, `203.0.113.${i + 1}`));
    const endpointSlices = services.map((s, i) => slice(s.name, Array.from({ length: (i % 5) + 1 }, (_, j) => ep(`198.51.100.${(i * 5 + j) % 250}`, j % 2 ? 'worker-1' : 'worker-2'))));
    return { services, endpointSlices, nodes: cluster, localPods: [] };
  };

  test('output does not depend on input order', () => {
    const base = many(20);
    const expected = computeDesiredState(settings(), base, 'tunnel-1');
    fc.assert(
      fc.property(fc.integer(), (k) => {
        const rot = <T>(xs: readonly T[]) => [...xs.slice(Math.abs(k) % xs.length), ...xs.slice(0, Math.abs(k) % xs.length)].reverse();
        const shuffled = { ...base, services: rot(base.services), endpointSlices: rot(base.endpointSlices).map((s) => ({ ...s, endpoints: rot(s.endpoints) })), nodes: rot(base.nodes) };
        expect(computeDesiredState(settings(), shuffled, 'tunnel-1')).toEqual(expected);
      }),
      { numRuns: 30 },
    );
  });

  test('IncrementalModel after a sequence of changes equals a fresh computation', () => {
    const base = many(12);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 11 }), fc.constantFrom('ready', 'drain', 'delete-slice', 'delete-service', 'cordon', 'uncordon', 'add-pod', 'store', 'store-other', 'store-bad')), { maxLength: 25 }),
        (ops) => {
          const model = new IncrementalModel(settings(), 'worker-1').replaceAll(base);
          let current: ClusterSnapshot = { ...base };
          for (const [i, op] of ops) {
            const s = base.services[i]!;
            const sl = base.endpointSlices[i]!;
            if (op === 'ready' || op === 'drain') {
              const changed = { ...sl, endpoints: sl.endpoints.map((e, j) => (j === 0 ? { ...e, ready: op === 'ready', terminating: op === 'drain' } : e)) };
              model.setEndpointSlice(changed);
              current = { ...current, endpointSlices: [...current.endpointSlices.filter((x) => x.name !== sl.name), changed] };
            } else if (op === 'delete-slice') {
              model.deleteEndpointSlice(sl.namespace, sl.name);
              current = { ...current, endpointSlices: current.endpointSlices.filter((x) => x.name !== sl.name) };
            } else if (op === 'delete-service') {
              model.deleteService(s.namespace, s.name);
              current = { ...current, services: current.services.filter((x) => x.name !== s.name) };
            } else if (op === 'store-bad') {
              // An unreadable annotation: a Problem while it is there (tracked per Service, not found by a scan).
              const svc = current.services.find((x) => x.name === s.name);
              if (!svc) continue;
              const changed = { ...svc, annotations: { ...svc.annotations, [storedTablesKey(settings().annotationKey)]: `{"v":1,"tables":{"${i}":1}}` } };
              model.setService(changed);
              current = { ...current, services: current.services.map((x) => (x.name === s.name ? changed : x)) };
            } else if (op === 'store' || op === 'store-other') {
              // The leader writes a table back (stored tables): only that annotation changes.
              // 'store-other': another VIP's table, so the stored one differs from the computed.
              const svc = current.services.find((x) => x.name === s.name);
              const vips = model.desiredState().vips;
              const own = vips.find((v) => v.service.name === s.name);
              const from = op === 'store' ? own : vips[(vips.indexOf(own!) + 1) % vips.length];
              if (!svc || !own || !from || from.table.buckets.length === 0) continue;
              const key = storedTablesKey(settings().annotationKey);
              const changed = { ...svc, annotations: { ...svc.annotations, [key]: formatStoredTables(new Map([[own.vip, toStoredTable(from.table)]])) } };
              model.setService(changed);
              current = { ...current, services: current.services.map((x) => (x.name === s.name ? changed : x)) };
            } else if (op === 'cordon' || op === 'uncordon') {
              const n = node('worker-1', { taintKeys: op === 'cordon' ? ['cmd.nu/tunnel-maintenance'] : [] });
              model.setNode(n);
              current = { ...current, nodes: [...current.nodes.filter((x) => x.name !== 'worker-1'), n] };
            } else {
              const p = pod(`p${i}`, 'worker-1', sl.endpoints[0]!.address);
              model.setPod(p);
              current = { ...current, localPods: [...current.localPods.filter((x) => x.name !== p.name), p] };
            }
            const got = model.desiredState();
            expect(got).toEqual(computeDesiredState(settings(), current, 'worker-1'));
            // Independently of the model: every Service with a VIP and an unreadable annotation is reported.
            const bad = current.services.filter((x) => x.annotations[storedTablesKey(settings().annotationKey)]?.includes('":1}}') && got.vips.some((v) => v.service.name === x.name));
            expect(got.problems.filter((p) => p.reason === STORED_TABLE_REASON).map((p) => p.ref.name).sort()).toEqual(bad.map((x) => x.name).sort());
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  test('an endpoint change recomputes only its own VIP table', () => {
    const base = many(10);
    const model = new IncrementalModel(settings(), 'tunnel-1').replaceAll(base);
    const before = model.desiredState();
    const sl = base.endpointSlices[3]!;
    model.setEndpointSlice({ ...sl, endpoints: [...sl.endpoints, ep('198.51.100.251', 'worker-1')] });
    const after = model.desiredState();
    after.vips.forEach((v, i) => {
      if (i === 3) expect(v.table).not.toBe(before.vips[i]!.table);
      else expect(v.table).toBe(before.vips[i]!.table); // same object: not recomputed
    });
  });
});
