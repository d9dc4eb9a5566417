// Pure: the kernel state one node should have, from the model's DesiredState. No I/O; the
// driver's nexthops are canonical text, so the result compares directly with a readback.
import type { DesiredState, IpFamily, ServiceRef, VipPlan } from '../model/types.js';
import type { EncapDriver } from './drivers/index.js';
import { MARK_BASE, MARK_MASK, RULE_GROUP, RULE_GROUP_MASK, bucketMark, bucketTable, type Parity } from './layout.js';
import { NexthopTally, planNexthops, planNexthopsFor } from './nexthops.js';
import { activeParities, pinGenerations, type LiveTargets, type PinnedVip } from './pinning.js';
import { desiredStructure, nftSets, vipCounterName, type HashParams } from './nft.js';
import { EMPTY_NFT, emptyKernelState, familyOf, ruleKey, type FlowHashBackend, type KernelState, type LinkSpec, type NftState, type RuleSpec, type VipRoutes } from './state.js';
import { XT_NONE, xtFamily, type XtState, type XtVip } from './xt.js';
import { PackedVipRoutes, VipRoutesBuilder } from './vip-routes.js';
import { planChange, type LastPlan } from './plan-change.js';

export interface PlanParams {
  readonly tableBase: number;
  readonly rulePriority: number;
  /** Default nftables. */
  readonly flowHash?: FlowHashBackend;
  /**
   * Connection pinning (two table generations + a per-flow mark map, docs/hitless.md).
   * nftables only: the xtables backend always plans a single generation.
   */
  readonly pinEstablishedFlows?: boolean;
}

export interface VipProblem {
  readonly service: ServiceRef;
  readonly vip: string;
  readonly message: string;
}

export interface KernelPlan {
  readonly state: KernelState;
  /** VIPs whose routes could not be planned: the kernel keeps what it has for them (fail static). */
  readonly held: ReadonlySet<string>;
  readonly problems: readonly VipProblem[];
  /** VIP -> Service, to attribute a failed kernel operation to its Service. */
  readonly owners: ReadonlyMap<string, ServiceRef>;
  readonly hash: { readonly buckets: number; readonly seed: number; readonly markBase: number; readonly pin: boolean };
  /**
   * Set by an incremental plan (plan-change.ts): the only VIPs whose routes can differ from
   * `previous`; the diff looks at these alone. Absent: any VIP may have changed.
   */
  readonly changedVips?: ReadonlySet<string>;
}

/**
 * Remembers each VIP's planned routes, so that re-planning 1,000 unchanged VIPs costs a
 * comparison each and yields the same VipRoutes objects (the diff then skips them by
 * reference). Belongs to one driver and one set of params.
 */
export class RoutePlanCache {
  private readonly entries = new Map<string, { readonly vip: VipPlan; readonly node: string; readonly result: PlannedVip }>();
  /** Endpoints and nexthop targets of the VIPs planned last (planKernel keeps it current). */
  readonly tally = new NexthopTally();
  /** The last plan and what it was made from: where an incremental plan starts (plan-change.ts). */
  last?: LastPlan;
  constructor(
    readonly driver: EncapDriver,
    readonly params: PlanParams,
  ) {}

  plan(v: VipPlan, desired: DesiredState): PlannedVip {
    const hit = this.entries.get(v.vip);
    if (hit && hit.node === desired.node && sameTable(hit.vip, v)) {
      // Remember the newest object: a model that reuses it makes the next check `===`.
      if (hit.vip !== v) this.entries.set(v.vip, { ...hit, vip: v });
      return hit.result;
    }
    const result = planVipRoutes(v, desired, this.driver, this.params);
    this.entries.set(v.vip, { vip: v, node: desired.node, result });
    return result;
  }

  private readonly pins = new Map<string, { readonly fresh: VipRoutes; readonly have: VipRoutes | undefined; readonly haveParity: Parity; readonly result: PinnedVip }>();

