// What each encapsulation mode needs from the kernel, per role: written once, here, beside
// the drivers (tunnel side) and src/podnet/modes (pod side), so a new mode states its needs
// where it is added. Read by the agent at start and by `kst validate --node-probe`.
//
// Roles: the sending side is the tunnel node in the tunnel modes and, in mpls mode, the
// serving node itself (it hashes among its local endpoints and pushes the label); the pod
// side is every node with endpoint pods (it makes VIPs local inside them).
import type { Config } from '../../config/schema.js';
import type { EncapMode } from '../../model/types.js';
import type { KernelFeature, KernelNeed } from '../kernel-features.js';

interface ModeKernelNeeds {
  /** The side that sends to endpoints: links, `encap` routes through nexthop objects. */
  readonly sender: readonly KernelFeature[];
  /** Extra, for VIPs of one family only, on the sending side. */
  readonly senderFamily: Partial<Readonly<Record<4 | 6, readonly KernelFeature[]>>>;
  /** The pod side: what makes a VIP local in a pod. */
  readonly pod: readonly KernelFeature[];
}

export const MODE_KERNEL_NEEDS: Readonly<Record<EncapMode, ModeKernelNeeds>> = {
  // IPv6 VIPs ride the same VXLAN with an IPv6 outer header to the pod's IPv6 address
  // (`encap ip6 id VNI dst POD6`): nothing beyond the external link.
  'vxlan-lwt': { sender: ['vxlan-external', 'nexthop-objects'], senderFamily: {}, pod: ['vxlan'] },
  // IPv6 VIPs use SRv6 (drivers/seg6.ts). The pod side strips SRv6 in core IPv6
  // (seg6_enabled), which needs no lightweight tunnel support.
  'gre-lwt': { sender: ['gre-external', 'nexthop-objects'], senderFamily: { 6: ['seg6-lwt'] }, pod: ['gre-external'] },
  gre: { sender: ['gre', 'nexthop-objects'], senderFamily: { 6: ['seg6-lwt'] }, pod: ['gre'] },
  // IPv4 only: the mode itself refuses IPv6 VIPs (drivers/mpls.ts, podnet/modes/mpls.ts).
  mpls: { sender: ['mpls-iptunnel', 'nexthop-objects'], senderFamily: {}, pod: ['mpls-routing'] },
};

const FLOW_HASH_FEATURES: Readonly<Record<Config['dataplane']['flowHash'], readonly KernelFeature[]>> = {
  nftables: ['nft-inet'],
  'iptables-legacy': ['xt-hmark'],
  auto: ['nft-inet', 'xt-hmark'],
};

/** Everything a configuration needs from a node's kernel, in every role it may take. */
export function kernelNeeds(config: { readonly encapsulation: { readonly mode: EncapMode }; readonly dataplane: { readonly flowHash: Config['dataplane']['flowHash'] } }): KernelNeed[] {
  const mode = config.encapsulation.mode;
  const m = MODE_KERNEL_NEEDS[mode];
  const by = `encapsulation.mode ${mode}`;
  return [
    ...m.sender.map((f): KernelNeed => ({ role: 'tunnel', anyOf: [f], by })),
    ...([4, 6] as const).flatMap((family) => (m.senderFamily[family] ?? []).map((f): KernelNeed => ({ role: 'tunnel', anyOf: [f], by: `${by} for IPv${family} VIPs`, vipFamily: family }))),
    { role: 'tunnel', anyOf: FLOW_HASH_FEATURES[config.dataplane.flowHash], by: `dataplane.flowHash ${config.dataplane.flowHash}`, reportOnly: true },
    ...m.pod.map((f): KernelNeed => ({ role: 'serving', anyOf: [f], by })),
  ];
}

/** The features worth probing for a configuration: those its needs name. */
export function featuresToProbe(needs: readonly KernelNeed[]): KernelFeature[] {
  return [...new Set(needs.flatMap((n) => n.anyOf))];
}
