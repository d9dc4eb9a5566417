// src/kube/objects.ts: plain API objects to model inputs, with issues instead of exceptions.
import { expect, test } from '@jest/globals';
import fc from 'fast-check';
import { convertEndpointSlice, convertNode, convertObjects, convertPod, convertService, describeIssue, objectConverters } from '../../src/kube/objects.js';

test('Service: defaults, annotations, status and families', () => {
  const c = convertService({
    kind: 'Service',
    metadata: { name: 'web', uid: 'u1', creationTimestamp: '2026-01-01T00:00:00Z', annotations: { 'cmd.nu/tunnel': '203.0.113.10' } },
    spec: { type: 'LoadBalancer', loadBalancerClass: 'x', selector: { app: 'web' }, ipFamilies: ['IPv4', 'IPv6'], loadBalancerSourceRanges: ['198.51.100.0/24'] },
    status: { loadBalancer: { ingress: [{ ip: '203.0.113.129' }, { hostname: 'lb.example' }] } },
  });
  expect(c.issues).toEqual([]);
  expect(c.value).toEqual({
    namespace: 'default',
    name: 'web',
    uid: 'u1',
    creationTimestamp: '2026-01-01T00:00:00Z',
    type: 'LoadBalancer',
    loadBalancerClass: 'x',
    annotations: { 'cmd.nu/tunnel': '203.0.113.10' },
    loadBalancerSourceRanges: ['198.51.100.0/24'],
    statusIngressIps: ['203.0.113.129'],
    hasSelector: true,
    ipFamilies: ['IPv4', 'IPv6'],
  });
});

test('Service: bad fields become issues with paths, the rest still converts', () => {
  const c = convertService({ metadata: { name: 'web', namespace: 'shop', annotations: { 'cmd.nu/tunnel': 42 } }, spec: { type: 'Loadbalancer', ipFamilies: ['IPv5'] } });
  expect(c.value).toMatchObject({ namespace: 'shop', name: 'web', type: 'Loadbalancer', annotations: {}, hasSelector: false });
  expect(c.issues.map(describeIssue)).toEqual([
    'Service shop/web: spec.type: "Loadbalancer" is not one of ClusterIP, NodePort, LoadBalancer, ExternalName',
    'Service shop/web: spec.ipFamilies[0]: "IPv5" is not IPv4 or IPv6',
    'Service shop/web: metadata.annotations["cmd.nu/tunnel"]: expected a string value, got 42 (quote it in YAML)',
  ]);
});

test('EndpointSlice: API condition defaults and families', () => {
  const c = convertEndpointSlice({
    metadata: { name: 's', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: [
      { addresses: ['198.51.100.1'], nodeName: 'w1', targetRef: { kind: 'Pod', name: 'p1', uid: 'pu' } },
      { addresses: ['198.51.100.2'], conditions: { ready: false, terminating: true, serving: true } },
      { addresses: ['198.51.100.3'], conditions: { ready: false } },
      { addresses: ['2001:db8::1', 'x'] },
    ],
  });
  expect(c.value!.endpoints).toEqual([
    { address: '198.51.100.1', nodeName: 'w1', ready: true, serving: true, terminating: false, pod: { namespace: 'default', name: 'p1', uid: 'pu' } },
    { address: '198.51.100.2', ready: false, serving: true, terminating: true },
    { address: '198.51.100.3', ready: false, serving: false, terminating: false },
  ]);
  expect(c.issues.map((i) => i.field)).toEqual(['endpoints[3].addresses[0]', 'endpoints[3].addresses[1]']);
});

test('EndpointSlice: a pod listed by two Services is one endpoint object; another condition is another', () => {
  const sliceOf = (service: string, ready: boolean) =>
    convertEndpointSlice({
      metadata: { name: `${service}-abc`, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['198.51.100.7'], nodeName: 'w1', conditions: { ready }, targetRef: { kind: 'Pod', name: 'p7', uid: 'u7' } }],
    }).value!.endpoints[0]!;
  const web = sliceOf('web', true);
  expect(sliceOf('api', true)).toBe(web);
  const notReady = sliceOf('api', false);
  expect(notReady).not.toBe(web);
  expect(notReady).toMatchObject({ address: '198.51.100.7', ready: false, pod: { name: 'p7' } });
});

test('EndpointSlice without its service-name label is unusable', () => {
  const c = convertEndpointSlice({ metadata: { name: 's' }, addressType: 'IPv4', endpoints: [] });
  expect(c.value).toBeUndefined();
  expect(c.issues[0]!.field).toBe('metadata.labels["kubernetes.io/service-name"]');
});

test('Node and Pod', () => {
  const n = convertNode({
    metadata: { name: 'w1', labels: { node: 'tunnel' } },
    spec: { unschedulable: true, taints: [{ key: 'cmd.nu/tunnel-maintenance', effect: 'NoSchedule' }] },
    status: { addresses: [{ type: 'InternalIP', address: '192.0.2.21' }, { type: 'Hostname', address: 'w1' }], conditions: [{ type: 'Ready', status: 'True' }] },
  });
  expect(n).toEqual({ value: { name: 'w1', labels: { node: 'tunnel' }, internalIps: ['192.0.2.21'], ready: true, unschedulable: true, taintKeys: ['cmd.nu/tunnel-maintenance'] }, issues: [] });
  const p = convertPod({ metadata: { name: 'p', namespace: 'shop', uid: 'u' }, spec: { nodeName: 'w1' }, status: { podIP: '198.51.100.9', containerStatuses: [{ containerID: 'containerd://abc' }] } });
  expect(p.value).toEqual({ namespace: 'shop', name: 'p', uid: 'u', nodeName: 'w1', podIps: ['198.51.100.9'], hostNetwork: false, containerIds: ['containerd://abc'] });
});

test('never throws, whatever the input', () => {
  fc.assert(
    fc.property(fc.anything(), (obj) => {
      for (const convert of [convertService, convertEndpointSlice, convertNode, convertPod]) convert(obj);
      convertObjects([obj, { kind: 'Service', metadata: obj }, { kind: 'EndpointSlice', metadata: { name: 'x' }, endpoints: obj }]);
    }),
    { numRuns: 500 },
  );
});

test('convertObjects flattens Lists, skips other kinds and flags duplicates', () => {
  const r = convertObjects([
    { kind: 'List', items: [{ kind: 'Node', metadata: { name: 'n1' } }, { kind: 'Deployment', metadata: { name: 'd' } }] },
    { kind: 'Node', metadata: { name: 'n1' } },
    null,
  ]);
  expect(r.nodes).toHaveLength(1);
  expect(r.skipped).toBe(1);
  expect(r.issues.map(describeIssue)).toEqual(['Node n1: metadata.name: defined more than once; the last definition is used']);
});

test('objectConverters fit the kube area and report issues', () => {
  const seen: string[] = [];
  const conv = objectConverters((i) => seen.push(describeIssue(i)));
  expect(conv.service({ metadata: { name: 'a', namespace: 'b' }, spec: { type: 7 } })).toMatchObject({ name: 'a', type: 'ClusterIP' });
  expect(seen).toEqual(['Service b/a: spec.type: expected a string, got 7']);
});
