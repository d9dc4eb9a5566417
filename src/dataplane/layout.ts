// The kernel objects the data plane owns, and how it recognises them. Everything here is
// a range or a name the project claims (docs/dataplane.md, "Ownership"), so reconcile and
// clean-up can delete leftovers of an earlier run without touching anything else.
import { LINK_PREFIX, NFT_TABLE, ROUTE_PROTOCOL } from '../system/index.js';

export { NFT_TABLE, ROUTE_PROTOCOL };

/** First firewall mark: bucket i of every VIP is marked MARK_BASE + i ("KS" in the top half). */
export const MARK_BASE = 0x4b530000;
/** The config schema allows at most 4096 buckets; marks and tables are owned for all of them. */
export const MAX_BUCKETS = 4096;
/**
 * Connection pinning keeps two table generations ("parities") per bucket: parity p of
 * bucket i uses mark MARK_BASE + p*PARITY_STRIDE + i and table tableBase + p*PARITY_STRIDE + i.
 * A fixed stride (not B) keeps a parity's marks stable when B changes, and makes parity 1
 * a single bit (0x1000) that nft can OR into the hashed mark.
 */
export const PARITY_STRIDE = MAX_BUCKETS;
/** Marks and tables owned: two parities of MAX_BUCKETS each. */
const OWNED_SPAN = 2 * PARITY_STRIDE;
/** The mask that selects our mark range (MARK_BASE .. MARK_BASE+OWNED_SPAN-1) in a 32-bit mark. */
export const MARK_MASK = (0xffffffff - (OWNED_SPAN - 1)) >>> 0;
/**
 * The nft chain runs before conntrack's defragmentation (-400), so every tunnel node sees
 * the same fragments and hashes them the same, whether conntrack is loaded there or not.
 */
export const NFT_HOOK_PRIORITY = -450;
/**
 * The chain that clears a VIP packet's mark after routing runs late on postrouting (after
 * mangle and source NAT), so anything else on the node still sees the packet as before.
 */
export const NFT_POSTROUTING_PRIORITY = 450;

/** The dataplane's own link names: a subset of LINK_PREFIX so podnet's links are never ours. */
export const VXLAN_LINK = `${LINK_PREFIX}-vxlan`;
export const GRE_LWT_LINK = `${LINK_PREFIX}-gre`;
export const GRE_ENDPOINT_LINK_PREFIX = `${LINK_PREFIX}-g`;
const OWNED_LINK = new RegExp(`^(${VXLAN_LINK}|${GRE_LWT_LINK}|${GRE_ENDPOINT_LINK_PREFIX}[0-9a-f]{8})$`);

export function isOwnedLink(name: string): boolean {
  return OWNED_LINK.test(name);
}

export type Parity = 0 | 1;

/**
 * The kernel scans policy rules one by one, so bucket rules are reached through group
 * rules of RULE_GROUP buckets each (fwmark/mask goto), and packets without a VIP mark skip
 * them all with one guard rule: a few dozen comparisons per packet instead of 2*B.
 */
export const RULE_GROUP = 16;
export const RULE_GROUP_MASK = (0xffffffff - (RULE_GROUP - 1)) >>> 0;
/** Rule priorities rulePriority .. rulePriority + RULE_PRIORITY_SPAN are the project's. */
export const RULE_PRIORITY_SPAN = 2 + (2 * MAX_BUCKETS) / RULE_GROUP;

export function bucketMark(bucket: number, parity: Parity = 0): number {
  return MARK_BASE + parity * PARITY_STRIDE + bucket;
}

export function bucketTable(tableBase: number, bucket: number, parity: Parity = 0): number {
  return tableBase + parity * PARITY_STRIDE + bucket;
}

/** Tables tableBase .. tableBase+2*MAX_BUCKETS-1 are the project's, whatever B is now. */
export function isOwnedTable(tableBase: number, table: number): boolean {
  return table >= tableBase && table < tableBase + OWNED_SPAN;
}

export function isOwnedMark(mark: number): boolean {
  return mark >= MARK_BASE && mark < MARK_BASE + OWNED_SPAN;
}

/**
 * Nexthop objects (`ip nexthop`, proto 245): one per endpoint a route leads to, and every
 * bucket route points at one by id (`nhid`). Ids NEXTHOP_ID_BASE .. +NEXTHOP_ID_SPAN-1 are
 * the project's; a nexthop there with another protocol is someone else's and never reused.
 */
export const NEXTHOP_ID_BASE = 0x4b600000;
export const NEXTHOP_ID_SPAN = 0x100000;

export function inNexthopRange(id: number): boolean {
  return id >= NEXTHOP_ID_BASE && id < NEXTHOP_ID_BASE + NEXTHOP_ID_SPAN;
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * The flow-hash parameters every flow-hash backend renders (nft.ts, xt.ts): here, beside
 * the mark layout, so that neither backend imports the other (no import cycle).
 */
export interface HashParams {
  readonly buckets: number;
  readonly seed: number;
  readonly markBase: number;
  /** Connection pinning (docs/hitless.md): two table parities and the IPv4 flow map. */
  readonly pin?: boolean;
}
