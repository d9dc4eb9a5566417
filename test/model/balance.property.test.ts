// Balance is an invariant (issue 15): after ANY sequence of endpoint events, every ready,
// non-draining backend of a VIP owns floor(B/N) or ceil(B/N) of its B buckets, and a
// table computed from a stored one moves exactly the fewest buckets that make it so.
//
// The bug this guards: a drained endpoint that came back kept 0 buckets forever, because
// a stored table whose backend list was unchanged and that had no bucket on a draining
// backend was used as is, however unbalanced (the lab demo's second run failed on it).
//
// A run is one random sequence of events (add, remove, drain, undrain, readiness flap,
// agent restart, bucket count change with a restart), each followed, or not when the
// writer lags, by the elected writer storing the tables as annotation text, which every
// later step parses back (the stored-table format round-trips on every step). Two engines
// compute the tables, with the same world and the same checks:
// - the core: tableFromStored / buildBucketTable, as IncrementalModel.tableFor calls them,
//   with the writer's rules (an empty table keeps its stored entry): 10,000 sequences;
// - the agent's own path: an IncrementalModel fed whole snapshots with replaceAll
//   (unchanged objects keep their identity, as kube/snapshot.ts hands them), the real
//   planTableWrites, and restarts as new models: 1,000 sequences (10x the cost per step,
//   most of it resolving VIPs again after every annotation write).
// Stored tables on and off. BALANCE_SEED replays a run fast-check reported; BALANCE_RUNS
// changes the number of core sequences (the agent path runs a tenth of it).
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { planTableWrites } from '../../src/kube/table-writer.js';
import {
  IncrementalModel,
  buildBucketTable,
  formatStoredTables,
  movedBuckets,
  parseStoredTables,
  storedTablesKey,
  tableFromStored,
  toStoredTable,
  type Backend,
  type BucketIndices,
  type BucketTable,
  type EndpointInput,
  type EndpointSliceInput,
  type IpAddress,
  type ServiceInput,
  type StoredTable,
} from '../../src/model/index.js';
import { cluster, ep, settings, slice, tunnelService } from './helpers.js';

const ANNOTATION = 'cmd.nu/tunnel';
const TABLES = storedTablesKey(ANNOTATION);
const SEED = settings().hashSeed;
/** Endpoint ids per Service: few enough that adds, removes and re-adds of the same pod are common. */
const IDS = 10;
/**
 * Bucket counts the configuration allows (1..4096), weighted towards the small ones that
 * keep 10,000 runs fast and make N > B common; the default 256 in one run of ten. Larger
 * ones come with a configuration change (`reconfigure`), rarely: they cost the most.
 */
const bucketCounts = fc.oneof(
  { arbitrary: fc.constantFrom(1, 2, 3, 4, 5, 7, 8, 13, 16), weight: 6 },
  { arbitrary: fc.constantFrom(31, 64, 97), weight: 3 },
  { arbitrary: fc.constant(256), weight: 1 },
);
const reconfiguredBucketCounts = fc.oneof({ arbitrary: bucketCounts, weight: 9 }, { arbitrary: fc.constantFrom(1024, 4096), weight: 1 });

/**
 * Two Services: `a` with one VIP, `b` with two VIPs over the same pods (one annotation
 * holds both tables). IPv4 only: the tables do not depend on the family.
 */
const SERVICES = [
  { name: 'a', vips: ['203.0.113.20' as IpAddress] },
  { name: 'b', vips: ['203.0.113.21' as IpAddress, '203.0.113.22' as IpAddress] },
] as const;

type Condition = 'absent' | 'ready' | 'draining' | 'unready';
type Op = 'add' | 'remove' | 'drain' | 'undrain' | 'flap' | 'restart' | 'reconfigure';

interface Step {
  readonly op: Op;
  readonly svc: number;
  readonly id: number;
  /** The leader stores the result before the next step (false: its write lags). */
  readonly write: boolean;
  /** The new bucket count of a `reconfigure`. */
  readonly buckets: number;
}

