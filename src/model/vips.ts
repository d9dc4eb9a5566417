// Which VIPs exist, for which Service, from which pool: the tunnel annotation, LoadBalancer
// allocation and every validation rule that can reject a VIP. Depends on Services only
// (not endpoints or nodes), so it is recomputed only when a Service changes.
import { allocate, type AllocationRequest } from './allocator.js';
import { classifyIp, ipFamily, parseCidrDetailed, parseIp, sortIps } from './ip.js';
import { poolAllowsService, poolContaining, poolRefusal, preparePools, type ModelSettings, type Pool, type PoolSettings } from './settings.js';

/** The Service annotation that picks the pool to allocate from (MetalLB metallb.io/address-pool): "<annotationKey>-pool". */
export function poolAnnotationKey(settings: { readonly annotationKey: string }): string {
  return `${settings.annotationKey}-pool`;
}
import type { Cidr, IpAddress, IpFamily, Problem, ServiceInput, ServiceRef } from './types.js';

export interface ServiceVip {
  readonly vip: IpAddress;
  readonly family: IpFamily;
  readonly service: ServiceRef;
  readonly pool: PoolSettings;
  readonly sourceRanges: readonly Cidr[];
  /** annotation: the tunnel annotation; requested: spec.loadBalancerIP; allocated: from a pool. */
  readonly origin: 'annotation' | 'requested' | 'allocated';
}

export interface VipResolution {
  /** Valid VIPs sorted by address (IPv4 first). */
  readonly vips: readonly ServiceVip[];
  readonly problems: readonly Problem[];
  /**
   * For each LoadBalancer Service of our class ("namespace/name"): the addresses that
   * belong in status.loadBalancer.ingress, sorted. Absent Services are not ours.
   */
  readonly loadBalancerIngress: ReadonlyMap<string, readonly IpAddress[]>;
}

export function serviceKey(s: { readonly namespace: string; readonly name: string }): string {
  return `${s.namespace}/${s.name}`;
}

function ref(s: ServiceInput): ServiceRef {
  return { namespace: s.namespace, name: s.name, uid: s.uid };
}

function problem(s: ServiceInput, reason: string, message: string): Problem {
  return { ref: { kind: 'Service', namespace: s.namespace, name: s.name, uid: s.uid }, reason, message };
}

