// Pure: the incremental plan. The common change on a large node is one EndpointSlice,
// i.e. the bucket table of one or a few VIPs; the model hands over a DesiredState whose
// other VipPlans are the very same objects as last time. When the kernel holds exactly the
// last plan, only the changed VIPs are planned, and the rest of the last plan is reused
// object for object (routes map entries, nexthop objects, links, rules, nft sets), so
// the cost of a change is proportional to what changed, not to the VIPs on the node.
// Anything else (VIPs added or removed, a held VIP, other node settings, xtables) returns
// undefined and planKernel plans everything, as before. planKernel's result is the same
// either way (test/dataplane/plan-change.test.ts checks it on random changes).
import type { DesiredState, VipPlan } from '../model/types.js';
import { nftSets } from './nft.js';
import { planNexthopsFor } from './nexthops.js';
import type { KernelPlan, RoutePlanCache } from './plan.js';
import type { KernelState, NftState, VipRoutes } from './state.js';

/** What the last plan was made from (RoutePlanCache.last). */
export interface LastPlan {
  readonly desired: DesiredState;
  readonly plan: KernelPlan;
  /** cache.tally.endpoints() after it: the same array while no endpoint came or went. */
  readonly endpoints: readonly string[];
  readonly targetsVersion: number;
}

/** The VIPs of `desired` whose plans differ from the last one's; undefined: not a table-only change. */
function changedVips(last: DesiredState, desired: DesiredState): VipPlan[] | undefined {
  if (
    last.node !== desired.node ||
    last.isTunnelNode !== desired.isTunnelNode ||
    !desired.isTunnelNode ||
    last.mode !== desired.mode ||
    last.bucketCount !== desired.bucketCount ||
    last.hashSeed !== desired.hashSeed ||
    last.vips.length !== desired.vips.length
  ) {
    return undefined;
  }
  const changed: VipPlan[] = [];
  for (let i = 0; i < desired.vips.length; i++) {
    const v = desired.vips[i]!;
    const o = last.vips[i]!;
    if (v === o) continue;
    // The same VIP of the same Service with another table; anything more goes the full way.
    const same =
      v.vip === o.vip &&
      v.family === o.family &&
      v.kernelMissing === undefined &&
      o.kernelMissing === undefined &&
      v.service.uid === o.service.uid &&
      v.service.namespace === o.service.namespace &&
      v.service.name === o.service.name &&
      v.sourceRanges.join(',') === o.sourceRanges.join(',');
    if (!same) return undefined;
    changed.push(v);
  }
  return changed;
}

export function planChange(desired: DesiredState, cache: RoutePlanCache, previous: KernelState | undefined): KernelPlan | undefined {
  const last = cache.last;
  const params = cache.params;
  // The kernel must hold exactly what was planned last (not a readback, not a failed batch).
  if (!last || !previous || previous !== last.plan.state || last.plan.held.size > 0 || params.flowHash === 'iptables-legacy') return undefined;
  const vips = changedVips(last.desired, desired);
  if (!vips) return undefined;
  const B = desired.bucketCount;
  const pin = last.plan.hash.pin;
  let routes: Map<string, VipRoutes> | undefined;
  let elements: Map<string, ReadonlySet<string>> | undefined;
  const changed = new Set<string>();
  const copied = new Map<string, Set<string>>();
  for (const v of vips) {
    const planned = cache.plan(v, desired);
    if ('problem' in planned) return undefined; // held VIPs: the full plan handles them
    const have = previous.routes.get(v.vip);
    let vipRoutes = planned.routes;
    if (pin) {
      const setName = nftSets.parity1(v.family);
      const set = (elements ?? previous.nft.elements).get(setName);
      const was = set?.has(v.vip) ? 1 : 0;
      const p = cache.pin(v.vip, planned.routes, planned.live, have, was, B);
      vipRoutes = p.routes;
      if (p.parity !== was) {
        elements ??= new Map(previous.nft.elements);
        // Each set is copied once per plan, however many of its VIPs flip.
        let next = copied.get(setName);
        if (!next) copied.set(setName, (next = new Set(set ?? [])));
        if (p.parity === 1) next.add(v.vip);
        else next.delete(v.vip);
        if (next.size > 0) elements.set(setName, next);
        else elements.delete(setName);
      }
    }
    if (vipRoutes === have) continue;
    routes ??= new Map(previous.routes);
    if (vipRoutes.size) routes.set(v.vip, vipRoutes);
    else routes.delete(v.vip);
    changed.add(v.vip);
    cache.tally.set(v.vip, { endpoints: planned.endpoints, routes: vipRoutes });
  }
  if (!cache.tally.complete) return undefined;
  const endpoints = cache.tally.endpoints();
  const links =
    endpoints === last.endpoints
      ? previous.links
      : new Map(cache.driver.links(endpoints, new Set(desired.vips.map((v) => v.family))).map((l) => [l.name, l] as const));
  const nexthops = cache.tally.targetsVersion === last.targetsVersion ? previous.nexthops : planNexthopsFor(cache.tally.targets(), previous);
  const nft: NftState = elements ? { ...previous.nft, elements } : previous.nft;
  const plan: KernelPlan = {
    state: { ...previous, links, routes: routes ?? previous.routes, nexthops, nft },
    held: last.plan.held,
    problems: last.plan.problems,
    owners: last.plan.owners,
    hash: last.plan.hash,
    changedVips: changed,
  };
  cache.last = { desired, plan, endpoints, targetsVersion: cache.tally.targetsVersion };
  return plan;
}
