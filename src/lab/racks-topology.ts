// The two-rack lab (`kst lab up --topology racks`, issue 14): a leaf-spine fabric in
// miniature, as a pure description like the default topology (topology.ts).
//
//                    client 198.51.100.10, 2001:db8:4b53:c::10
//                       │ 198.51.100.0/26, 2001:db8:4b53:c::/64
//                    spine (FRR, AS 64500)  ECMP over both racks
//          192.0.2.192/31 │ f1::/64      192.0.2.194/31 │ f2::/64
//          ┌──────────────┘                             └──────────────┐
//   tor-1 (FRR, AS 64601)                                   tor-2 (BIRD 2, AS 64602)
//   rack-1: 192.0.2.0/26, 2001:db8:4b53:1::/64              rack-2: 192.0.2.64/26, 2001:db8:4b53:2::/64
//   ┌──────────┬───────────┬───────────┐                    ┌───────────┬───────────┐
//  apiserver  tunnel-1    worker-1                          tunnel-2    worker-2
//  192.0.2.2  .11         .21, pods .130 .131               .75         .85, pods .194 .195
//             AS 64701    (198.51.100.128/26)               AS 64702    (198.51.100.192/26)
//
// Each rack's nodes carry `topology.kubernetes.io/zone=rack-N` and the annotation
// `cmd.nu/bgp-asn` (one ASN per rack); the agents' peers are chosen per node by the peer's
// nodeSelector, so a tunnel node dials only its own ToR (agent-config.ts). Each ToR learns
// the VIPs from its rack's tunnel node over BGP with BFD and passes them to the spine; the
// spine sends the ToRs nothing, so a ToR never learns a VIP through another rack. The
// underlay (rack subnets, pod networks, the ToRs' default routes) is static, as a fabric's
// own routing would provide it; only the VIPs travel in BGP.
import {
  buildTopology, clientHost, podNetwork, validatePrefix,
  type LabHost, type LabLink, type LabPodSpec, type LabRack, type LabRoute, type LabTopology, type TopologyKind, type TopologyOptions,
} from './topology.js';

/** The zone label the racks topology puts on its nodes and the agents' peers select by. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
/** The node annotation that gives a node its own AS number (model/peers.ts). */
export const NODE_ASN_ANNOTATION = 'cmd.nu/bgp-asn';

interface RackSpec {
  readonly rack: LabRack;
  readonly tunnel: { readonly name: string; readonly ip: string; readonly ip6: string };
  readonly worker: {
    readonly name: string; readonly ip: string; readonly ip6: string; readonly podCidr: string; readonly podCidr6: string;
    readonly pods: readonly LabPodSpec[];
  };
}

const RACKS: readonly RackSpec[] = [
  {
    rack: {
      zone: 'rack-1', tor: 'tor-1', torImpl: 'frr', torAsn: 64601, torAddress: '192.0.2.1', torAddress6: '2001:db8:4b53:1::1',
      uplink: { tor: '192.0.2.193', tor6: '2001:db8:4b53:f1::2', spine: '192.0.2.192', spine6: '2001:db8:4b53:f1::1' },
      nodeAsn: 64701, subnet: '192.0.2.0/26', subnet6: '2001:db8:4b53:1::/64', nodes: ['tunnel-1', 'worker-1'],
    },
    tunnel: { name: 'tunnel-1', ip: '192.0.2.11', ip6: '2001:db8:4b53:1::11' },
    worker: {
      name: 'worker-1', ip: '192.0.2.21', ip6: '2001:db8:4b53:1::21', podCidr: '198.51.100.128/26', podCidr6: '2001:db8:4b53:21::/64',
      pods: [
        { name: 'worker-1-a', ip: '198.51.100.130', ip6: '2001:db8:4b53:21::130', short: '1a' },
        { name: 'worker-1-b', ip: '198.51.100.131', ip6: '2001:db8:4b53:21::131', short: '1b' },
      ],
    },
  },
  {
    rack: {
      zone: 'rack-2', tor: 'tor-2', torImpl: 'bird', torAsn: 64602, torAddress: '192.0.2.65', torAddress6: '2001:db8:4b53:2::1',
      uplink: { tor: '192.0.2.195', tor6: '2001:db8:4b53:f2::2', spine: '192.0.2.194', spine6: '2001:db8:4b53:f2::1' },
      nodeAsn: 64702, subnet: '192.0.2.64/26', subnet6: '2001:db8:4b53:2::/64', nodes: ['tunnel-2', 'worker-2'],
    },
    tunnel: { name: 'tunnel-2', ip: '192.0.2.75', ip6: '2001:db8:4b53:2::75' },
    worker: {
      name: 'worker-2', ip: '192.0.2.85', ip6: '2001:db8:4b53:2::85', podCidr: '198.51.100.192/26', podCidr6: '2001:db8:4b53:22::/64',
      pods: [
        { name: 'worker-2-a', ip: '198.51.100.194', ip6: '2001:db8:4b53:22::194', short: '2a' },
        { name: 'worker-2-b', ip: '198.51.100.195', ip6: '2001:db8:4b53:22::195', short: '2b' },
      ],
    },
  },
];

