// Which peers receive which VIP: gobgpd announces every path to every peer, so a VIP
// restricted to some peers (pools[].peers, the <annotationKey>-peers Service annotation)
// is filtered by gobgpd's global export policy. Pure: the policy is computed from the
// desired routes, and handed to gobgpd whole (SetPolicies replaces the defined sets and
// policies in one call, so there is never a half-applied set; the global export
// assignment, which SetPolicies leaves alone, is set once per gobgpd lifetime).
//
// One statement per distinct peer set and family:
//   if prefix in kst-g<i>-v<f> (the VIPs with that peer set) and neighbor NOT in
//   kst-g<i>-peers (the allowed peers): reject.
// The default action accepts: unrestricted VIPs go to every peer.
import { canonicalIp } from './paths.js';

/** Prefix ("203.0.113.10/32") -> the peer addresses that may receive it; absent = every peer. */
export type PeerRestrictions = ReadonlyMap<string, readonly string[]>;

export interface ExportPolicy {
  readonly definedSets: readonly Record<string, unknown>[];
  readonly policies: readonly Record<string, unknown>[];
  readonly assignments: readonly Record<string, unknown>[];
  /** Stable text of the above, to tell whether gobgpd's policy must change. */
  readonly key: string;
}

export const EXPORT_POLICY_NAME = 'kst-vip-peers';

export function exportPolicy(restrictions: PeerRestrictions): ExportPolicy {
  // Group prefixes by their (sorted) peer set.
  const groups = new Map<string, { peers: string[]; prefixes: { 4: string[]; 6: string[] } }>();
  for (const [prefix, peers] of [...restrictions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const sorted = [...new Set(peers.map(canonicalIp))].sort();
    const k = sorted.join(',');
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { peers: sorted, prefixes: { 4: [], 6: [] } }));
    g.prefixes[prefix.includes(':') ? 6 : 4].push(prefix);
  }
  const definedSets: Record<string, unknown>[] = [];
  const statements: Record<string, unknown>[] = [];
  [...groups.values()].forEach((g, i) => {
    const peerSet = `kst-g${i}-peers`;
    if (g.peers.length > 0) {
      definedSets.push({ defined_type: 'NEIGHBOR', name: peerSet, list: g.peers.map((p) => `${p}/${p.includes(':') ? 128 : 32}`), prefixes: [] });
    }
    for (const fam of [4, 6] as const) {
      const prefixes = g.prefixes[fam];
      if (prefixes.length === 0) continue;
      const set = `kst-g${i}-v${fam}`;
      const len = fam === 4 ? 32 : 128;
      definedSets.push({ defined_type: 'PREFIX', name: set, list: [], prefixes: prefixes.map((p) => ({ ip_prefix: p, mask_length_min: len, mask_length_max: len })) });
      statements.push({
        name: `${set}-only-to-peers`,
        conditions: {
          prefix_set: { type: 'ANY', name: set },
          // No allowed peer on this node: the VIP goes to no peer at all.
          ...(g.peers.length > 0 ? { neighbor_set: { type: 'INVERT', name: peerSet } } : {}),
        },
        actions: { route_action: 'REJECT' },
      });
    }
  });
  // The policy exists even without statements: gobgpd's SetPolicies keeps the assignments it
  // has, by policy name, so a constant name makes every later change one atomic call.
  const policies = [{ name: EXPORT_POLICY_NAME, statements }];
  const assignments = [{ name: 'global', direction: 'EXPORT', policies: [{ name: EXPORT_POLICY_NAME }], default_action: 'ACCEPT' }];
  return { definedSets, policies, assignments, key: JSON.stringify([definedSets, policies]) };
}
