// The part of the agent's configuration the model reads. Declared here, structurally,
// so that the pure model does not import the config area: a validated `Config`
// (src/config) is assignable to ModelSettings as it is.
import { cidrContains, parseCidr } from './ip.js';
import { parseSelector, selectorMatches } from './selector.js';
import type { BgpSettings } from './peers.js';
import type { Cidr, EncapMode, IpAddress } from './types.js';

export interface PoolSettings {
  readonly name: string;
  readonly cidrs: readonly string[];
  /** Namespaces allowed to use the pool; "*" allows all. */
  readonly namespaces: readonly string[];
  readonly autoAssign: boolean;
  /** Peer names or addresses that receive the pool's VIPs; empty/absent: every peer. */
  readonly peers?: readonly string[];
  /** Label selector of the Services that may use the pool (as namespaces); empty/absent: all. */
  readonly serviceSelector?: string;
  readonly communities: readonly string[];
  readonly largeCommunities: readonly string[];
  readonly localPref?: number;
}

export interface ModelSettings {
  readonly annotationKey: string;
  readonly loadBalancerClass: string;
  readonly tunnelNodeSelector: string;
  readonly encapsulation: { readonly mode: EncapMode };
  readonly buckets: number;
  readonly hashSeed: number;
  readonly pools: readonly PoolSettings[];
  readonly bgp: BgpSettings & {
    readonly maintenanceTaint: string;
    /** Cordoned nodes withdraw too (off by default: see node.ts). */
    readonly withdrawWhenCordoned?: boolean;
  };
}

/** A pool with its CIDRs parsed once; invalid CIDRs (reported by config validation) are skipped. */
export interface Pool {
  readonly settings: PoolSettings;
  readonly name: string;
  readonly cidrs: readonly Cidr[];
}

export function preparePools(pools: readonly PoolSettings[]): Pool[] {
  return pools.map((settings) => ({
    settings,
    name: settings.name,
    cidrs: settings.cidrs.map((c) => parseCidr(c, false)).filter((c): c is Cidr => c !== undefined),
  }));
}

export function poolAllowsNamespace(pool: PoolSettings, namespace: string): boolean {
  return pool.namespaces.includes('*') || pool.namespaces.includes(namespace);
}

/** The pool admits this Service: its namespace is allowed and its labels match serviceSelector. */
export function poolAllowsService(pool: PoolSettings, s: { readonly namespace: string; readonly labels?: Readonly<Record<string, string>> }): boolean {
  if (!poolAllowsNamespace(pool, s.namespace)) return false;
  if (!pool.serviceSelector) return true;
  const sel = parseSelector(pool.serviceSelector);
  return sel.ok && selectorMatches(sel.selector, s.labels ?? {});
}

/** Why a pool does not admit a Service ("does not allow ...", after the pool's name), for Events; undefined when it does. */
export function poolRefusal(pool: PoolSettings, s: { readonly namespace: string; readonly labels?: Readonly<Record<string, string>> }): string | undefined {
  if (!poolAllowsNamespace(pool, s.namespace)) return `does not allow namespace "${s.namespace}" (allowed: ${pool.namespaces.join(', ')})`;
  if (!poolAllowsService(pool, s)) return `admits only Services whose labels match "${pool.serviceSelector}"`;
  return undefined;
}

/** The pool containing an address: the first in configuration order (config validation forbids overlaps). */
export function poolContaining(pools: readonly Pool[], ip: IpAddress): Pool | undefined {
  return pools.find((p) => p.cidrs.some((c) => cidrContains(c, ip)));
}