interface Run {
  readonly storedTables: boolean;
  readonly buckets: number;
  readonly initial: readonly (readonly number[])[];
  readonly steps: readonly Step[];
}

const step: fc.Arbitrary<Step> = fc.record({
  op: fc.oneof(
    { arbitrary: fc.constantFrom<Op>('add', 'remove', 'drain', 'undrain', 'flap'), weight: 12 },
    { arbitrary: fc.constant<Op>('restart'), weight: 2 },
    { arbitrary: fc.constant<Op>('reconfigure'), weight: 1 },
  ),
  svc: fc.integer({ min: 0, max: SERVICES.length - 1 }),
  id: fc.integer({ min: 1, max: IDS }),
  write: fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 }),
  buckets: reconfiguredBucketCounts,
});

const runs: fc.Arbitrary<Run> = fc.record({
  storedTables: fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 }),
  buckets: bucketCounts,
  initial: fc.tuple(...SERVICES.map(() => fc.uniqueArray(fc.integer({ min: 1, max: IDS }), { maxLength: 6 }))),
  steps: fc.array(step, { minLength: 1, maxLength: 10 }),
});

const address = (svc: number, id: number): IpAddress => `198.51.100.${svc * 64 + id}` as IpAddress;

/** The next condition of an endpoint after `op` (unchanged when the op does not apply). */
function next(op: Op, c: Condition): Condition {
  switch (op) {
    case 'add':
      return c === 'absent' ? 'ready' : c;
    case 'remove':
      return 'absent';
    case 'drain':
      return c === 'ready' ? 'draining' : c;
    case 'undrain':
      return c === 'draining' ? 'ready' : c;
    case 'flap':
      return c === 'ready' ? 'unready' : c === 'unready' ? 'ready' : c;
    default:
      return c;
  }
}

/** What both engines share: the endpoints' conditions and each Service's annotation text. */
class World {
  readonly conditions = SERVICES.map(() => new Map<number, Condition>());
  readonly annotations: (string | undefined)[] = SERVICES.map(() => undefined);
  private readonly parsed = new Map<string, ReadonlyMap<IpAddress, StoredTable>>();

  constructor(initial: readonly (readonly number[])[]) {
    initial.forEach((ids, svc) => ids.forEach((id) => this.conditions[svc]!.set(id, 'ready')));
  }

  /** Ready and draining endpoints as the model's backends: sorted by address, draining flagged. */
  backends(svc: number): Backend[] {
    return [...this.conditions[svc]!]
      .filter(([, c]) => c === 'ready' || c === 'draining')
      .map(([id, c]) => ({ address: address(svc, id), draining: c === 'draining' }))
      .sort((x, y) => (x.address < y.address ? -1 : x.address > y.address ? 1 : 0));
  }

  /** The stored table of a VIP of Service `svc`, parsed back from the annotation text. */
  stored(svc: number, vip: IpAddress): StoredTable | undefined {
    const text = this.annotations[svc];
    if (text === undefined) return undefined;
    let tables = this.parsed.get(text);
    if (!tables) {
      const r = parseStoredTables(text);
      must(r.errors.length === 0, () => `the writer stored an annotation that does not parse: ${r.errors.join('; ')}`);
      this.parsed.set(text, (tables = r.tables));
    }
    return tables.get(vip);
  }
}

/** Computes every VIP's table from the world; stores them as the elected writer would. */
interface Engine {
  tables(): ReadonlyMap<IpAddress, BucketTable>;
  store(): void;
  restart(buckets: number): void;
}

/** The pure core, called as IncrementalModel.tableFor calls it; the writer's rules in a few lines. */
class CoreEngine implements Engine {
  private last = new Map<IpAddress, BucketTable>();

  constructor(
    private readonly world: World,
    private readonly storedTables: boolean,
    private buckets: number,
  ) {}

  /** Per VIP, the inputs of its last table: like IncrementalModel, compute again only when they change. */
  private readonly inputs = new Map<IpAddress, { readonly key: string; readonly stored: StoredTable | undefined; readonly table: BucketTable }>();

