// One VIP's bucket routes in a compact form. A tunnel node with 10,000 VIPs holds 2.56M
// bucket routes per table generation, twice (the plan and what the kernel has); as Maps of
// route objects that was over a gigabyte of heap. Every route of a VIP has the same
// destination and family and leads to one of a few nexthop texts, so a VIP's routes are
// two typed arrays (table, index of the nexthop text) and the list of its distinct texts:
// about 6 bytes a route. Route objects are made on demand (get, iteration); the diff and
// pinning compare them by value, never by identity.
import type { IpFamily } from '../model/types.js';
import { TextPool } from '../system/index.js';
import type { RouteSpec, VipRoutes } from './state.js';

/**
 * Every VIP's routes lead to nexthop texts of the same pods: one copy of each across all
 * VIPs, the plan's and the read-back's (system/intern.ts). Distinct texts are about one per
 * pod and encapsulation; the bound only keeps a pathological cluster from growing it.
 */
const nexthopTexts = new TextPool(200_000);

/**
 * One VIP's routes in about 1.6 KB at 256 buckets (docs/dataplane.md, "In memory"): the
 * tables as runs of consecutive numbers (a plan's are one run per parity), one byte (two
 * past 256 distinct targets) per route naming its nexthop among the VIP's distinct texts,
 * and those texts shared with every other VIP (TextPool). No route object or string is
 * kept per route; one is made when asked for.
 */
export class PackedVipRoutes implements ReadonlyMap<number, RouteSpec> {
  /** Runs of consecutive tables, ascending: first table of each run. */
  private readonly runStart: Int32Array;
  /** Position (in `slots`) of each run's first table; one more entry: the total. */
  private readonly runAt: Int32Array;
  /** Index into `targets` per route, in table order. */
  private readonly slots: Uint8Array | Uint16Array;
  /** The distinct nexthop texts (shared strings). */
  private readonly targets: readonly string[];

  /**
   * `tables` ascending without repeats, `slots[i]` the index in `targets` (shared strings,
   * at most 65,536) of table i's nexthop: what VipRoutesBuilder makes.
   */
  constructor(
    readonly family: IpFamily,
    readonly dst: string,
    tables: Int32Array,
    slots: Uint16Array,
    targets: readonly string[],
  ) {
    let runs = 0;
    for (let i = 0; i < tables.length; i++) if (i === 0 || tables[i] !== tables[i - 1]! + 1) runs += 1;
    this.runStart = new Int32Array(runs);
    this.runAt = new Int32Array(runs + 1);
    for (let i = 0, r = -1; i < tables.length; i++) {
      if (i === 0 || tables[i] !== tables[i - 1]! + 1) {
        r += 1;
        this.runStart[r] = tables[i]!;
        this.runAt[r] = i;
      }
    }
    this.runAt[runs] = tables.length;
    this.slots = targets.length <= 0x100 ? Uint8Array.from(slots) : slots;
    this.targets = targets;
  }

  get size(): number {
    return this.slots.length;
  }

  get [Symbol.toStringTag](): string {
    return 'PackedVipRoutes';
  }

  /** The table of the route at position i. */
  private tableAt(i: number): number {
    let lo = 0;
    let hi = this.runStart.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.runAt[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.runStart[lo]! + (i - this.runAt[lo]!);
  }

  private indexOf(table: number): number {
    let lo = 0;
    let hi = this.runStart.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const start = this.runStart[mid]!;
      if (table < start) hi = mid - 1;
      else if (table - start < this.runAt[mid + 1]! - this.runAt[mid]!) return this.runAt[mid]! + (table - start);
      else lo = mid + 1;
    }
    return -1;
  }

  has(table: number): boolean {
    return this.indexOf(table) >= 0;
  }

  /** The nexthop text of one table's route, without making a route object. */
  nexthopOf(table: number): string | undefined {
    const i = this.indexOf(table);
    return i < 0 ? undefined : this.targets[this.slots[i]!];
  }

  get(table: number): RouteSpec | undefined {
    const i = this.indexOf(table);
    return i < 0 ? undefined : this.at(i);
  }

  /** The distinct nexthop texts these routes lead to. */
  nexthops(): readonly string[] {
    return this.targets;
  }

  private at(i: number): RouteSpec {
    return { family: this.family, table: this.tableAt(i), dst: this.dst, nexthop: this.targets[this.slots[i]!]! };
  }

  /** Calls fn with the table and nexthop text of every route, in table order, making no objects. */
  forEachTarget(fn: (table: number, nexthop: string) => void): void {
    for (let r = 0; r < this.runStart.length; r++) {
      for (let i = this.runAt[r]!; i < this.runAt[r + 1]!; i++) fn(this.runStart[r]! + (i - this.runAt[r]!), this.targets[this.slots[i]!]!);
    }
  }

  forEach(fn: (value: RouteSpec, key: number, map: ReadonlyMap<number, RouteSpec>) => void, thisArg?: unknown): void {
    for (const [table, route] of this.entries()) fn.call(thisArg, route, table, this);
  }

