// The lab's network as a pure description: which hosts exist, in which namespaces, with
// which links, addresses and routes. `lab up`, `lab down`, `lab status`, the seed objects
// for the API server and the agents' config are all derived from this one value, so they
// cannot disagree with each other.
//
//                       client 198.51.100.10, 2001:db8:4b53:c::10
//                          │ (client link 198.51.100.0/26, 2001:db8:4b53:c::/64)
//                       router (FRR) 198.51.100.1, 192.0.2.1 / 2001:db8:4b53:1::1 on bridge br-nodes
//        ┌────────────┬────┴───────┬─────────────┬─────────────┐  node network 192.0.2.0/24, 2001:db8:4b53:1::/64
//     apiserver    tunnel-1     tunnel-2      worker-1      worker-2
//     192.0.2.2    192.0.2.11   192.0.2.12    192.0.2.21    192.0.2.22     (IPv6: 2001:db8:4b53:1::<same>)
//                                             pods .130 .131 pods .194 .195 (198.51.100.128/25)
//                                             2001:db8:4b53:21::/64  2001:db8:4b53:22::/64
//
// Dual-stack except the API server: every pod has an IPv4 and an IPv6 address, and the demo
// Service has an IPv4 and an IPv6 VIP (2001:db8:4b53:ff::10), announced over a BGP session
// per family between each tunnel node and the router.
//
// Every address comes from the documentation ranges. Interface names inside the lab never
// start with the project's link prefix ("kst"): the agent owns those and may delete them.

/** `router`: the router the client is behind (the spine in the racks topology); `tor-router`: a rack's top-of-rack router. */
export type HostRole = 'router' | 'tor-router' | 'client' | 'apiserver' | 'tunnel-node' | 'serving-node' | 'pod';

export interface LabAddress {
  readonly ifname: string;
  /** CIDR as configured on the interface, e.g. "192.0.2.11/24". */
  readonly cidr: string;
}

export interface LabRoute {
  readonly dst: string;
  readonly via?: string;
  readonly dev?: string;
  /** Source address hint for locally originated packets. */
  readonly src?: string;
  readonly onlink?: boolean;
}

export interface LabHost {
  /** Logical name: also the Kubernetes node or pod name. */
  readonly name: string;
  readonly role: HostRole;
  readonly netns: string;
  readonly addresses: readonly LabAddress[];
  readonly routes: readonly LabRoute[];
  /** Pods: the node they run on. */
  readonly node?: string;
  /** Nodes: Kubernetes labels. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Nodes: Kubernetes annotations (the racks topology's per-node `cmd.nu/bgp-asn`). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Serving nodes: the pod CIDR (host-gw style, like flannel or Calico without overlay). */
  readonly podCidr?: string;
  /** Serving nodes: the IPv6 pod CIDR (dual-stack). */
  readonly podCidr6?: string;
}

/** A veth pair; `bridge` enslaves the a-side to a bridge in host a. */
export interface LabLink {
  readonly a: { readonly host: string; readonly ifname: string };
  readonly b: { readonly host: string; readonly ifname: string };
  readonly bridge?: string;
}

export interface LabBridge {
  readonly host: string;
  readonly ifname: string;
}

export interface LabVip {
  readonly address: string;
  /** The same Service's IPv6 VIP (the annotation lists both), served by the pods' IPv6 addresses. */
  readonly address6?: string;
  readonly serviceNamespace: string;
  readonly serviceName: string;
  readonly ports: readonly number[];
}

/** Which lab: `default` (one router, one node network) or `racks` (racks-topology.ts). */
export type TopologyKind = 'default' | 'racks';
export const TOPOLOGY_KINDS: readonly TopologyKind[] = ['default', 'racks'];