  tables(): ReadonlyMap<IpAddress, BucketTable> {
    const params = { bucketCount: this.buckets, seed: SEED };
    this.last = new Map();
    SERVICES.forEach((s, svc) => {
      const backends = this.world.backends(svc);
      const key = `${this.buckets}|${backendsKey(backends)}`;
      for (const vip of s.vips) {
        const stored = this.storedTables ? this.world.stored(svc, vip) : undefined;
        const hit = this.inputs.get(vip);
        if (hit?.key === key && hit.stored === stored) {
          this.last.set(vip, hit.table);
          continue;
        }
        const table = stored ? tableFromStored(stored, backends, params) : buildBucketTable(backends, params, true);
        this.inputs.set(vip, { key, stored, table });
        this.last.set(vip, table);
      }
    });
    return this.last;
  }

  /** planTableWrites' rules: a VIP whose table is empty keeps its stored entry. */
  store(): void {
    if (!this.storedTables) return;
    SERVICES.forEach((s, svc) => {
      const entries = new Map<IpAddress, StoredTable>();
      for (const vip of s.vips) {
        const t = this.last.get(vip)!;
        const kept = t.buckets.length > 0 ? toStoredTable(t) : this.world.stored(svc, vip);
        if (kept) entries.set(vip, kept);
      }
      this.world.annotations[svc] = entries.size > 0 ? formatStoredTables(entries) : undefined;
    });
  }

  restart(buckets: number): void {
    this.buckets = buckets;
  }
}

/** The agent's path: IncrementalModel.replaceAll + desiredState, planTableWrites, new models on restart. */
class AgentEngine implements Engine {
  private model: IncrementalModel;
  private services: ServiceInput[];
  private slices: EndpointSliceInput[][];
  private desired: ReturnType<IncrementalModel['desiredState']> | undefined;
  private conditionsSeen: string[];

  constructor(
    private readonly world: World,
    private readonly storedTables: boolean,
    buckets: number,
  ) {
    this.model = this.start(buckets);
    this.services = SERVICES.map((s) => tunnelService(s.name, s.vips.join(',')));
    this.conditionsSeen = SERVICES.map(() => '');
    this.slices = SERVICES.map(() => []);
  }

  private start(buckets: number): IncrementalModel {
    // IPv4 pools only: parsing the default IPv6 pool on every VIP resolution would dominate the run time.
    const pools = settings().pools.map((p) => ({ ...p, cidrs: p.cidrs.filter((c) => !c.includes(':')) }));
    return new IncrementalModel(settings({ buckets, pools }), 'tunnel-1', { storedTables: this.storedTables });
  }

  /** New objects only for what changed, as the snapshot assembler hands them. */
  private sync(): void {
    SERVICES.forEach((s, svc) => {
      const service = this.services[svc]!;
      const text = this.world.annotations[svc];
      if (service.annotations[TABLES] !== text) {
        const annotations: Record<string, string> = { [ANNOTATION]: s.vips.join(',') };
        if (text !== undefined) annotations[TABLES] = text;
        this.services[svc] = { ...service, annotations };
      }
      const present = [...this.world.conditions[svc]!].filter(([, c]) => c !== 'absent').sort(([x], [y]) => x - y);
      const seen = JSON.stringify(present);
      if (seen !== this.conditionsSeen[svc]) {
        this.conditionsSeen[svc] = seen;
        this.slices[svc] = [slice(s.name, present.map(([id, c]) => endpoint(address(svc, id), c)), { name: `${s.name}-v4`, addressType: 'IPv4' })];
      }
    });
  }

  tables(): ReadonlyMap<IpAddress, BucketTable> {
    this.sync();
    // Fresh lists every time (replaceAll compares the previous snapshot's lists by identity), same objects in them.
    this.desired = this.model.replaceAll({ services: [...this.services], endpointSlices: this.slices.flat(), nodes: cluster, localPods: [] }).desiredState();
    must(this.desired.problems.length === 0, () => `problems: ${JSON.stringify(this.desired!.problems)}`);
    return new Map(this.desired.vips.map((p) => [p.vip, p.table]));
  }

