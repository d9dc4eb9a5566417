// The racks lab's routers, configured from the topology (racks-topology.ts):
//   - the spine (FRR): eBGP to each ToR, ECMP over the racks (`maximum-paths`, and
//     multipath-relax since each rack's path has its own ASNs), and nothing sent back to the
//     ToRs: a ToR must learn a VIP only from its own rack's tunnel node, never through the
//     spine from another rack (else a rack that lost its tunnel node would pull VIP
//     traffic in and hand it back to the spine);
//   - tor-1 (FRR) and tor-2 (BIRD 2): eBGP with BFD to their rack's tunnel node, one
//     session per family as in the default lab, and the VIPs passed on to the spine.
// BFD runs on every ToR session: 100 ms x 3 towards the node (as in the default lab), and
// 300 ms x 3 on the fabric links between ToR and spine, where a flap of a 300 ms detection
// time under the lab machine's load (seen once in minutes at a load average of 28) would
// take a whole rack out of the spine's ECMP set for a BGP reconnect.
import { BFD, BFD_PROFILE, type RouterConfig } from './router-config.js';
import { host, primaryIp, primaryIp6, type LabRack, type LabTopology } from './topology.js';

/** The rack's tunnel node(s): its nodes that are tunnel nodes. */
function rackTunnels(topo: LabTopology, rack: LabRack): { v4: string[]; v6: string[] } {
  const tunnels = rack.nodes.map((n) => host(topo, n)).filter((h) => h.role === 'tunnel-node');
  return { v4: tunnels.map(primaryIp), v6: tunnels.map(primaryIp6).filter((a): a is string => a !== undefined) };
}

function racksOf(topo: LabTopology): readonly LabRack[] {
  if (!topo.racks?.length) throw new Error('lab topology: not the racks topology (no racks)');
  return topo.racks;
}

/** The BFD profile of the ToR-spine links. */
export const FABRIC_BFD_PROFILE = 'lab-fabric';
export const FABRIC_BFD = { intervalMs: 300, multiplier: 3 } as const;

const bfdProfiles = (): string => [
  'bfd',
  ...([[BFD_PROFILE, BFD], [FABRIC_BFD_PROFILE, FABRIC_BFD]] as const).flatMap(([name, t]) => [
    ` profile ${name}`,
    `  transmit-interval ${t.intervalMs}`,
    `  receive-interval ${t.intervalMs}`,
    `  detect-multiplier ${t.multiplier}`,
    ' exit',
  ]),
  'exit',
  '',
].join('\n');

const sessionLines = (peer: string, asn: number, profile: string): string[] => [
  ` neighbor ${peer} remote-as ${asn}`,
  ` neighbor ${peer} timers 3 9`,
  ` neighbor ${peer} timers connect 2`,
  ` neighbor ${peer} bfd profile ${profile}`,
];

export function spineConfig(topo: LabTopology): RouterConfig {
  const racks = racksOf(topo);
  const bgpd = [
    `router bgp ${topo.router.asn}`,
    ` bgp router-id ${topo.router.routerId}`,
    ' no bgp default ipv4-unicast',
    // Each rack's path has different ASNs ([64601 64701], [64602 64702]): equal length, so ECMP.
    ' bgp bestpath as-path multipath-relax',
    ...racks.flatMap((r) => [...sessionLines(r.uplink.tor, r.torAsn, FABRIC_BFD_PROFILE), ...sessionLines(r.uplink.tor6, r.torAsn, FABRIC_BFD_PROFILE)]),
    ' address-family ipv4 unicast',
    '  maximum-paths 8',
    ...racks.flatMap((r) => [`  neighbor ${r.uplink.tor} activate`, `  neighbor ${r.uplink.tor} route-map FROM-RACK in`, `  neighbor ${r.uplink.tor} route-map TO-RACK out`]),
    ' exit-address-family',
    ' address-family ipv6 unicast',
    '  maximum-paths 8',
    ...racks.flatMap((r) => [`  neighbor ${r.uplink.tor6} activate`, `  neighbor ${r.uplink.tor6} route-map FROM-RACK6 in`, `  neighbor ${r.uplink.tor6} route-map TO-RACK out`]),
    ' exit-address-family',
    'exit',
    'route-map FROM-RACK permit 10',
    'exit',
    // A ToR sends its global and its link-local address; the global one makes the FIB
    // (and `ip -6 route`) name the rack, as the IPv4 next hop does.
    'route-map FROM-RACK6 permit 10',
    ' set ipv6 next-hop prefer-global',
    'exit',
    'route-map TO-RACK deny 10',
    'exit',
    '',
  ];
  return { bgpdConf: bgpd.join('\n'), bfddConf: bfdProfiles() };
}

