// The data plane's view of a kernel, in one normalised shape for both sides of a diff:
// what the plan wants and what a readback found. Every value is a canonical string so
// "equal" means "no kernel operation needed".
import type { IpFamily } from '../model/types.js';
import { hex } from './layout.js';
import { XT_NONE, type XtState } from './xt.js';

export interface LinkSpec {
  readonly name: string;
  /** Canonical description compared with the readback ("vxlan external dstport 4789 ..."). */
  readonly spec: string;
  /** `ip -batch` lines that create the link and bring it up. */
  readonly create: readonly string[];
  /**
   * Permanent neighbours the project keeps on the link: address -> link-layer address. Kept
   * apart from `spec` so that adding or removing one (the IPv6 gateway when the first IPv6
   * VIP comes or the last goes) is one `neigh` line, never a recreated link.
   */
  readonly neighbours?: ReadonlyMap<string, string>;
}

export interface RouteSpec {
  readonly family: IpFamily;
  readonly table: number;
  /** Host address without prefix length (the kernel prints it that way). */
  readonly dst: string;
  /**
   * Canonical nexthop text: the nexthop object the route leads to (its `ip nexthop` text).
   * A readback route that does not lead to the canonical object for its text (an inline
   * nexthop left by an older version, a duplicate object) gets a text no plan produces.
   */
  readonly nexthop: string;
}

/** A nexthop object the project owns; `spec` is the same canonical text routes carry. */
export interface NexthopSpec {
  readonly id: number;
  readonly family: IpFamily;
  readonly spec: string;
}

/** What a matching rule does: look up a table, jump to a priority, or nothing (an anchor). */
export type RuleAction = { readonly lookup: number } | { readonly goto: number } | { readonly nop: true };

export interface RuleSpec {
  readonly family: IpFamily;
  readonly priority: number;
  /** Matches packets whose fwmark & mask is `mark` (no mask: the whole mark); none: all. */
  readonly mark?: number;
  readonly mask?: number;
  /** Inverts the match. */
  readonly not?: boolean;
  readonly action: RuleAction;
}

export interface NftState {
  /** Fingerprint of chains and rules; undefined when the table does not exist. */
  readonly structure: string | undefined;
  /** Set or map name -> canonical elements. */
  readonly elements: ReadonlyMap<string, ReadonlySet<string>>;
  readonly counters: ReadonlySet<string>;
}

export interface KernelState {
  readonly links: ReadonlyMap<string, LinkSpec>;
  /**
   * VIP -> (table -> route). Grouped by VIP so an unchanged VIP is one reference
   * comparison on the fast path, not 256 route comparisons.
   */
  readonly routes: ReadonlyMap<string, VipRoutes>;
  /** id -> nexthop object; routes lead to them by id (`nhid`). */
  readonly nexthops: ReadonlyMap<number, NexthopSpec>;
  /** Ids in the project's range held by nexthops that are not its own: never used. */
  readonly foreignNexthopIds: ReadonlySet<number>;
  /** ruleKey -> rule. */
  readonly rules: ReadonlyMap<string, RuleSpec>;
  readonly nft: NftState;
  /** xtables HMARK chains (the flow-hash backend for kernels without nft IP families). */
  readonly xt: XtState;
}

/** How packets get their bucket mark: nftables jhash (default) or xtables HMARK. */
export type FlowHashBackend = 'nftables' | 'iptables-legacy';

export type VipRoutes = ReadonlyMap<number, RouteSpec>;

/** Marks a readback route whose nexthop is inline (no object): such routes are rewritten. */
export const INLINE_SUFFIX = ' (inline)';

/**
 * True when a route read back forwards where `want` does: the same text, or the same
 * nexthop written inline (rewriting that by nhid changes no packet's path).
 */
export function sameTarget(have: Pick<RouteSpec, 'nexthop'>, want: Pick<RouteSpec, 'nexthop'>): boolean {
  return have.nexthop === want.nexthop || have.nexthop === want.nexthop + INLINE_SUFFIX;
}

/** Nexthop objects are looked up by family and text: one object per distinct target. */
export function nexthopKey(family: IpFamily, spec: string): string {
  return `${family} ${spec}`;
}

/** The selector and action as `ip rule` takes them: "not fwmark 0x../0x.. goto 3033". */
export function ruleText(r: RuleSpec): string {
  const match = r.mark === undefined ? '' : `fwmark ${hex(r.mark)}${r.mask === undefined ? '' : `/${hex(r.mask)}`} `;
  const action = 'lookup' in r.action ? `lookup ${r.action.lookup}` : 'goto' in r.action ? `goto ${r.action.goto}` : 'nop';
  return `${r.not ? 'not ' : ''}${match}${action}`;
}

export function ruleKey(r: RuleSpec): string {
  return `${r.family} ${r.priority} ${ruleText(r)}`;
}

export const EMPTY_NFT: NftState = { structure: undefined, elements: new Map(), counters: new Set() };

export function emptyKernelState(): KernelState {
  return { links: new Map(), routes: new Map(), nexthops: new Map(), foreignNexthopIds: new Set(), rules: new Map(), nft: EMPTY_NFT, xt: XT_NONE };
}

export function familyOf(address: string): IpFamily {
  return address.includes(':') ? 6 : 4;
}
