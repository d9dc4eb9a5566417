// Pure: the nexthop objects a plan needs and their ids. Bucket routes lead to nexthop
// objects (`nhid`) rather than carrying their own nexthop: the kernel then shares one
// nexthop (and one encap state) among every route to an endpoint, so a route change does
// not compare itself with every other route on the device (docs/dataplane.md, "Nexthop
// objects"). One object per distinct target (family + canonical text); an object keeps
// its id while routes use it, a new one takes the lowest free id of the project's range.
import { NEXTHOP_ID_BASE, NEXTHOP_ID_SPAN } from './layout.js';
import type { IpFamily } from '../model/types.js';
import { PackedVipRoutes } from './vip-routes.js';
import { INLINE_SUFFIX, nexthopKey, type KernelState, type NexthopSpec, type VipRoutes } from './state.js';

/**
 * The object routes with a given text should lead to: the lowest owned id with that text
 * (a crashed run may have left duplicates; they are replaced, then deleted).
 */
export function canonicalIds(nexthops: Iterable<NexthopSpec>): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of nexthops) {
    const key = nexthopKey(n.family, n.spec);
    const have = out.get(key);
    if (have === undefined || n.id < have) out.set(key, n.id);
  }
  return out;
}

/** id -> text of the canonical objects: how a readback route leading to one is described. */
export function canonicalTexts(nexthops: Iterable<NexthopSpec>): Map<number, string> {
  const all = [...nexthops];
  const ids = new Set(canonicalIds(all).values());
  return new Map(all.filter((n) => ids.has(n.id)).map((n) => [n.id, n.spec]));
}

/** A readback route that leads to a non-canonical object reads "nhid N" (parseRoutes). */
const NON_CANONICAL = /^nhid (\d+)$/;

interface Targets {
  /** key -> target, for the routes' canonical texts. */
  readonly wanted: ReadonlyMap<string, Omit<NexthopSpec, 'id'>>;
  /** Objects a held VIP's routes lead to that are not canonical: kept as they are. */
  readonly kept: readonly number[];
}

// A VIP's routes are immutable and reused while it is unchanged, so its targets are
// computed once per VipRoutes object: re-planning 1,000 VIPs costs 1,000 lookups.
const targetsMemo = new WeakMap<VipRoutes, Targets>();

function targetsOf(routes: VipRoutes): Targets {
  let t = targetsMemo.get(routes);
  if (t) return t;
  const wanted = new Map<string, Omit<NexthopSpec, 'id'>>();
  const kept: number[] = [];
  // Packed routes know their few distinct texts: no pass over every route.
  const texts: Iterable<{ readonly family: IpFamily; readonly nexthop: string }> =
    routes instanceof PackedVipRoutes ? routes.nexthops().map((nexthop) => ({ family: routes.family, nexthop })) : routes.values();
  for (const r of texts) {
    const nonCanonical = NON_CANONICAL.exec(r.nexthop);
    if (nonCanonical) kept.push(Number(nonCanonical[1]));
    else if (!r.nexthop.endsWith(INLINE_SUFFIX)) wanted.set(nexthopKey(r.family, r.nexthop), { family: r.family, spec: r.nexthop });
  }
  t = { wanted, kept };
  targetsMemo.set(routes, t);
  return t;
}

const canonicalMemo = new WeakMap<ReadonlyMap<number, NexthopSpec>, Map<string, number>>();

function canonicalOf(nexthops: ReadonlyMap<number, NexthopSpec>): Map<string, number> {
  let c = canonicalMemo.get(nexthops);
  if (!c) canonicalMemo.set(nexthops, (c = canonicalIds(nexthops.values())));
  return c;
}

/**
 * The nexthop objects the given routes lead to (the plan's routes, plus the kernel's
 * routes of VIPs it holds as they are). `previous`: what the kernel has now; its objects
 * keep their ids, and ids it uses (ours or not) are never handed out again.
 */
