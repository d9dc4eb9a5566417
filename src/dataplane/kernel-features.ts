// Pure: the kernel features the project's modes rely on, what a probe found about each, and
// which of a configuration's needs a node lacks. The probing itself is an adapter
// (src/agent/kernel-probe.ts); what each mode needs is written beside the modes
// (drivers/kernel-needs.ts). Kernels differ between nodes of one cluster and between builds
// of one distribution (docs/troubleshooting.md, "Kernel features"), so the agent asks its
// own kernel rather than assuming.

export const KERNEL_FEATURES = [
  'vxlan',
  'vxlan-external',
  'gre',
  'gre-external',
  'ipip',
  'nexthop-objects',
  'mpls-routing',
  'mpls-iptunnel',
  'seg6-lwt',
  'nft-inet',
  'xt-hmark',
] as const;

export type KernelFeature = (typeof KERNEL_FEATURES)[number];

/** What each feature is, and what an operator turns on to get it (kernel option, module). */
export const FEATURE_INFO: Readonly<Record<KernelFeature, { readonly what: string; readonly enable: string }>> = {
  vxlan: { what: 'VXLAN links', enable: 'CONFIG_VXLAN (module vxlan)' },
  'vxlan-external': { what: 'VXLAN external (collect_md) link with `encap ip id VNI` routes', enable: 'CONFIG_VXLAN and CONFIG_LWTUNNEL (module vxlan)' },
  gre: { what: 'classic GRE links', enable: 'CONFIG_NET_IPGRE (module ip_gre)' },
  'gre-external': { what: 'GRE external (collect_md) link with `encap ip` routes', enable: 'CONFIG_NET_IPGRE and CONFIG_LWTUNNEL (module ip_gre)' },
  ipip: { what: 'IPIP links', enable: 'CONFIG_NET_IPIP (module ipip)' },
  'nexthop-objects': { what: 'nexthop objects (`ip nexthop`)', enable: 'Linux 5.3 or later' },
  'mpls-routing': { what: 'MPLS routing (label table, `ip -f mpls route`)', enable: 'CONFIG_MPLS_ROUTING (modprobe mpls_router, e.g. from /etc/modules-load.d)' },
  'mpls-iptunnel': { what: 'MPLS encapsulation routes (`encap mpls`)', enable: 'CONFIG_MPLS_IPTUNNEL (module mpls_iptunnel)' },
  'seg6-lwt': { what: 'SRv6 encapsulation routes (`encap seg6`)', enable: 'CONFIG_IPV6_SEG6_LWTUNNEL' },
  'nft-inet': { what: 'nftables inet family with jhash', enable: 'CONFIG_NF_TABLES_INET' },
  'xt-hmark': { what: 'iptables-legacy HMARK target', enable: 'CONFIG_NETFILTER_XT_TARGET_HMARK and the iptables-legacy tools' },
};

/**
 * One feature's probe result. `unknown`: the probe could not run at all (no unshare, no
 * permission, a timeout), which is not the same as the kernel lacking the feature.
 */
export type FeatureState =
  | { readonly state: 'present' }
  | { readonly state: 'absent'; readonly why: string }
  | { readonly state: 'unknown'; readonly why: string };

/** What was probed; a feature that was not probed is absent from the map. */
export type KernelFeatures = Partial<Readonly<Record<KernelFeature, FeatureState>>>;

/** The roles a node can take (DESIGN.md "Roles and data path"). */
export type NodeRole = 'tunnel' | 'serving';

/**
 * One requirement: any one of the features will do (the flow hash in `auto`: nftables, or
 * HMARK where nftables cannot work). `vipFamily` set: only VIPs of that family need it.
 */
export interface KernelNeed {
  readonly role: NodeRole;
  readonly anyOf: readonly KernelFeature[];
  /** What needs it, in the operator's words: "encapsulation.mode gre-lwt", "dataplane.flowHash auto". */
  readonly by: string;
  readonly vipFamily?: 4 | 6;
  /**
   * Reported (status, metrics, validate) but left out of the limits: the flow hash has its
   * own handling at start (src/dataplane/flow-hash-probe.ts, Event FlowHashUnavailable).
   */
  readonly reportOnly?: true;
}

/** A need no probed feature meets; `states` tells why for each alternative. */
export interface MissingNeed extends KernelNeed {
  readonly states: Readonly<Partial<Record<KernelFeature, FeatureState>>>;
}

const NOT_PROBED: FeatureState = { state: 'unknown', why: 'not probed' };

/** Needs none of whose features is present. A need whose feature was not probed counts as missing (unknown). */
export function missingNeeds(needs: readonly KernelNeed[], features: KernelFeatures): MissingNeed[] {
  const out: MissingNeed[] = [];
  for (const need of needs) {
    const states: Partial<Record<KernelFeature, FeatureState>> = {};
    for (const f of need.anyOf) states[f] = features[f] ?? NOT_PROBED;
    if (!need.anyOf.some((f) => states[f]!.state === 'present')) out.push({ ...need, states });
  }
  return out;
}

/** What a node with these missing needs cannot do, per role and VIP family: the model's input. */
export interface KernelLimits {
  /** Why this node cannot take the tunnel role (tunnel modes) or hash and push its local endpoints (mpls). */
  readonly tunnel?: string;
  /** Why this node cannot make VIPs local in its pods. */
  readonly serving?: string;
  /** Why a tunnel node cannot carry VIPs of one family (the rest still works). */
  readonly tunnelFamily?: Partial<Readonly<Record<4 | 6, string>>>;
}

/**
 * "encapsulation.mode gre-lwt needs GRE external ... [gre-external]: absent here (Error:
 * Unknown device type.); enable CONFIG_NET_IPGRE ..." — what is missing and what to do.
 */
export function describeMissing(m: MissingNeed): string {
  const alternatives = m.anyOf.map((f) => {
    const s = m.states[f] ?? NOT_PROBED;
    const found = s.state === 'present' ? 'present' : s.state === 'unknown' ? `could not be probed (${s.why})` : `absent here (${s.why})`;
    return `${FEATURE_INFO[f].what} [${f}]: ${found}; enable ${FEATURE_INFO[f].enable}`;
  });
  return `${m.by} needs ${alternatives.length > 1 ? `one of: ${alternatives.join(' | ')}` : alternatives[0]}`;
}

/** Folds missing needs into the limits the model applies; an empty result means none. */
export function kernelLimits(all: readonly MissingNeed[]): KernelLimits {
  // Only what the kernel was seen to lack limits the node: a probe that could not run (no
  // unshare, a deadline under load) is reported, and the agent works as it would without one.
  const missing = all.filter((m) => !m.reportOnly && m.anyOf.every((f) => m.states[f]?.state === 'absent'));
  const join = (ms: readonly MissingNeed[]) => (ms.length ? ms.map(describeMissing).join('; ') : undefined);
  const tunnel = join(missing.filter((m) => m.role === 'tunnel' && !m.vipFamily));
  const serving = join(missing.filter((m) => m.role === 'serving' && !m.vipFamily));
  const families: Partial<Record<4 | 6, string>> = {};
  for (const f of [4, 6] as const) {
    const why = join(missing.filter((m) => m.role === 'tunnel' && m.vipFamily === f));
    if (why) families[f] = `IPv${f} VIPs: ${why}`;
  }
  return {
    ...(tunnel ? { tunnel } : {}),
    ...(serving ? { serving } : {}),
    ...(Object.keys(families).length ? { tunnelFamily: families } : {}),
  };
}