  /** pinGenerations, remembered: an unchanged VIP on the fast path costs two comparisons. */
  pin(vip: string, fresh: VipRoutes, live: LiveTargets, have: VipRoutes | undefined, haveParity: Parity, buckets: number): PinnedVip {
    const hit = this.pins.get(vip);
    if (hit && hit.fresh === fresh) {
      if (hit.have === have && hit.haveParity === haveParity) return hit.result;
      // The kernel now holds what this result planned: applying it again changes nothing.
      if (hit.result.routes === have && hit.result.parity === haveParity) return hit.result;
    }
    const result = pinGenerations(fresh, have, haveParity, this.params.tableBase, buckets, live);
    // The kernel holds exactly the fresh routes (a readback after a full resync): keep one
    // copy, the kernel's, which the plan's state holds anyway.
    const entry = this.entries.get(vip);
    if (have && result.routes === have && haveParity === 0 && have.size === fresh.size && entry && !('problem' in entry.result) && entry.result.routes === fresh) {
      this.entries.set(vip, { ...entry, result: { ...entry.result, routes: have, live: entry.result.live.over(have) } });
      this.pins.set(vip, { fresh: have, have, haveParity, result });
      return result;
    }
    this.pins.set(vip, { fresh, have, haveParity, result });
    return result;
  }

  private filter?: { key: string; value: FlowFilter };
  private rules?: { key: string; value: ReadonlyMap<string, RuleSpec> };

  filterFor(key: string): FlowFilter | undefined {
    return this.filter?.key === key ? this.filter.value : undefined;
  }

  rememberFilter(key: string, value: FlowFilter): void {
    this.filter = { key, value };
  }

  rulesFor(key: string): ReadonlyMap<string, RuleSpec> | undefined {
    return this.rules?.key === key ? this.rules.value : undefined;
  }

  rememberRules(key: string, value: ReadonlyMap<string, RuleSpec>): void {
    this.rules = { key, value };
  }

  /** Forget VIPs that are gone (keeps the cache from growing) and, on `all`, everything. */
  prune(keep: ReadonlySet<string>, all = false): void {
    for (const vip of this.entries.keys()) if (all || !keep.has(vip)) this.entries.delete(vip);
    for (const vip of this.pins.keys()) if (all || !keep.has(vip)) this.pins.delete(vip);
  }
}

/**
 * Plans every VIP's routes into the cache in slices of about `sliceMs`, awaiting `pause`
 * between them, so that the plan that follows finds them all planned (routes, pinning
 * and the nexthop tally). A first plan of
 * 10,000 VIPs x 256 buckets is seconds of work; done in one piece it blocks the event loop
 * long enough for the agent to miss its Lease renewal.
 */
export async function planInSlices(desired: DesiredState, cache: RoutePlanCache, sliceMs: number, pause: () => Promise<void>, previous?: KernelState): Promise<void> {
  if (!desired.isTunnelNode) return;
  // Pinning against what the kernel holds is the other per-VIP part (3 x 256 lookups each).
  const pin = cache.params.pinEstablishedFlows === true && cache.params.flowHash !== 'iptables-legacy';
  const parityOf = activeParities(pin ? previous : undefined);
  let started = performance.now();
  for (const v of desired.vips) {
    if (v.kernelMissing !== undefined) continue;
    const planned = cache.plan(v, desired);
    if (!('problem' in planned)) {
      const routes = pin ? cache.pin(v.vip, planned.routes, planned.live, previous?.routes.get(v.vip), parityOf(v.vip), desired.bucketCount).routes : planned.routes;
      // What planKernel will hand the tally: counted here, it finds nothing left to count.
      cache.tally.set(v.vip, { endpoints: planned.endpoints, routes });
    }
    if (performance.now() - started >= sliceMs) {
      await pause();
      started = performance.now();
    }
  }
}

