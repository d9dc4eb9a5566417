// Pure address allocation for LoadBalancer Services of our loadBalancerClass, in the
// spirit of MetalLB's internal/allocator: no Kubernetes, no network, just pools in and
// addresses out. The kube area writes the result to status.loadBalancer.ingress.
//
// Semantics:
// - Requests are served in the order given (the caller orders them oldest first).
// - Keep pass first: a request keeps a current address when it still lies in a pool
//   that allows its namespace, is of a wanted family and is not taken. Only then are
//   new addresses handed out, so a younger Service can never grab an address an older
//   one still holds.
// - New addresses: the lowest free address of the first autoAssign pool (configuration
//   order) that allows the namespace and has one of the family. Network (all-zero host
//   part) and IPv4 broadcast addresses of a range are never handed out.
// - Deterministic: the same pools, requests and taken set give the same result.
import { bigIntToIp, cidrRange, classifyIp, ipFamily } from './ip.js';
import { poolAllowsService, poolContaining, type Pool } from './settings.js';
import type { IpAddress, IpFamily } from './types.js';

export interface AllocationRequest {
  /** "namespace/name": identifies the result. */
  readonly key: string;
  readonly namespace: string;
  /** The Service's labels (pools[].serviceSelector). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Allocate from this pool only (the pool annotation), autoAssign or not. */
  readonly pool?: string;
  readonly families: readonly IpFamily[];
  /** Addresses the Service has now (status.loadBalancer.ingress). */
  readonly current: readonly IpAddress[];
}

export interface AllocatedAddress {
  readonly ip: IpAddress;
  readonly pool: string;
  readonly kept: boolean;
}

export interface Allocation {
  readonly addresses: readonly AllocatedAddress[];
  /** One sentence per family that could not be served (pool exhaustion, no pool). */
  readonly failures: readonly string[];
}

function keepable(pools: readonly Pool[], req: AllocationRequest, ip: IpAddress): Pool | undefined {
  const pool = poolContaining(pools, ip);
  return pool && poolAllowsService(pool.settings, req) && (req.pool === undefined || req.pool === pool.name) && classifyIp(ip) === 'unicast' ? pool : undefined;
}

function usable(n: bigint, range: ReturnType<typeof cidrRange>): boolean {
  const hostBits = (range.family === 4 ? 32 : 128) - range.prefixLength;
  if (hostBits >= 2 && n === range.first) return false; // network / subnet-router anycast
  if (range.family === 4 && hostBits >= 2 && n === range.last) return false; // broadcast
  return true;
}

export function allocate(pools: readonly Pool[], requests: readonly AllocationRequest[], taken: ReadonlySet<IpAddress>): Map<string, Allocation> {
  const used = new Set<IpAddress>(taken);
  const kept = new Map<string, AllocatedAddress[]>();
  for (const req of requests) {
    const mine: AllocatedAddress[] = [];
    for (const family of req.families) {
      for (const ip of req.current) {
        if (ipFamily(ip) !== family || used.has(ip)) continue;
        const pool = keepable(pools, req, ip);
        if (!pool) continue;
        used.add(ip);
        mine.push({ ip, pool: pool.name, kept: true });
        break;
      }
    }
    kept.set(req.key, mine);
  }
  // Lowest-free cursors per CIDR: within one run nothing is freed, so the lowest free
  // address never goes below the cursor and each range is scanned at most once.
  const cursor = new Map<string, bigint>();
  const result = new Map<string, Allocation>();
  for (const req of requests) {
    const addresses = [...(kept.get(req.key) ?? [])];
    const failures: string[] = [];
    for (const family of req.families) {
      if (addresses.some((a) => ipFamily(a.ip) === family)) continue;
      // A requested pool is used whether or not it auto-assigns (MetalLB's address-pool annotation).
      const candidates = pools.filter(
        (p) => (req.pool !== undefined ? p.name === req.pool : p.settings.autoAssign) && poolAllowsService(p.settings, req) && p.cidrs.some((c) => cidrRange(c).family === family),
      );
      if (candidates.length === 0) {
        failures.push(
          req.pool !== undefined
            ? `pool "${req.pool}" has no IPv${family} addresses for Service in namespace "${req.namespace}"`
            : `no autoAssign pool with IPv${family} addresses allows namespace "${req.namespace}"${pools.some((p) => p.settings.serviceSelector) ? ' and the Service\'s labels' : ''}`,
        );
        continue;
      }
      const found = firstFree(candidates, family, used, cursor);
      if (!found) {
        failures.push(`no free IPv${family} address left in pool${candidates.length > 1 ? 's' : ''} ${candidates.map((p) => `"${p.name}"`).join(', ')}`);
        continue;
      }
      used.add(found.ip);
      addresses.push(found);
    }
    result.set(req.key, { addresses, failures });
  }
  return result;
}

function firstFree(pools: readonly Pool[], family: IpFamily, used: ReadonlySet<IpAddress>, cursor: Map<string, bigint>): AllocatedAddress | undefined {
  for (const pool of pools) {
    for (const cidr of pool.cidrs) {
      const range = cidrRange(cidr);
      if (range.family !== family) continue;
      for (let n = cursor.get(cidr) ?? range.first; n <= range.last; n++) {
        const ip = bigIntToIp(n, family);
        if (!usable(n, range) || used.has(ip) || classifyIp(ip) !== 'unicast') continue;
        cursor.set(cidr, n + 1n);
        return { ip, pool: pool.name, kept: false };
      }
      cursor.set(cidr, range.last + 1n);
    }
  }
  return undefined;
}