/** One rack of the racks topology: its top-of-rack router and the nodes behind it. */
export interface LabRack {
  /** The rack's zone label value (`topology.kubernetes.io/zone`), e.g. "rack-1". */
  readonly zone: string;
  /** The ToR router's host name and which implementation runs it. */
  readonly tor: string;
  readonly torImpl: 'frr' | 'bird';
  readonly torAsn: number;
  /** The ToR's addresses on the rack network: the rack's nodes dial these. */
  readonly torAddress: string;
  readonly torAddress6: string;
  /** The ToR's and the spine's ends of their point-to-point link. */
  readonly uplink: { readonly tor: string; readonly tor6: string; readonly spine: string; readonly spine6: string };
  /** The AS number of this rack's nodes (their `cmd.nu/bgp-asn` annotation). */
  readonly nodeAsn: number;
  readonly subnet: string;
  readonly subnet6: string;
  /** The rack's nodes, by name. */
  readonly nodes: readonly string[];
}

export interface LabTopology {
  readonly prefix: string;
  readonly kind: TopologyKind;
  /** The racks topology only: its racks, in order. */
  readonly racks?: readonly LabRack[];
  readonly hosts: readonly LabHost[];
  readonly bridges: readonly LabBridge[];
  readonly links: readonly LabLink[];
  readonly vips: readonly LabVip[];
  /** `address6`: the router on the node network's IPv6 subnet; the nodes' IPv6 BGP sessions go there. */
  readonly router: { readonly host: string; readonly asn: number; readonly routerId: string; readonly address: string; readonly address6: string };
  readonly nodeAsn: number;
  readonly apiServer: { readonly host: string; readonly address: string; readonly port: number; readonly url: string };
  readonly echoPort: number;
  /** VXLAN network identifier and UDP port the agents are configured with. */
  readonly vni: number;
  readonly vxlanPort: number;
}

export interface TopologyOptions {
  /** Namespace name prefix; one lab per prefix. Must be short and end in "-". */
  readonly prefix?: string;
}

export const DEFAULT_PREFIX = 'kstlab-';
/** Gateway every pod uses (Calico-style): present on each node-side pod veth. */
export const POD_GATEWAY = '169.254.1.1';
/** The same for IPv6: a link-local address on each node-side pod veth. */
export const POD_GATEWAY6 = 'fe80::1';
const NODE_NET_LEN = 24;
const NODE_NET6_LEN = 64;

/**
 * The client, behind `router` (its interface `c-client` holds 198.51.100.1/26 and
 * 2001:db8:4b53:c::1/64): where the traffic to the VIPs comes from, in both topologies.
 */
export function clientHost(ns: (name: string) => string, router: string): { readonly host: LabHost; readonly link: LabLink } {
  return {
    host: {
      name: 'client', role: 'client', netns: ns('client'),
      addresses: [{ ifname: 'eth0', cidr: '198.51.100.10/26' }, { ifname: 'eth0', cidr: '2001:db8:4b53:c::10/64' }],
      routes: [{ dst: 'default', via: '198.51.100.1' }, { dst: '::/0', via: '2001:db8:4b53:c::1' }],
    },
    link: { a: { host: router, ifname: 'c-client' }, b: { host: 'client', ifname: 'eth0' } },
  };
}

/** A pod of the lab: its addresses, and `short` names its node-side veth (`veth-SHORT`). */
export interface LabPodSpec {
  readonly name: string;
  readonly ip: string;
  readonly ip6: string;
  readonly short: string;
}

interface NodeSpec {
  readonly name: string;
  readonly role: 'tunnel-node' | 'serving-node';
  readonly ip: string;
  readonly ip6: string;
  readonly podCidr?: string;
  readonly podCidr6?: string;
  readonly pods: readonly LabPodSpec[];
}

/**
 * A node's pods wired as the lab's CNI wires them (Calico-style): one veth each, whose
 * node end holds the pod gateway addresses, a host route to each pod from the node, and
 * in each pod a default route to the gateway. Both topologies build their pods here.
 */