function sameTable(a: VipPlan, b: VipPlan): boolean {
  if (a === b) return true;
  if (a.family !== b.family || a.table.buckets.length !== b.table.buckets.length || a.table.backends.length !== b.table.backends.length) return false;
  for (let i = 0; i < a.table.buckets.length; i++) if (a.table.buckets[i] !== b.table.buckets[i]) return false;
  for (let i = 0; i < a.table.backends.length; i++) {
    const x = a.table.backends[i]!;
    const y = b.table.backends[i]!;
    if (x.address !== y.address || x.nodeName !== y.nodeName) return false;
  }
  return true;
}

/**
 * `previous`: what the kernel has now (readback or last applied). Pinning needs it to know
 * each VIP's active parity and which generation its tables hold; without it every VIP
 * starts on parity 0.
 */
export function planKernel(desired: DesiredState, driver: EncapDriver, params: PlanParams, cache?: RoutePlanCache, previous?: KernelState): KernelPlan {
  // Only some VIPs' tables changed since the last plan, which the kernel holds: plan those.
  const change = cache ? planChange(desired, cache, previous) : undefined;
  if (change) return change;
  const plan = planAll(desired, driver, params, cache, previous);
  if (cache) cache.last = { desired, plan, endpoints: cache.tally.endpoints(), targetsVersion: cache.tally.targetsVersion };
  return plan;
}

function planAll(desired: DesiredState, driver: EncapDriver, params: PlanParams, cache?: RoutePlanCache, previous?: KernelState): KernelPlan {
  const B = desired.bucketCount;
  const routes = new Map<string, VipRoutes>();
  const held = new Set<string>();
  const problems: VipProblem[] = [];
  const owners = new Map<string, ServiceRef>();
  const endpoints = new Set<string>();
  // With a cache, what all VIPs need (endpoints, nexthop targets) is counted VIP by VIP
  // (NexthopTally) instead of collected from every route of every VIP on each plan.
  const contributions = cache ? new Map<string, { readonly endpoints: readonly string[]; readonly routes: VipRoutes }>() : undefined;
  // A VIP this node's kernel cannot carry (VipPlan.kernelMissing) is reported by the model
  // and left alone here: programming it could only fail, and be retried forever.
  const vips = desired.isTunnelNode ? desired.vips.filter((v) => v.kernelMissing === undefined) : [];
  const useXt = params.flowHash === 'iptables-legacy';
  const pin = params.pinEstablishedFlows === true && !useXt;
  const hash = { buckets: B, seed: desired.hashSeed, markBase: MARK_BASE, pin };
  const parityOf = activeParities(pin ? previous : undefined);
  const parity1 = new Set<string>();
  // The flow-hash part depends only on VIPs, families and source ranges: on the fast path
  // (an endpoint change) it is the same object as last time and the diff skips it.
  let filterKey = `${desired.isTunnelNode}|${useXt}|${pin}|${B}|${desired.hashSeed}`;
  for (const v of vips) {
    owners.set(v.vip, v.service);
    filterKey += `|${v.vip}/${v.family}/${v.sourceRanges.join(',')}`;
    const planned = cache ? cache.plan(v, desired) : planVipRoutes(v, desired, driver, params);
    if ('problem' in planned) {
      held.add(v.vip);
      problems.push({ service: v.service, vip: v.vip, message: planned.problem });
    } else {
      let vipRoutes = planned.routes;
      if (pin) {
        const have = previous?.routes.get(v.vip);
        const p = cache ? cache.pin(v.vip, planned.routes, planned.live, have, parityOf(v.vip), B) : pinGenerations(planned.routes, have, parityOf(v.vip), params.tableBase, B, planned.live);
        vipRoutes = p.routes;
        if (p.parity === 1) {
          parity1.add(v.vip);
          filterKey += `|p1:${v.vip}`;
        }
      }
      if (vipRoutes.size) routes.set(v.vip, vipRoutes);
      if (contributions) contributions.set(v.vip, { endpoints: planned.endpoints, routes: vipRoutes });
      else for (const e of planned.endpoints) endpoints.add(e);
    }
  }
  // A held VIP keeps the parity it has (its routes are not touched either).
  if (pin) {
    for (const vip of held) {
      if (parityOf(vip) === 1) {
        parity1.add(vip);
        filterKey += `|p1:${vip}`;
      }
    }
  }
  const filter = cache?.filterFor(filterKey) ?? planFilter(vips, desired.isTunnelNode, useXt, hash, parity1);
  if (cache) cache.rememberFilter(filterKey, filter);
  const rulesKey = `${desired.isTunnelNode}|${pin}|${B}|${params.rulePriority}|${params.tableBase}`;
  const rules = cache?.rulesFor(rulesKey) ?? planRules(desired.isTunnelNode, B, params, pin);
  if (cache) cache.rememberRules(rulesKey, rules);
  if (cache && contributions) cache.tally.update(contributions);
  const links = new Map<string, LinkSpec>();
  if (desired.isTunnelNode) for (const l of driver.links(cache ? cache.tally.endpoints() : [...endpoints].sort(), new Set(vips.map((v) => v.family)))) links.set(l.name, l);
  // Held VIPs keep the routes the kernel has, and with them the objects those lead to.
  const before = previous ?? emptyKernelState();
  const heldRoutes = [...held].flatMap((vip) => before.routes.get(vip) ?? []);
  const nexthops = cache && held.size === 0 && cache.tally.complete ? planNexthopsFor(cache.tally.targets(), before) : planNexthops([...routes.values(), ...heldRoutes], before);
  return {
    state: { links, routes, nexthops, foreignNexthopIds: before.foreignNexthopIds, rules, nft: filter.nft, xt: filter.xt },
    held,
    problems,
    owners,
    hash,
  };
}

