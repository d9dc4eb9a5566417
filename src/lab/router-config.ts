// The data-centre router's FRR configuration, derived from the topology: eBGP to every
// tunnel node with ECMP (`maximum-paths`) and a 100 ms x 3 BFD profile. The profile lives
// in bfdd's file; bgpd only refers to it (see shared COMPONENTS.md).
import { hostsByRole, primaryIp, type LabTopology } from './topology.js';

export const BFD_PROFILE = 'lab-fast';
export const BFD = { intervalMs: 100, multiplier: 3 } as const;

export interface RouterConfig {
  readonly bgpdConf: string;
  readonly bfddConf: string;
}

export function routerConfig(topo: LabTopology): RouterConfig {
  const peers = hostsByRole(topo, 'tunnel-node').map(primaryIp);
  const bgpd = [
    `router bgp ${topo.router.asn}`,
    ` bgp router-id ${topo.router.routerId}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp network import-check',
    // The tunnel nodes share one AS: equal AS paths, so they qualify for multipath.
    ' bgp bestpath as-path multipath-relax',
    ...peers.flatMap((p) => [
      ` neighbor ${p} remote-as ${topo.nodeAsn}`,
      ` neighbor ${p} timers 3 9`,
      ` neighbor ${p} timers connect 2`,
      ` neighbor ${p} bfd profile ${BFD_PROFILE}`,
    ]),
    ' address-family ipv4 unicast',
    '  maximum-paths 8',
    ...peers.map((p) => `  neighbor ${p} activate`),
    ' exit-address-family',
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