function timestamp(s: ServiceInput): number {
  const t = Date.parse(s.creationTimestamp);
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

/** Oldest first; ties (same second) by namespace/name, so every node agrees. */
export function compareServiceAge(a: ServiceInput, b: ServiceInput): number {
  const ta = timestamp(a);
  const tb = timestamp(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ka = serviceKey(a);
  const kb = serviceKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export function isOurLoadBalancer(settings: ModelSettings, s: ServiceInput): boolean {
  return s.type === 'LoadBalancer' && s.loadBalancerClass === settings.loadBalancerClass;
}

function wantedFamilies(s: ServiceInput): IpFamily[] {
  const fams = (s.ipFamilies ?? ['IPv4']).map((f) => (f === 'IPv6' ? 6 : 4) as IpFamily);
  return [...new Set(fams)];
}

interface Claim {
  readonly vip: IpAddress;
  readonly pool: Pool;
}

/** The annotation's addresses that pass every per-address rule; problems for the rest. */
function annotationClaims(settings: ModelSettings, pools: readonly Pool[], s: ServiceInput, value: string, problems: Problem[], field: string, requestedPool?: string): Claim[] {
  const entries = value.split(',').map((e) => e.trim());
  if (entries.every((e) => e === '')) {
    problems.push(problem(s, 'InvalidTunnelAddress', `${field} is empty; expected an IP address or a comma-separated list`));
    return [];
  }
  const claims: Claim[] = [];
  for (const entry of entries) {
    if (entry === '') continue;
    const vip = parseIp(entry);
    if (!vip) {
      problems.push(problem(s, 'InvalidTunnelAddress', `${field}: "${entry}" is not an IPv4 or IPv6 address`));
      continue;
    }
    const cls = classifyIp(vip);
    if (cls !== 'unicast') {
      problems.push(problem(s, 'InvalidTunnelAddress', `${field}: ${vip} is ${/^[aeiou]/.test(cls) ? 'an' : 'a'} ${cls} address and cannot be a tunnel VIP`));
      continue;
    }
    const pool = poolContaining(pools, vip);
    if (!pool) {
      const known = pools.map((p) => `${p.name} (${p.cidrs.join(', ')})`).join('; ') || 'none configured';
      problems.push(problem(s, 'VipNotInPool', `${field}: ${vip} is outside every configured pool; pools: ${known}`));
      continue;
    }
    const refusal = poolRefusal(pool.settings, s);
    if (refusal) {
      problems.push(problem(s, 'VipNamespaceNotAllowed', `${field}: ${vip} is in pool "${pool.name}", which ${refusal}`));
      continue;
    }
    if (requestedPool !== undefined && pool.name !== requestedPool) {
      problems.push(problem(s, 'VipNotInRequestedPool', `${field}: ${vip} is in pool "${pool.name}", not in pool "${requestedPool}" that metadata.annotations["${poolAnnotationKey(settings)}"] asks for`));
      continue;
    }
    if (!claims.some((c) => c.vip === vip)) claims.push({ vip, pool });
  }
  return claims;
}

/** Parsed source ranges, or undefined after reporting: a bad range rejects the Service
 * (fail closed: dropping it would let more clients in than the user asked for). */
function sourceRanges(s: ServiceInput, problems: Problem[]): Cidr[] | undefined {
  const out: Cidr[] = [];
  let bad = false;
  s.loadBalancerSourceRanges.forEach((text, i) => {
    const r = parseCidrDetailed(text, false);
    if (r.ok) out.push(r.cidr);
    else {
      bad = true;
      problems.push(problem(s, 'InvalidSourceRange', `spec.loadBalancerSourceRanges[${i}]: "${text}" is not a CIDR (${r.error}); the Service's VIPs are not programmed`));
    }
  });
  return bad ? undefined : [...new Set(out)];
}

export function resolveVips(settings: ModelSettings, services: readonly ServiceInput[]): VipResolution {
  const pools = preparePools(settings.pools);
  const problems: Problem[] = [];
  const ordered = [...services].sort(compareServiceAge);
  const owner = new Map<IpAddress, ServiceInput>();
  const vips: ServiceVip[] = [];
  const ranges = new Map<ServiceInput, readonly Cidr[]>();
  const lbRequests: AllocationRequest[] = [];
  const lbServices = new Map<string, ServiceInput>();

  const claim = (s: ServiceInput, c: Claim, origin: ServiceVip['origin'], what: string): boolean => {
    const holder = owner.get(c.vip);
    if (holder && holder !== s) {
      problems.push(problem(s, 'VipConflict', `${what}: ${c.vip} is already used by Service ${serviceKey(holder)}, which is older (oldest Service wins; ties by namespace/name)`));
      return false;
    }
    owner.set(c.vip, s);
    vips.push({ vip: c.vip, family: ipFamily(c.vip), service: ref(s), pool: c.pool.settings, sourceRanges: ranges.get(s) ?? [], origin });
    return true;
  };

  // Oldest first, so the first claimant of an address is the one that keeps it.
  for (const s of ordered) {
    const annotation = s.annotations[settings.annotationKey];
    const lb = isOurLoadBalancer(settings, s);
    if (annotation === undefined && !lb) continue;
    const sr = sourceRanges(s, problems);
    if (!sr) continue;
    ranges.set(s, sr);
    const poolKey = poolAnnotationKey(settings);
    const requestedPool = s.annotations[poolKey]?.trim();
    if (requestedPool !== undefined && !pools.some((p) => p.name === requestedPool)) {
      // Fail closed: allocating from another pool than the one asked for is not what was asked.
      problems.push(problem(s, 'UnknownPool', `metadata.annotations["${poolKey}"]: "${requestedPool}" is not a configured pool (pools: ${pools.map((p) => p.name).join(', ') || 'none'}); the Service gets no address`));
      if (lb) lbServices.set(serviceKey(s), s);
      continue;
    }
    if (requestedPool !== undefined) {
      const refusal = poolRefusal(pools.find((p) => p.name === requestedPool)!.settings, s);
      if (refusal) {
        problems.push(problem(s, 'VipNamespaceNotAllowed', `metadata.annotations["${poolKey}"]: pool "${requestedPool}" ${refusal}; the Service gets no address`));
        if (lb) lbServices.set(serviceKey(s), s);
        continue;
      }
    }
    if (annotation !== undefined) {
      const field = `metadata.annotations["${settings.annotationKey}"]`;
      if (lb && s.loadBalancerIP !== undefined) {
        problems.push(problem(s, 'ConflictingAddressRequest', `spec.loadBalancerIP (${s.loadBalancerIP}) is ignored: ${field} lists the Service's addresses`));
      }
      for (const c of annotationClaims(settings, pools, s, annotation, problems, field, requestedPool)) claim(s, c, 'annotation', field);
      if (lb) lbServices.set(serviceKey(s), s);
      continue;
    }
    if (s.loadBalancerIP !== undefined) {
      // A requested address is validated like an annotated one, and never replaced by another.
      const field = 'spec.loadBalancerIP';
      for (const c of annotationClaims(settings, pools, s, s.loadBalancerIP, problems, field, requestedPool)) claim(s, c, 'requested', field);
      lbServices.set(serviceKey(s), s);
      continue;
    }
    // LoadBalancer without annotation: keep current status addresses this Service still
    // holds (first claimant wins), allocate the rest below.
    const families = wantedFamilies(s);
    const current: IpAddress[] = [];
    for (const family of families) {
      for (const text of s.statusIngressIps) {
        const ip = parseIp(text);
        if (!ip || ipFamily(ip) !== family || owner.has(ip) || classifyIp(ip) !== 'unicast') continue;
        const pool = poolContaining(pools, ip);
        if (!pool || !poolAllowsService(pool.settings, s) || (requestedPool !== undefined && pool.name !== requestedPool)) continue;
        current.push(ip);
        owner.set(ip, s); // reserved in age order; allocate() keeps it
        break;
      }
    }
    lbRequests.push({ key: serviceKey(s), namespace: s.namespace, ...(s.labels ? { labels: s.labels } : {}), ...(requestedPool !== undefined ? { pool: requestedPool } : {}), families, current });
    lbServices.set(serviceKey(s), s);
  }

  const kept = new Set<IpAddress>(lbRequests.flatMap((r) => r.current));
  const taken = new Set<IpAddress>([...owner.keys()].filter((ip) => !kept.has(ip)));
  const allocations = allocate(pools, lbRequests, taken);
  for (const req of lbRequests) {
    const s = lbServices.get(req.key)!;
    const a = allocations.get(req.key)!;
    for (const f of a.failures) problems.push(problem(s, 'AllocationFailed', `spec.loadBalancerClass "${settings.loadBalancerClass}": ${f}`));
    for (const addr of a.addresses) {
      const pool = pools.find((p) => p.name === addr.pool)!;
      owner.set(addr.ip, s);
      vips.push({ vip: addr.ip, family: ipFamily(addr.ip), service: ref(s), pool: pool.settings, sourceRanges: ranges.get(s) ?? [], origin: 'allocated' });
    }
  }

  const loadBalancerIngress = new Map<string, readonly IpAddress[]>();
  const byService = new Map<string, IpAddress[]>();
  for (const v of vips) {
    const k = serviceKey(v.service);
    byService.set(k, [...(byService.get(k) ?? []), v.vip]);
  }
  for (const k of [...lbServices.keys()].sort()) loadBalancerIngress.set(k, sortIps(byService.get(k) ?? [], (x) => x));
  return { vips: sortIps(vips, (v) => v.vip), problems, loadBalancerIngress };
}