export function planNexthops(routes: Iterable<VipRoutes>, previous: Pick<KernelState, 'nexthops' | 'foreignNexthopIds'>): Map<number, NexthopSpec> {
  const canonical = canonicalOf(previous.nexthops);
  const out = new Map<number, NexthopSpec>();
  const fresh = new Map<string, Omit<NexthopSpec, 'id'>>();
  for (const vipRoutes of routes) {
    const t = targetsOf(vipRoutes);
    for (const id of t.kept) {
      const have = previous.nexthops.get(id);
      if (have) out.set(id, have);
    }
    for (const [key, target] of t.wanted) {
      const id = canonical.get(key);
      if (id === undefined) fresh.set(key, target);
      else if (!out.has(id)) out.set(id, previous.nexthops.get(id)!);
    }
  }
  return withFreshIds(out, fresh.values(), previous);
}

/**
 * planNexthops for targets already collected (each distinct target once), as a
 * NexthopTally keeps them: the cost is one lookup per target, not one per route.
 */
export function planNexthopsFor(wanted: Iterable<readonly [string, Omit<NexthopSpec, 'id'>]>, previous: Pick<KernelState, 'nexthops' | 'foreignNexthopIds'>): Map<number, NexthopSpec> {
  const canonical = canonicalOf(previous.nexthops);
  const out = new Map<number, NexthopSpec>();
  const fresh: Omit<NexthopSpec, 'id'>[] = [];
  for (const [key, target] of wanted) {
    const id = canonical.get(key);
    if (id === undefined) fresh.push(target);
    else if (!out.has(id)) out.set(id, previous.nexthops.get(id)!);
  }
  return withFreshIds(out, fresh, previous);
}

/** New objects take the lowest ids that neither `out` nor the kernel (ours or not) uses. */
function withFreshIds(out: Map<number, NexthopSpec>, fresh: Iterable<Omit<NexthopSpec, 'id'>>, previous: Pick<KernelState, 'nexthops' | 'foreignNexthopIds'>): Map<number, NexthopSpec> {
  let next = NEXTHOP_ID_BASE;
  const taken = (id: number): boolean => previous.nexthops.has(id) || previous.foreignNexthopIds.has(id) || out.has(id);
  for (const target of fresh) {
    while (taken(next)) next += 1;
    if (next >= NEXTHOP_ID_BASE + NEXTHOP_ID_SPAN) {
      throw new Error(`more than ${NEXTHOP_ID_SPAN} nexthop objects needed: the project's nexthop id range is full`);
    }
    out.set(next, { id: next, ...target });
    next += 1;
  }
  return out;
}

/**
 * What the bucket routes of every VIP need, counted, and kept up to date VIP by VIP: the
 * endpoints (links) and the nexthop targets. A change of one VIP costs its own routes,
 * not a pass over every route of every VIP. Only VIPs whose objects changed are looked at
 * (plans and routes are reused objects while unchanged, see RoutePlanCache).
 * Counts are kept per distinct text (shared strings, vip-routes.ts), nothing per VIP but
 * its contribution: a Map of targets per VIP was 15 KB, 150 MB at 10,000 VIPs.
 */
export class NexthopTally {
  private readonly perVip = new Map<string, Contribution>();
  private readonly endpointCounts = new Map<string, number>();
  /** Per family: canonical text -> routes' VIPs leading to it. */
  private readonly targetCounts = { 4: new Map<string, number>(), 6: new Map<string, number>() };
  private sortedEndpoints?: string[];
  /** False when a route leads to an object by id only (a held VIP's readback): use planNexthops. */
  private nonCanonical = 0;
  private version = 0;