/** An FRR top-of-rack router: its rack's tunnel nodes below, the spine above. */
export function torFrrConfig(topo: LabTopology, rack: LabRack): RouterConfig {
  const { v4, v6 } = rackTunnels(topo, rack);
  // As the default lab's router (router-config.ts): FRR's default BFD handling, no
  // `check-control-plane-failure`, so a silent node is withdrawn even with graceful restart.
  const node = (p: string): string[] => sessionLines(p, rack.nodeAsn, BFD_PROFILE);
  const bgpd = [
    `router bgp ${rack.torAsn}`,
    ` bgp router-id ${rack.torAddress}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp default ipv4-unicast',
    ...[...v4, ...v6].flatMap(node),
    ...sessionLines(rack.uplink.spine, topo.router.asn, FABRIC_BFD_PROFILE),
    ...sessionLines(rack.uplink.spine6, topo.router.asn, FABRIC_BFD_PROFILE),
    ' address-family ipv4 unicast',
    ...[...v4, rack.uplink.spine].map((p) => `  neighbor ${p} activate`),
    ' exit-address-family',
    ' address-family ipv6 unicast',
    ...[...v6, rack.uplink.spine6].map((p) => `  neighbor ${p} activate`),
    ' exit-address-family',
    'exit',
    '',
  ];
  return { bgpdConf: bgpd.join('\n'), bfddConf: bfdProfiles() };
}

/** BIRD symbol for a peer: letters, digits and "_" only. */
const sym = (s: string): string => s.replace(/[^A-Za-z0-9]/g, '_');

/** A BIRD 2 top-of-rack router (the body after BirdRouter's `log` line). */
export function torBirdConfig(topo: LabTopology, rack: LabRack): string {
  const { v4, v6 } = rackTunnels(topo, rack);
  const tunnelNames = rack.nodes.filter((n) => host(topo, n).role === 'tunnel-node');
  const lines = [
    `router id ${rack.torAddress};`,
    'protocol device { scan time 10; }',
    // Into the kernel: the VIPs (BIRD leaves the lab's static routes alone).
    'protocol kernel { ipv4 { import none; export all; }; merge paths on; }',
    'protocol kernel { ipv6 { import none; export all; }; merge paths on; }',
    // BFD timers by interface: the rack network (the nodes) and the uplink to the spine.
    'protocol bfd {',
    `  interface "br-rack" { min rx interval ${BFD.intervalMs} ms; min tx interval ${BFD.intervalMs} ms; multiplier ${BFD.multiplier}; };`,
    `  interface "up-spine" { min rx interval ${FABRIC_BFD.intervalMs} ms; min tx interval ${FABRIC_BFD.intervalMs} ms; multiplier ${FABRIC_BFD.multiplier}; };`,
    '}',
    'template bgp lab_session {',
    '  hold time 9; keepalive time 3; connect retry time 1;',
    // BIRD waits 60-300 s before reconnecting after an error; a BFD-driven shutdown is one.
    '  error wait time 1, 5;',
    '  bfd on;',
    '}',
    ...v4.map((a, i) => `protocol bgp node_${sym(tunnelNames[i] ?? a)}_v4 from lab_session { local ${rack.torAddress} as ${rack.torAsn}; neighbor ${a} as ${rack.nodeAsn}; ipv4 { import all; export none; }; }`),
    ...v6.map((a, i) => `protocol bgp node_${sym(tunnelNames[i] ?? a)}_v6 from lab_session { local ${rack.torAddress6} as ${rack.torAsn}; neighbor ${a} as ${rack.nodeAsn}; ipv6 { import all; export none; }; }`),
    // Up: every BGP route (they all come from the rack's tunnel nodes); down: nothing.
    `protocol bgp spine_v4 from lab_session { local ${rack.uplink.tor} as ${rack.torAsn}; neighbor ${rack.uplink.spine} as ${topo.router.asn}; ipv4 { import none; export where source = RTS_BGP; }; }`,
    `protocol bgp spine_v6 from lab_session { local ${rack.uplink.tor6} as ${rack.torAsn}; neighbor ${rack.uplink.spine6} as ${topo.router.asn}; ipv6 { import none; export where source = RTS_BGP; }; }`,
  ];
  return `${lines.join('\n')}\n`;
}