  store(): void {
    if (!this.storedTables || !this.desired) return;
    for (const w of planTableWrites(this.desired, this.services, ANNOTATION)) {
      this.world.annotations[SERVICES.findIndex((s) => s.name === w.name)] = w.value ?? undefined;
    }
  }

  restart(buckets: number): void {
    this.model = this.start(buckets);
  }
}

function endpoint(addr: IpAddress, c: Condition): EndpointInput {
  const conditions = { ready: { ready: true, serving: true, terminating: false }, draining: { ready: false, serving: true, terminating: true }, unready: { ready: false, serving: false, terminating: false } };
  return ep(addr, 'worker-1', c === 'absent' ? {} : conditions[c]);
}

/** A failed check: plain throws, because the hot loop runs about 100,000 times (jest's expect costs ~10x). */
function must(ok: boolean, why: () => string): void {
  if (!ok) throw new Error(why());
}

function sameList<T>(a: ArrayLike<T>, b: ArrayLike<T>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const activeAddresses = (t: BucketTable): string[] => t.backends.filter((b) => !b.draining).map((b) => b.address);

/** Buckets per active backend of `t`, in backend order. */
function activeCounts(t: BucketTable): number[] {
  const counts = new Array<number>(t.backends.length).fill(0);
  for (const i of t.buckets) counts[i]!++;
  return counts.filter((_, i) => !t.backends[i]!.draining);
}

/**
 * The fewest buckets any balanced table over `active` can differ from `from` in (exact,
 * computed independently of rebalance): every bucket of a backend that is not active
 * must move, and of the active ones' buckets, the surplus over their quotas, where the
 * ceil(B/N) quotas go to the backends holding the most (any other choice moves more).
 */
function fewestMoves(from: StoredTable, active: readonly string[], bucketCount: number): number {
  const n = active.length;
  const slot = new Map(active.map((a, k) => [a, k]));
  const slotOf = from.backends.map((a) => slot.get(a) ?? -1);
  const counts = new Array<number>(n).fill(0);
  let orphans = 0;
  for (const i of from.buckets) {
    const k = slotOf[i]!;
    if (k < 0) orphans++;
    else counts[k]!++;
  }
  counts.sort((x, y) => y - x);
  const base = Math.floor(bucketCount / n);
  const extra = bucketCount % n;
  return orphans + counts.reduce((sum, c, r) => sum + Math.max(0, c - (r < extra ? base + 1 : base)), 0);
}

const backendsKey = (backends: readonly Backend[]): string => backends.map((b) => `${b.address}${b.draining ? '~' : ''}`).join(',');

/** Maglev tables by bucket count and backends (they depend on nothing else): the check's reference, computed once. */
const maglevTables = new Map<string, BucketIndices>();
function maglev(backends: readonly Backend[], bucketCount: number): BucketIndices {
  const key = `${bucketCount}|${backendsKey(backends)}`;
  let buckets = maglevTables.get(key);
  if (!buckets) maglevTables.set(key, (buckets = buildBucketTable(backends, { bucketCount, seed: SEED }, true).buckets));
  return buckets;
}

const asTable = (s: StoredTable): BucketTable => ({ backends: s.backends.map((address) => ({ address: address as IpAddress, draining: false })), buckets: s.buckets, generation: s.generation });

interface Context {
  readonly run: Run;
  readonly world: World;
  readonly buckets: number;
  readonly step: Step | undefined;
  /** The tables after the previous step, and whether each was then stored (the per-event bounds need it). */
  readonly previous: ReadonlyMap<IpAddress, Checked & { readonly stored: boolean }>;
  /** On a restart: what the agent computed just before it. */
  readonly beforeRestart: ReadonlyMap<IpAddress, BucketTable> | undefined;
}

/** A VIP's table and the inputs it was checked against. */
interface Checked {
  readonly table: BucketTable;
  readonly inputs: string;
  readonly storedRead: StoredTable | undefined;
}

/** Every check on one VIP's table. */
function checkTable(ctx: Context, svc: number, vip: IpAddress, t: BucketTable): Checked {
  const { buckets, step: s } = ctx;
  const at = `${vip} (B = ${buckets})`;
  const stored = ctx.run.storedTables ? ctx.world.stored(svc, vip) : undefined;
  const wanted = ctx.world.backends(svc);
  const inputs = `${buckets}|${backendsKey(wanted)}`;
  const checked = { table: t, inputs, storedRead: stored };
  // The very table already checked against the very same inputs: every conclusion below
  // would be the same (and, since it did not change, it moved nothing).
  const before = ctx.previous.get(vip);
  if (before?.table === t && before.inputs === inputs && before.storedRead === stored && !ctx.beforeRestart) return checked;
  // The backends: ready and draining endpoints, sorted, flagged.
  const want = wanted.map((b) => `${b.address}${b.draining ? ' draining' : ''}`);
  const got = t.backends.map((b) => `${b.address}${b.draining ? ' draining' : ''}`);
  must(sameList(got, want), () => `${at}: backends ${got.join(', ')}, want ${want.join(', ')}`);
  // Fair share: floor or ceil of B/N for every active backend; draining ones own nothing.
  const active = activeAddresses(t);
  const n = active.length;
  if (n === 0) {
    must(t.buckets.length === 0, () => `${at}: no active backend but ${t.buckets.length} buckets`);
  } else {
    must(t.buckets.length === buckets, () => `${at}: ${t.buckets.length} buckets`);
    const shares = activeCounts(t);
    must(shares.every((c) => c >= Math.floor(buckets / n) && c <= Math.ceil(buckets / n)), () => `${at}: active backends own ${shares.join('/')} buckets, not floor/ceil(${buckets}/${n})`);
    must(shares.reduce((x, y) => x + y, 0) === buckets, () => `${at}: a draining backend owns a bucket`);
  }
  if (!stored || n === 0) {
    // History-free: the table every node computes from the same backends (Maglev).
    if (n > 0) must(sameList(t.buckets, maglev(t.backends, buckets)), () => `${at}: not the Maglev table`);
    if (!stored) must(t.generation === 0, () => `${at}: generation ${t.generation} without a stored table`);
  } else if (stored.buckets.length === buckets) {
    // From a stored table: exactly the fewest moves that make it balanced, and a new
    // generation exactly when some bucket changed owner.
    const moved = movedBuckets(asTable(stored), t);
    const fewest = fewestMoves(stored, active, buckets);
    must(moved === fewest, () => `${at}: ${moved} buckets moved from the stored table, the fewest possible is ${fewest}`);
    must(t.generation === stored.generation + (moved > 0 ? 1 : 0), () => `${at}: generation ${t.generation} from stored ${stored.generation}, ${moved} moved`);
    // Per event, when the previous table had been stored: the closed-form bounds. A restart
    // moves nothing; one backend joining moves at most its share, ceil(B/n); one leaving,
    // at most the buckets it had, ceil(B/m); anything else (an event on another Service,
    // draining a gone endpoint...) moves nothing.
    if (s && before?.stored && before.table.buckets.length === buckets) {
      const delta = movedBuckets(before.table, t);
      const m = activeAddresses(before.table).length;
      const bound = s.op === 'restart' ? 0 : n > m ? Math.ceil(buckets / n) : n < m ? Math.ceil(buckets / m) : 0;
      must(delta <= bound, () => `${at}: ${s.op} moved ${delta} buckets (${m} -> ${n} active), at most ${bound} allowed`);
    }
  } else {
    // Another bucket count (configuration changed): a fresh table, a new generation.
    must(t.generation === stored.generation + 1, () => `${at}: generation ${t.generation} after a bucket count change from stored ${stored.generation}`);
  }
  // A restarted agent computes what the long-lived one computed from the same inputs.
  const old = ctx.beforeRestart?.get(vip);
  if (old) {
    must(
      sameList(t.buckets, old.buckets) && t.generation === old.generation && sameList(activeAddresses(t), activeAddresses(old)),
      () => `${at}: the restarted agent's table (generation ${t.generation}) differs from the long-lived one's (${old.generation})`,
    );
  }
  return checked;
}

/** Drives one sequence, checking every VIP's table after the start and after every step. Returns the states checked. */
function drive(run: Run, makeEngine: (world: World, storedTables: boolean, buckets: number) => Engine): number {
  const world = new World(run.initial);
  const engine = makeEngine(world, run.storedTables, run.buckets);
  let buckets = run.buckets;
  let previous: Context['previous'] = new Map();
  let checked = 0;
  const settle = (s: Step | undefined, beforeRestart?: ReadonlyMap<IpAddress, BucketTable>) => {
    const tables = engine.tables();
    const ctx: Context = { run, world, buckets, step: s, previous, beforeRestart };
    const write = s === undefined || s.write;
    const now = new Map<IpAddress, Checked & { readonly stored: boolean }>();
    SERVICES.forEach((x, svc) =>
      x.vips.forEach((vip) => {
        const c = checkTable(ctx, svc, vip, tables.get(vip)!);
        now.set(vip, { ...c, stored: run.storedTables && write && c.table.buckets.length > 0 });
      }),
    );
    if (write) engine.store();
    previous = now;
    checked++;
  };
  settle(undefined);
  for (const s of run.steps) {
    if (s.op === 'restart') {
      // The long-lived agent's view of the current inputs (the writer may just have stored).
      const living = engine.tables();
      engine.restart(buckets);
      settle(s, living);
    } else if (s.op === 'reconfigure') {
      buckets = s.buckets;
      engine.restart(buckets);
      previous = new Map();
      settle(s);
    } else {
      world.conditions[s.svc]!.set(s.id, next(s.op, world.conditions[s.svc]!.get(s.id) ?? 'absent'));
      settle(s);
    }
  }
  return checked;
}

const seed = process.env.BALANCE_SEED === undefined ? undefined : Number(process.env.BALANCE_SEED);
const coreRuns = Number(process.env.BALANCE_RUNS ?? 10_000);
const cpuMs = (since: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(since);
  return Math.round((d.user + d.system) / 1000);
};
const options = (numRuns: number) => ({ numRuns, ...(seed === undefined ? {} : { seed }) });
const core = (w: World, stored: boolean, b: number) => new CoreEngine(w, stored, b);
const agent = (w: World, stored: boolean, b: number) => new AgentEngine(w, stored, b);

describe('balance is an invariant', () => {
  test(`${coreRuns} random event sequences through the core: fair share for every active backend, fewest moves from the stored table`, () => {
    let states = 0;
    const cpu0 = process.cpuUsage();
    fc.assert(
      fc.property(runs, (run) => {
        states += drive(run, core);
      }),
      options(coreRuns),
    );
    // The start and every step (1 to 10) of each run.
    expect(states).toBeGreaterThanOrEqual(2 * coreRuns);
    console.log(`core: ${coreRuns} sequences, ${states} states checked with ${cpuMs(cpu0)} ms of CPU`);
  });

  test(`${Math.ceil(coreRuns / 10)} random event sequences through the agent's path (IncrementalModel, planTableWrites, restarts)`, () => {
    let states = 0;
    const cpu0 = process.cpuUsage();
    fc.assert(
      fc.property(runs, (run) => {
        states += drive(run, agent);
      }),
      options(Math.ceil(coreRuns / 10)),
    );
    expect(states).toBeGreaterThanOrEqual(2 * Math.ceil(coreRuns / 10));
    console.log(`agent path: ${Math.ceil(coreRuns / 10)} sequences, ${states} states checked with ${cpuMs(cpu0)} ms of CPU`);
  });

  test('what `kst lab demo` does, twice, across an agent restart: the drained and restored endpoint gets its share back', () => {
    const s = (op: Op): Step => ({ op, svc: 0, id: 1, write: true, buckets: 256 });
    const run: Run = { storedTables: true, buckets: 256, initial: [[1, 2, 3, 4], []], steps: [s('drain'), s('undrain'), s('restart'), s('drain'), s('undrain')] };
    for (const engine of [core, agent]) expect(drive(run, engine)).toBe(6);
  });
});