interface FlowFilter {
  readonly nft: NftState;
  readonly xt: XtState;
}

/**
 * The policy rules, per family (P = rulePriority, K = groups of RULE_GROUP buckets over
 * the parities):
 *   P        not fwmark MARK_BASE/MARK_MASK goto P+2+K   packets without a VIP mark skip all
 *   P+1      fwmark <group k's first mark>/RULE_GROUP_MASK goto P+2+k
 *   P+2+k    fwmark <bucket mark> lookup <bucket table>   the group's buckets
 *   P+2+K    nop                                          where the gotos land
 */
function planRules(isTunnelNode: boolean, B: number, params: PlanParams, pin: boolean): ReadonlyMap<string, RuleSpec> {
  const rules = new Map<string, RuleSpec>();
  if (!isTunnelNode) return rules;
  const add = (r: RuleSpec): void => void rules.set(ruleKey(r), r);
  const P = params.rulePriority;
  const parities: readonly Parity[] = pin ? [0, 1] : [0];
  const groups = Math.ceil(B / RULE_GROUP);
  const end = P + 2 + parities.length * groups;
  for (const family of [4, 6] as const) {
    add({ family, priority: P, not: true, mark: MARK_BASE, mask: MARK_MASK, action: { goto: end } });
    for (const [n, p] of parities.entries()) {
      for (let g = 0; g < groups; g++) {
        const at = P + 2 + n * groups + g;
        add({ family, priority: P + 1, mark: bucketMark(g * RULE_GROUP, p), mask: RULE_GROUP_MASK, action: { goto: at } });
        for (let i = g * RULE_GROUP; i < Math.min(B, (g + 1) * RULE_GROUP); i++) {
          add({ family, priority: at, mark: bucketMark(i, p), action: { lookup: bucketTable(params.tableBase, i, p) } });
        }
      }
    }
    add({ family, priority: end, action: { nop: true } });
  }
  return rules;
}