export function podNetwork(ns: (name: string) => string, node: { readonly name: string; readonly ip: string }, pods: readonly LabPodSpec[]): {
  readonly nodeAddresses: LabAddress[]; readonly nodeRoutes: LabRoute[]; readonly hosts: LabHost[]; readonly links: LabLink[];
} {
  const veth = (p: LabPodSpec): string => `veth-${p.short}`;
  return {
    nodeAddresses: pods.flatMap((p) => [{ ifname: veth(p), cidr: `${POD_GATEWAY}/32` }, { ifname: veth(p), cidr: `${POD_GATEWAY6}/64` }]),
    nodeRoutes: pods.flatMap((p) => [{ dst: `${p.ip}/32`, dev: veth(p), src: node.ip }, { dst: `${p.ip6}/128`, dev: veth(p) }]),
    hosts: pods.map((pod) => ({
      name: pod.name, role: 'pod', netns: ns(pod.name), node: node.name,
      addresses: [{ ifname: 'eth0', cidr: `${pod.ip}/32` }, { ifname: 'eth0', cidr: `${pod.ip6}/128` }],
      routes: [{ dst: `${POD_GATEWAY}/32`, dev: 'eth0' }, { dst: 'default', via: POD_GATEWAY, dev: 'eth0', onlink: true }, { dst: '::/0', via: POD_GATEWAY6, dev: 'eth0' }],
    })),
    links: pods.map((pod) => ({ a: { host: node.name, ifname: veth(pod) }, b: { host: pod.name, ifname: 'eth0' } })),
  };
}

const NODES: readonly NodeSpec[] = [
  { name: 'tunnel-1', role: 'tunnel-node', ip: '192.0.2.11', ip6: '2001:db8:4b53:1::11', pods: [] },
  { name: 'tunnel-2', role: 'tunnel-node', ip: '192.0.2.12', ip6: '2001:db8:4b53:1::12', pods: [] },
  {
    name: 'worker-1', role: 'serving-node', ip: '192.0.2.21', ip6: '2001:db8:4b53:1::21', podCidr: '198.51.100.128/26', podCidr6: '2001:db8:4b53:21::/64',
    pods: [
      { name: 'worker-1-a', ip: '198.51.100.130', ip6: '2001:db8:4b53:21::130', short: '1a' },
      { name: 'worker-1-b', ip: '198.51.100.131', ip6: '2001:db8:4b53:21::131', short: '1b' },
    ],
  },
  {
    name: 'worker-2', role: 'serving-node', ip: '192.0.2.22', ip6: '2001:db8:4b53:1::22', podCidr: '198.51.100.192/26', podCidr6: '2001:db8:4b53:22::/64',
    pods: [
      { name: 'worker-2-a', ip: '198.51.100.194', ip6: '2001:db8:4b53:22::194', short: '2a' },
      { name: 'worker-2-b', ip: '198.51.100.195', ip6: '2001:db8:4b53:22::195', short: '2b' },
    ],
  },
];

/** Checks a namespace prefix: names end up in /run/netns and in state paths. */
export function validatePrefix(prefix: string): string {
  if (!/^[a-z][a-z0-9-]{0,30}-$/.test(prefix)) {
    throw new Error(`lab prefix "${prefix}": use lower-case letters, digits and "-", start with a letter, end with "-" (e.g. "${DEFAULT_PREFIX}")`);
  }
  return prefix;
}