  /** Sets the VIPs' current contributions; VIPs not in `current` are removed. */
  update(current: ReadonlyMap<string, Contribution>): void {
    for (const [vip, was] of this.perVip) {
      const now = current.get(vip);
      if (now?.endpoints === was.endpoints && now.routes === was.routes) continue;
      this.remove(was);
      if (now) this.add(now);
      if (now) this.perVip.set(vip, now);
      else this.perVip.delete(vip);
    }
    for (const [vip, now] of current) {
      if (this.perVip.has(vip)) continue;
      this.add(now);
      this.perVip.set(vip, now);
    }
  }

  /**
   * Sets one VIP's contribution (undefined: it has none), as update() would with only that
   * VIP changed: what an incremental plan (plan-change.ts) uses.
   */
  set(vip: string, now: Contribution | undefined): void {
    const was = this.perVip.get(vip);
    if (was && now?.endpoints === was.endpoints && now.routes === was.routes) return;
    if (was) this.remove(was);
    if (now) {
      this.add(now);
      this.perVip.set(vip, now);
    } else this.perVip.delete(vip);
  }

  /** Changes whenever a nexthop target is first needed or no longer needed. */
  get targetsVersion(): number {
    return this.version;
  }

  get complete(): boolean {
    return this.nonCanonical === 0;
  }

  endpoints(): readonly string[] {
    this.sortedEndpoints ??= [...this.endpointCounts.keys()].sort();
    return this.sortedEndpoints;
  }

  targets(): Iterable<readonly [string, Omit<NexthopSpec, 'id'>]> {
    const out: (readonly [string, Omit<NexthopSpec, 'id'>])[] = [];
    for (const family of [4, 6] as const) for (const spec of this.targetCounts[family].keys()) out.push([nexthopKey(family, spec), { family, spec }]);
    return out;
  }

  private add(c: Contribution): void {
    for (const e of c.endpoints) {
      const n = this.endpointCounts.get(e) ?? 0;
      if (n === 0) this.sortedEndpoints = undefined;
      this.endpointCounts.set(e, n + 1);
    }
    forEachTarget(c.routes, (family, text) => {
      if (NON_CANONICAL.test(text)) return void (this.nonCanonical += 1);
      if (text.endsWith(INLINE_SUFFIX)) return;
      const counts = this.targetCounts[family];
      const n = counts.get(text) ?? 0;
      counts.set(text, n + 1);
      if (n === 0) this.version += 1;
    });
  }

  private remove(c: Contribution): void {
    for (const e of c.endpoints) {
      const n = (this.endpointCounts.get(e) ?? 1) - 1;
      if (n > 0) this.endpointCounts.set(e, n);
      else {
        this.endpointCounts.delete(e);
        this.sortedEndpoints = undefined;
      }
    }
    forEachTarget(c.routes, (family, text) => {
      if (NON_CANONICAL.test(text)) return void (this.nonCanonical -= 1);
      if (text.endsWith(INLINE_SUFFIX)) return;
      const counts = this.targetCounts[family];
      const n = (counts.get(text) ?? 1) - 1;
      if (n > 0) counts.set(text, n);
      else if (counts.delete(text)) this.version += 1;
    });
  }
}

/** One VIP's share of a NexthopTally. */
export interface Contribution {
  readonly endpoints: readonly string[];
  readonly routes: VipRoutes;
}

/** Each distinct nexthop text of a VIP's routes once (packed routes know theirs). */
function forEachTarget(routes: VipRoutes, fn: (family: IpFamily, text: string) => void): void {
  if (routes instanceof PackedVipRoutes) {
    for (const text of routes.nexthops()) fn(routes.family, text);
    return;
  }
  const seen = new Set<string>();
  for (const r of routes.values()) {
    const key = nexthopKey(r.family, r.nexthop);
    if (seen.has(key)) continue;
    seen.add(key);
    fn(r.family, r.nexthop);
  }
}

/** key -> id of a planned state's objects (the diff writes routes with these ids). */
export function idsByKey(nexthops: ReadonlyMap<number, NexthopSpec>): Map<string, number> {
  return canonicalOf(nexthops);
}