const len = (cidr: string): string => cidr.split('/')[1]!;

export function buildRacksTopology(opts: TopologyOptions = {}): LabTopology {
  const prefix = validatePrefix(opts.prefix ?? 'kstlab-');
  const ns = (name: string): string => `${prefix}${name}`;
  const hosts: LabHost[] = [];
  const links: LabLink[] = [];
  const apiIp = '192.0.2.2';

  // The spine: the client's router. Static routes to each rack's networks via its ToR.
  hosts.push({
    name: 'spine', role: 'router', netns: ns('spine'),
    addresses: [
      { ifname: 'c-client', cidr: '198.51.100.1/26' }, { ifname: 'c-client', cidr: '2001:db8:4b53:c::1/64' },
      ...RACKS.flatMap(({ rack }) => [
        { ifname: `f-${rack.tor}`, cidr: `${rack.uplink.spine}/31` }, { ifname: `f-${rack.tor}`, cidr: `${rack.uplink.spine6}/64` },
      ]),
    ],
    routes: RACKS.flatMap(({ rack, worker }) => [
      { dst: rack.subnet, via: rack.uplink.tor }, { dst: rack.subnet6, via: rack.uplink.tor6 },
      { dst: worker.podCidr, via: rack.uplink.tor }, { dst: worker.podCidr6, via: rack.uplink.tor6 },
    ]),
  });
  const client = clientHost(ns, 'spine');
  hosts.push(client.host);
  links.push(client.link);

  for (const { rack, tunnel, worker } of RACKS) {
    hosts.push({
      name: rack.tor, role: 'tor-router', netns: ns(rack.tor),
      addresses: [
        { ifname: 'br-rack', cidr: `${rack.torAddress}/${len(rack.subnet)}` }, { ifname: 'br-rack', cidr: `${rack.torAddress6}/${len(rack.subnet6)}` },
        { ifname: 'up-spine', cidr: `${rack.uplink.tor}/31` }, { ifname: 'up-spine', cidr: `${rack.uplink.tor6}/64` },
      ],
      routes: [
        { dst: 'default', via: rack.uplink.spine }, { dst: '::/0', via: rack.uplink.spine6 },
        { dst: worker.podCidr, via: worker.ip }, { dst: worker.podCidr6, via: worker.ip6 },
      ],
    });
    links.push({ a: { host: 'spine', ifname: `f-${rack.tor}` }, b: { host: rack.tor, ifname: 'up-spine' } });

    const nodeRoutes: LabRoute[] = [{ dst: 'default', via: rack.torAddress }, { dst: '::/0', via: rack.torAddress6 }];
    const nodeMeta = (role: 'tunnel-node' | 'serving-node', name: string): Pick<LabHost, 'labels' | 'annotations'> => ({
      labels: { 'kubernetes.io/hostname': name, [ZONE_LABEL]: rack.zone, ...(role === 'tunnel-node' ? { node: 'tunnel' } : {}) },
      annotations: { [NODE_ASN_ANNOTATION]: String(rack.nodeAsn) },
    });
    hosts.push({
      name: tunnel.name, role: 'tunnel-node', netns: ns(tunnel.name),
      addresses: [{ ifname: 'eth0', cidr: `${tunnel.ip}/${len(rack.subnet)}` }, { ifname: 'eth0', cidr: `${tunnel.ip6}/${len(rack.subnet6)}` }],
      routes: nodeRoutes,
      ...nodeMeta('tunnel-node', tunnel.name),
    });
    links.push({ a: { host: rack.tor, ifname: `n-${tunnel.name}` }, b: { host: tunnel.name, ifname: 'eth0' }, bridge: 'br-rack' });
    const pods = podNetwork(ns, worker, worker.pods);
    hosts.push({
      name: worker.name, role: 'serving-node', netns: ns(worker.name),
      addresses: [
        { ifname: 'eth0', cidr: `${worker.ip}/${len(rack.subnet)}` }, { ifname: 'eth0', cidr: `${worker.ip6}/${len(rack.subnet6)}` },
        ...pods.nodeAddresses,
      ],
      routes: [...nodeRoutes, ...pods.nodeRoutes],
      ...nodeMeta('serving-node', worker.name),
      podCidr: worker.podCidr,
      podCidr6: worker.podCidr6,
    });
    links.push({ a: { host: rack.tor, ifname: `n-${worker.name}` }, b: { host: worker.name, ifname: 'eth0' }, bridge: 'br-rack' });
    hosts.push(...pods.hosts);
    links.push(...pods.links);
  }

  // The API server sits in rack 1 (IPv4 only, as in the default lab); rack 2 reaches it through the spine.
  const rack1 = RACKS[0]!.rack;
  hosts.push({
    name: 'apiserver', role: 'apiserver', netns: ns('apiserver'),
    addresses: [{ ifname: 'eth0', cidr: `${apiIp}/${len(rack1.subnet)}` }],
    routes: [{ dst: 'default', via: rack1.torAddress }],
  });
  links.push({ a: { host: rack1.tor, ifname: 'n-apiserver' }, b: { host: 'apiserver', ifname: 'eth0' }, bridge: 'br-rack' });

  const apiPort = 6443;
  return {
    prefix,
    kind: 'racks',
    racks: RACKS.map((r) => r.rack),
    hosts,
    bridges: RACKS.map(({ rack }) => ({ host: rack.tor, ifname: 'br-rack' })),
    links,
    vips: [{ address: '203.0.113.10', address6: '2001:db8:4b53:ff::10', serviceNamespace: 'demo', serviceName: 'echo', ports: [8080] }],
    // The spine: where the client's traffic enters and where ECMP over the racks shows.
    router: { host: 'spine', asn: 64500, routerId: '192.0.2.192', address: '198.51.100.1', address6: '2001:db8:4b53:c::1' },
    // The fallback bgp.asn; every node's annotation overrides it with its rack's.
    nodeAsn: 64512,
    apiServer: { host: 'apiserver', address: apiIp, port: apiPort, url: `http://${apiIp}:${apiPort}` },
    echoPort: 8080,
    vni: 4242,
    vxlanPort: 4789,
  };
}

/** The rack a node belongs to (undefined in the default topology). */
export function rackOf(topo: LabTopology, nodeName: string): LabRack | undefined {
  return topo.racks?.find((r) => r.nodes.includes(nodeName));
}

/** The lab of the given kind (`kst lab up --topology`); the others read the kind from the lab's state. */
export function buildLabTopology(prefix: string, kind: TopologyKind = 'default'): LabTopology {
  return kind === 'racks' ? buildRacksTopology({ prefix }) : buildTopology({ prefix });
}
