// The part of the agent's configuration the model reads. Declared here, structurally,
// so that the pure model does not import the config area: a validated `Config`
// (src/config) is assignable to ModelSettings as it is.
import { cidrContains, parseCidr } from './ip.js';
import type { BgpSettings } from './peers.js';
import type { Cidr, EncapMode, IpAddress } from './types.js';

export interface PoolSettings {
  readonly name: string;
  readonly cidrs: readonly string[];
  /** Namespaces allowed to use the pool; "*" allows all. */
  readonly namespaces: readonly string[];
  readonly autoAssign: boolean;
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

/** The pool containing an address: the first in configuration order (config validation forbids overlaps). */
export function poolContaining(pools: readonly Pool[], ip: IpAddress): Pool | undefined {
  return pools.find((p) => p.cidrs.some((c) => cidrContains(c, ip)));
}