export function buildTopology(opts: TopologyOptions = {}): LabTopology {
  const prefix = validatePrefix(opts.prefix ?? DEFAULT_PREFIX);
  const ns = (name: string): string => `${prefix}${name}`;
  const routerIp = '192.0.2.1';
  const routerIp6 = '2001:db8:4b53:1::1';
  const apiIp = '192.0.2.2';
  const servingNodes = NODES.filter((n) => n.role === 'serving-node');
  const hosts: LabHost[] = [];
  const links: LabLink[] = [];

  // Like a fabric that knows the pod networks: pod CIDRs are routed to their nodes.
  const podCidrRoutes = (except?: string): LabRoute[] =>
    servingNodes.filter((n) => n.name !== except).flatMap((n) => [{ dst: n.podCidr!, via: n.ip }, { dst: n.podCidr6!, via: n.ip6 }]);

  hosts.push({
    name: 'router', role: 'router', netns: ns('router'),
    addresses: [
      { ifname: 'br-nodes', cidr: `${routerIp}/${NODE_NET_LEN}` }, { ifname: 'br-nodes', cidr: `${routerIp6}/${NODE_NET6_LEN}` },
      { ifname: 'c-client', cidr: '198.51.100.1/26' }, { ifname: 'c-client', cidr: '2001:db8:4b53:c::1/64' },
    ],
    routes: podCidrRoutes(),
  });
  const client = clientHost(ns, 'router');
  hosts.push(client.host);
  links.push(client.link);
  hosts.push({
    name: 'apiserver', role: 'apiserver', netns: ns('apiserver'),
    addresses: [{ ifname: 'eth0', cidr: `${apiIp}/${NODE_NET_LEN}` }],
    routes: [{ dst: 'default', via: routerIp }],
  });
  links.push({ a: { host: 'router', ifname: 'n-apiserver' }, b: { host: 'apiserver', ifname: 'eth0' }, bridge: 'br-nodes' });

  for (const node of NODES) {
    const pods = podNetwork(ns, node, node.pods);
    hosts.push({
      name: node.name, role: node.role, netns: ns(node.name),
      addresses: [
        { ifname: 'eth0', cidr: `${node.ip}/${NODE_NET_LEN}` },
        { ifname: 'eth0', cidr: `${node.ip6}/${NODE_NET6_LEN}` },
        ...pods.nodeAddresses,
      ],
      routes: [{ dst: 'default', via: routerIp }, { dst: '::/0', via: routerIp6 }, ...podCidrRoutes(node.name), ...pods.nodeRoutes],
      labels: {
        'kubernetes.io/hostname': node.name,
        ...(node.role === 'tunnel-node' ? { node: 'tunnel' } : {}),
      },
      ...(node.podCidr ? { podCidr: node.podCidr } : {}),
      ...(node.podCidr6 ? { podCidr6: node.podCidr6 } : {}),
    });
    links.push({ a: { host: 'router', ifname: `n-${node.name}` }, b: { host: node.name, ifname: 'eth0' }, bridge: 'br-nodes' });
    hosts.push(...pods.hosts);
    links.push(...pods.links);
  }

  const apiPort = 6443;
  return {
    prefix,
    kind: 'default',
    hosts,
    bridges: [{ host: 'router', ifname: 'br-nodes' }],
    links,
    vips: [{ address: '203.0.113.10', address6: '2001:db8:4b53:ff::10', serviceNamespace: 'demo', serviceName: 'echo', ports: [8080] }],
    router: { host: 'router', asn: 64500, routerId: routerIp, address: routerIp, address6: routerIp6 },
    nodeAsn: 64512,
    apiServer: { host: 'apiserver', address: apiIp, port: apiPort, url: `http://${apiIp}:${apiPort}` },
    echoPort: 8080,
    vni: 4242,
    vxlanPort: 4789,
  };
}

// ---------- queries ----------

export function host(topo: LabTopology, name: string): LabHost {
  const h = topo.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`lab topology: no host "${name}"`);
  return h;
}

export function hostsByRole(topo: LabTopology, role: HostRole): LabHost[] {
  return topo.hosts.filter((h) => h.role === role);
}

/** Nodes as Kubernetes sees them: tunnel and serving nodes. */
export function kubeNodes(topo: LabTopology): LabHost[] {
  return topo.hosts.filter((h) => h.role === 'tunnel-node' || h.role === 'serving-node');
}

/** The host's primary address without prefix length (first address of eth0, else the first). */
export function primaryIp(h: LabHost): string {
  const a = h.addresses.find((x) => x.ifname === 'eth0') ?? h.addresses[0];
  if (!a) throw new Error(`lab host ${h.name} has no address`);
  return a.cidr.split('/')[0]!;
}

/** The host's IPv6 address on eth0 without prefix length, or undefined (the API server has none). */
export function primaryIp6(h: LabHost): string | undefined {
  return h.addresses.find((x) => x.ifname === 'eth0' && x.cidr.includes(':'))?.cidr.split('/')[0];
}

export function namespaces(topo: LabTopology): string[] {
  return topo.hosts.map((h) => h.netns);
}