  *entries(): MapIterator<[number, RouteSpec]> {
    for (let r = 0; r < this.runStart.length; r++) {
      for (let i = this.runAt[r]!; i < this.runAt[r + 1]!; i++) {
        const table = this.runStart[r]! + (i - this.runAt[r]!);
        yield [table, { family: this.family, table, dst: this.dst, nexthop: this.targets[this.slots[i]!]! }];
      }
    }
  }

  *keys(): MapIterator<number> {
    for (let r = 0; r < this.runStart.length; r++) for (let i = this.runAt[r]!; i < this.runAt[r + 1]!; i++) yield this.runStart[r]! + (i - this.runAt[r]!);
  }

  *values(): MapIterator<RouteSpec> {
    for (const [, route] of this.entries()) yield route;
  }

  [Symbol.iterator](): MapIterator<[number, RouteSpec]> {
    return this.entries();
  }
}

/**
 * Collects one VIP's routes (table -> nexthop text) and packs them. Routes of another
 * destination or family than the first are refused: they belong to another VIP. Kept
 * compact while collecting (a readback collects every VIP's routes at once, in table
 * order): a table and a slot per route, each text interned on arrival so the parser's
 * copy is dropped at once. A table set twice keeps the last text, as a Map would.
 */
export class VipRoutesBuilder {
  private tables = new Int32Array(8);
  private slots = new Uint16Array(8);
  private count = 0;
  private ascending = true;
  private readonly index = new Map<string, number>();
  private readonly targets: string[] = [];
  constructor(
    readonly family: IpFamily,
    readonly dst: string,
  ) {}

  /** Distinct tables set so far. */
  get size(): number {
    return this.ascending ? this.count : new Set(this.tables.subarray(0, this.count)).size;
  }

  set(table: number, nexthop: string): this {
    let k = this.index.get(nexthop);
    if (k === undefined) {
      k = this.targets.length;
      if (k > 0xffff) throw new Error(`VIP ${this.dst}: more than 65,536 distinct nexthops`);
      const shared = nexthopTexts.intern(nexthop);
      this.index.set(shared, k);
      this.targets.push(shared);
    }
    if (this.count === this.tables.length) {
      const tables = new Int32Array(this.count * 2);
      tables.set(this.tables);
      this.tables = tables;
      const slots = new Uint16Array(this.count * 2);
      slots.set(this.slots);
      this.slots = slots;
    }
    if (this.count > 0 && table <= this.tables[this.count - 1]!) this.ascending = false;
    this.tables[this.count] = table;
    this.slots[this.count] = k;
    this.count += 1;
    return this;
  }

  add(route: RouteSpec): this {
    if (route.dst !== this.dst || route.family !== this.family) throw new Error(`route to ${route.dst} (IPv${route.family}) added to the routes of ${this.dst}`);
    return this.set(route.table, route.nexthop);
  }

  build(): PackedVipRoutes {
    let tables = this.tables.subarray(0, this.count);
    let slots = this.slots.subarray(0, this.count);
    if (!this.ascending) {
      // Sorted by table, the later of two routes to one table winning (a stable sort).
      const order = Array.from({ length: this.count }, (_, i) => i).sort((a, b) => tables[a]! - tables[b]! || a - b);
      const keep = order.filter((i, at) => at === order.length - 1 || tables[order[at + 1]!] !== tables[i]);
      tables = Int32Array.from(keep, (i) => tables[i]!);
      slots = Uint16Array.from(keep, (i) => slots[i]!);
    }
    // Texts no kept route uses (overwritten ones) are dropped, slots renumbered.
    const used = new Int32Array(this.targets.length).fill(-1);
    const targets: string[] = [];
    const packed = new Uint16Array(slots.length);
    for (let i = 0; i < slots.length; i++) {
      let k = used[slots[i]!]!;
      if (k < 0) {
        k = used[slots[i]!] = targets.length;
        targets.push(this.targets[slots[i]!]!);
      }
      packed[i] = k;
    }
    return new PackedVipRoutes(this.family, this.dst, Int32Array.from(tables), packed, targets);
  }
}

/** The nexthop text of one table's route in any VipRoutes (packed: without an allocation). */
export function nexthopAt(routes: VipRoutes | undefined, table: number): string | undefined {
  if (routes === undefined) return undefined;
  return routes instanceof PackedVipRoutes ? routes.nexthopOf(table) : routes.get(table)?.nexthop;
}

/** A VipRoutes as a packed one (route maps made by hand, e.g. in tests, stay usable). */
export function packRoutes(routes: VipRoutes): VipRoutes {
  if (routes instanceof PackedVipRoutes || routes.size === 0) return routes;
  let b: VipRoutesBuilder | undefined;
  for (const r of routes.values()) (b ??= new VipRoutesBuilder(r.family, r.dst)).add(r);
  return b!.build();
}
