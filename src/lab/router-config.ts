// The data-centre router's FRR configuration, derived from the topology: eBGP to every
// tunnel node, over IPv4 and IPv6, with ECMP (`maximum-paths`), graceful restart helper
// (FRR's default) and BFD as FRR does it by default, and a 100 ms x 3 BFD profile. The profile lives
// in bfdd's file; bgpd only refers to it (see shared COMPONENTS.md).
import { hostsByRole, primaryIp, primaryIp6, type LabTopology } from './topology.js';

export const BFD_PROFILE = 'lab-fast';
export const BFD = { intervalMs: 100, multiplier: 3 } as const;

export interface RouterConfig {
  readonly bgpdConf: string;
  readonly bfddConf: string;
}

export function routerConfig(topo: LabTopology): RouterConfig {
  const tunnels = hostsByRole(topo, 'tunnel-node');
  const peers = tunnels.map(primaryIp);
  // One session per family and tunnel node: IPv6 VIPs are announced over IPv6 sessions, so
  // their next hop is the node's own IPv6 address (an IPv4 session would carry an
  // IPv4-mapped next hop, which an IPv6 route cannot use).
  const peers6 = tunnels.map(primaryIp6).filter((a): a is string => a !== undefined);
  const neighbour = (p: string): string[] => [
    ` neighbor ${p} remote-as ${topo.nodeAsn}`,
    ` neighbor ${p} timers 3 9`,
    ` neighbor ${p} timers connect 2`,
    ` neighbor ${p} bfd profile ${BFD_PROFILE}`,
    // No `bfd check-control-plane-failure`: a BFD Down while the session is up is a dead
    // node, withdrawn at once. A restart of gobgpd closes the session first (graceful
    // restart keeps the routes stale) and FRR then ignores the later BFD Down (docs/bgp.md).
  ];
  const bgpd = [
    `router bgp ${topo.router.asn}`,
    ` bgp router-id ${topo.router.routerId}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp network import-check',
    // Each session carries only the family activated for it below.
    ' no bgp default ipv4-unicast',
    // The tunnel nodes share one AS: equal AS paths, so they qualify for multipath.
    ' bgp bestpath as-path multipath-relax',
    ...[...peers, ...peers6].flatMap(neighbour),
    ' address-family ipv4 unicast',
    '  maximum-paths 8',
    ...peers.map((p) => `  neighbor ${p} activate`),
    ' exit-address-family',
    ...(peers6.length ? [' address-family ipv6 unicast', '  maximum-paths 8', ...peers6.map((p) => `  neighbor ${p} activate`), ' exit-address-family'] : []),
    'exit',
  ];
  const bfdd = [
    'bfd',
    ` profile ${BFD_PROFILE}`,
    `  transmit-interval ${BFD.intervalMs}`,
    `  receive-interval ${BFD.intervalMs}`,
    `  detect-multiplier ${BFD.multiplier}`,
    ' exit',
    'exit',
  ];
  return { bgpdConf: `${bgpd.join('\n')}\n`, bfddConf: `${bfdd.join('\n')}\n` };
}
