// Small builders for model inputs: tests state only what matters to them.
import type { EndpointInput, EndpointSliceInput, IpAddress, ModelSettings, NodeInput, PodInput, ServiceInput } from '../../src/model/index.js';

export const settings = (over: Partial<ModelSettings> = {}): ModelSettings => ({
  annotationKey: 'cmd.nu/tunnel',
  loadBalancerClass: 'cmd.nu/kube-service-tunnel',
  tunnelNodeSelector: 'node=tunnel',
  encapsulation: { mode: 'vxlan-lwt' },
  buckets: 256,
  hashSeed: 0x4b535431,
  bgp: { maintenanceTaint: 'cmd.nu/tunnel-maintenance' },
  pools: [
    { name: 'public', cidrs: ['203.0.113.0/25', '2001:db8:1::/64'], namespaces: ['*'], autoAssign: false, communities: ['64512:100'], largeCommunities: [] },
    { name: 'auto', cidrs: ['203.0.113.128/29', '2001:db8:2::/126'], namespaces: ['default', 'shop'], autoAssign: true, communities: [], largeCommunities: ['64512:1:2'], localPref: 150 },
  ],
  ...over,
});

export const service = (name: string, over: Partial<ServiceInput> = {}): ServiceInput => ({
  namespace: 'default',
  name,
  uid: `uid-${name}`,
  creationTimestamp: '2026-01-01T00:00:00Z',
  type: 'ClusterIP',
  annotations: {},
  loadBalancerSourceRanges: [],
  statusIngressIps: [],
  hasSelector: true,
  ...over,
});

export const tunnelService = (name: string, vips: string, over: Partial<ServiceInput> = {}): ServiceInput =>
  service(name, { annotations: { 'cmd.nu/tunnel': vips }, ...over });

export const ep = (address: string, nodeName: string, over: Partial<EndpointInput> = {}): EndpointInput => ({
  address: address as IpAddress,
  nodeName,
  ready: true,
  serving: true,
  terminating: false,
  ...over,
});

export const slice = (serviceName: string, endpoints: EndpointInput[], over: Partial<EndpointSliceInput> = {}): EndpointSliceInput => ({
  namespace: 'default',
  name: `${serviceName}-${endpoints.length}${endpoints[0]?.address ?? ''}`,
  serviceName,
  addressType: endpoints[0]?.address.includes(':') ? 'IPv6' : 'IPv4',
  endpoints,
  ...over,
});

export const node = (name: string, over: Partial<NodeInput> = {}): NodeInput => ({
  name,
  labels: name.startsWith('tunnel') ? { node: 'tunnel' } : { node: 'worker' },
  internalIps: [],
  ready: true,
  unschedulable: false,
  taintKeys: [],
  ...over,
});

export const pod = (name: string, nodeName: string, ip: string, over: Partial<PodInput> = {}): PodInput => ({
  namespace: 'default',
  name,
  uid: `uid-${name}`,
  nodeName,
  podIps: [ip as IpAddress],
  hostNetwork: false,
  containerIds: [`containerd://${name}`],
  ...over,
});

export const cluster = ['tunnel-1', 'tunnel-2', 'worker-1', 'worker-2'].map((n) => node(n));