/** The nft sets, maps and counters (or the xtables chains) for these VIPs. */
function planFilter(vips: readonly VipPlan[], isTunnelNode: boolean, useXt: boolean, hash: HashParams, parity1: ReadonlySet<string>): FlowFilter {
  if (!isTunnelNode) return { nft: EMPTY_NFT, xt: XT_NONE };
  const elements = new Map<string, Set<string>>();
  const counters = new Set<string>();
  const xtVips: XtVip[] = [];
  const add = (set: string, e: string): void => {
    let s = elements.get(set);
    if (!s) elements.set(set, (s = new Set()));
    s.add(e);
  };
  for (const v of vips) {
    const f = v.family;
    const counter = vipCounterName(v.vip);
    add(nftSets.vips(f), v.vip);
    if (parity1.has(v.vip)) add(nftSets.parity1(f), v.vip);
    counters.add(counter);
    add(nftSets.counters(f), `${v.vip} : ${counter}`);
    const allowed = v.sourceRanges.length ? minimalRanges(v.sourceRanges.filter((r) => familyOf(r) === f)) : [];
    // A /0 allows everyone: same as no restriction (and keeps the interval set simple).
    const restricted = v.sourceRanges.length > 0 && !allowed.some((r) => r.endsWith('/0'));
    if (restricted) {
      add(nftSets.restricted(f), v.vip);
      for (const r of allowed) add(nftSets.allowed(f), `${v.vip} . ${r}`);
    }
    xtVips.push({ vip: v.vip, allowed, restricted });
  }
  if (useXt) {
    return {
      nft: EMPTY_NFT,
      xt: { v4: xtFamily(xtVips.filter((v) => familyOf(v.vip) === 4), hash, 4), v6: xtFamily(xtVips.filter((v) => familyOf(v.vip) === 6), hash, 6) },
    };
  }
  return { nft: { structure: desiredStructure(hash), elements, counters }, xt: XT_NONE };
}

export type PlannedVip =
  | {
      readonly routes: VipRoutes;
      readonly endpoints: readonly string[];
      /** Nexthop texts of every backend this node can reach, draining ones included (pinning). */
      readonly live: VipLiveTargets;
    }
  | { readonly problem: string };

/**
 * A VIP's live targets without a set of its own: the texts its routes lead to (which its
 * packed routes keep anyway) and those of draining backends, usually none. A Set of 100
 * fresh texts per VIP was 11 KB, 110 MB at 10,000 VIPs.
 */
class VipLiveTargets implements LiveTargets {
  constructor(
    private readonly routes: VipRoutes,
    private readonly draining: readonly string[],
  ) {}

  /** The same targets, for routes with the same texts. */
  over(routes: VipRoutes): VipLiveTargets {
    return new VipLiveTargets(routes, this.draining);
  }

  has(nexthop: string): boolean {
    if (this.draining.includes(nexthop)) return true;
    if (this.routes instanceof PackedVipRoutes) return this.routes.nexthops().includes(nexthop);
    for (const r of this.routes.values()) if (r.nexthop === nexthop) return true;
    return false;
  }
}

const NONE: readonly string[] = [];
const NO_ROUTES: PlannedVip = { routes: new Map(), endpoints: [], live: new VipLiveTargets(new Map(), NONE) };

function planVipRoutes(v: VipPlan, desired: DesiredState, driver: EncapDriver, params: PlanParams): PlannedVip {
  const { backends, buckets } = v.table;
  if (buckets.length === 0) return NO_ROUTES;
  if (!driver.families.includes(v.family)) return { problem: `mode ${driver.mode} cannot carry IPv${v.family} VIP ${v.vip}` };
  if (familyOf(v.vip) !== v.family) return { problem: `VIP ${v.vip} is not IPv${v.family}` };
  if (buckets.length !== desired.bucketCount) {
    return { problem: `bucket table of VIP ${v.vip} has ${buckets.length} buckets, expected ${desired.bucketCount}` };
  }
  for (const [i, idx] of buckets.entries()) {
    const b = backends[idx];
    if (!b) return { problem: `bucket ${i} of VIP ${v.vip} points at backend #${idx}, which does not exist` };
    if (familyOf(b.address) !== v.family) return { problem: `backend ${b.address} of VIP ${v.vip} is not IPv${v.family}` };
  }
  // Backends this node may use, in table order; the others' buckets are re-spread over
  // them deterministically (mpls: only local pods are reachable from here).
  const usableIdx = [...new Set(buckets)].sort((a, b) => a - b).filter((idx) => driver.usable(backends[idx]!, desired.node));
  if (usableIdx.length === 0) return NO_ROUTES;
  const usable = new Set(usableIdx);
  const routes = new VipRoutesBuilder(v.family, v.vip);
  const nexthops = new Map<number, string>();
  const endpoints = new Set<string>();
  try {
    for (const [i, idx] of buckets.entries()) {
      const target = usable.has(idx) ? idx : usableIdx[i % usableIdx.length]!;
      const address = backends[target]!.address;
      endpoints.add(address);
      let nexthop = nexthops.get(target);
      if (nexthop === undefined) nexthops.set(target, (nexthop = driver.nexthop(address, v.family)));
      const table = bucketTable(params.tableBase, i);
      routes.set(table, nexthop);
    }
  } catch (err) {
    return { problem: `VIP ${v.vip}: ${err instanceof Error ? err.message : String(err)}` };
  }
  // Draining backends have no bucket but may still have pinned flows.
  let draining: string[] | undefined;
  for (const [idx, b] of backends.entries()) {
    if (nexthops.has(idx) || !driver.usable(b, desired.node) || familyOf(b.address) !== v.family) continue;
    try {
      (draining ??= []).push(driver.nexthop(b.address, v.family));
    } catch {
      // unreachable from here (mpls: its veth is gone): nothing can be pinned to it
    }
  }
  const packed = routes.build();
  return { routes: packed, endpoints: [...endpoints], live: new VipLiveTargets(packed, draining ?? NONE) };
}

/** Endpoints this plan's routes will need (for drivers that look them up first). */
export function endpointsOf(desired: DesiredState, driver: EncapDriver): string[] {
  const out = new Set<string>();
  if (!desired.isTunnelNode) return [];
  for (const v of desired.vips) {
    if (v.kernelMissing !== undefined) continue;
    for (const idx of new Set(v.table.buckets)) {
      const b = v.table.backends[idx];
      if (b && driver.usable(b, desired.node)) out.add(b.address);
    }
  }
  return [...out].sort();
}

// ---------- source ranges ----------

function toBigInt(address: string): bigint {
  if (!address.includes(':')) return address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  const [head, tail] = address.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

interface Range {
  readonly text: string;
  readonly lo: bigint;
  readonly hi: bigint;
}

function range(cidr: string): Range {
  const [addr, lenText] = cidr.split('/') as [string, string | undefined];
  const f: IpFamily = familyOf(addr);
  const bits = f === 4 ? 32 : 128;
  const len = lenText === undefined ? bits : Number(lenText);
  const size = 1n << BigInt(bits - len);
  const lo = (toBigInt(addr) / size) * size;
  // nft prints a host-length prefix as a bare address: use the same canonical form.
  return { text: len === bits ? addr : `${addr}/${len}`, lo, hi: lo + size - 1n };
}

/**
 * Drops prefixes contained in another one: an nft interval set refuses overlaps, and a
 * covered prefix adds nothing to what is allowed.
 */
export function minimalRanges(cidrs: readonly string[]): string[] {
  const rs = [...new Map(cidrs.map((c) => [c, range(c)])).values()].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : a.hi > b.hi ? -1 : 1));
  const out: Range[] = [];
  for (const r of rs) {
    const last = out[out.length - 1];
    if (last && r.lo >= last.lo && r.hi <= last.hi) continue;
    out.push(r);
  }
  return out.map((r) => r.text);
}
