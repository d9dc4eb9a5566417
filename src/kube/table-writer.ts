// The single writer of stored bucket tables (issue 7, docs/stored-tables.md): the Lease
// holder records each Service's computed tables in its `${annotationKey}-tables`
// annotation whenever they differ from what is stored. Every node, the writer included,
// computes its tables from the stored ones (model/stored-table.ts), so storing is what
// makes the next change move the fewest buckets from a table all nodes share.
//
// Never on the data path: `offer()` only records the latest desired state; writes happen
// in background rounds of at most `maxWritesPerRound` Services, one round per
// `roundIntervalMs`, so 10,000 VIPs changing at once become a steady trickle, not a storm.
// The rounds are passes of the agent's one reconcile loop (system/reconcile-loop.ts): a
// round with a conflict or a failed write is retried by the loop with its backoff.
// Each write is a compare-and-swap: read the Service, write only if its annotation is
// still what our table was computed from, with the read resourceVersion as precondition.
// A lagging view or a conflict skips the Service; the next snapshot retries it.
import type { V1Service } from '@kubernetes/client-node';
import { kubeClient, servicePath, type KubeClient, type KubeConnection } from './client/index.js';
import { Counter } from 'prom-client';
import { classifyKubeError, describeKubeError } from './api-error.js';
import { callWithDeadline, KUBE_CALL_DEADLINES_MS } from './deadline.js';
import { annotateService } from './writeback.js';
import { formatStoredTables, modeTraits, parseStoredTables, storedTablesKey, toStoredTable } from '../model/index.js';
import type { DesiredState, IpAddress, ServiceInput, StoredTable } from '../model/index.js';
import { metricsRegistry, silentLogger, type EventSink, type Logger } from '../observe/index.js';
import { ReconcileLoop } from '../system/index.js';

const tableWrites = new Counter({
  name: 'kst_stored_table_writes_total',
  help: 'Stored bucket table annotation writes by outcome (written, removed, stale, conflict, failed, rejected).',
  labelNames: ['outcome'],
  registers: [metricsRegistry],
});

/** One Service's annotation as it should be, and what it was when we computed it. */
export interface TableWrite {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** New annotation text; null removes it (the Service has no VIP any more). */
  readonly value: string | null;
  /** The annotation our tables were computed from (undefined: absent). */
  readonly basedOn: string | undefined;
}

/**
 * The writes that make the stored tables match `desired` (pure). A VIP whose table is
 * empty (no serving endpoint) keeps its stored entry, so endpoints that come back start
 * from where they were. Nothing in mpls mode: there every node hashes its own endpoints.
 */
export function planTableWrites(desired: DesiredState, services: readonly ServiceInput[], annotationKey: string): TableWrite[] {
  return new TableWritePlanner(annotationKey).plan(desired, services);
}

type Plan = DesiredState['vips'][number];

const NO_PLANS: readonly Plan[] = [];

/**
 * planTableWrites, remembered per Service: a Service whose object and VIP plans are the very
 * objects of the last round (the snapshot and the model reuse unchanged ones) costs a few
 * reference comparisons, not a comparison of its stored text with its tables. With 10,000
 * Services, each round after a change of one is then proportional to the Services, with a
 * small constant, instead of comparing 10,000 table texts of a few KB each.
 */
export class TableWritePlanner {
  private readonly key: string;
  private memo = new Map<string, { readonly svc: ServiceInput; readonly plans: readonly Plan[]; readonly write: TableWrite | undefined }>();

  constructor(annotationKey: string) {
    this.key = storedTablesKey(annotationKey);
  }

  plan(desired: DesiredState, services: readonly ServiceInput[]): TableWrite[] {
    if (!modeTraits(desired.mode).sharedTables) return [];
    const byService = new Map<string, Plan[]>();
    for (const plan of desired.vips) {
      const k = `${plan.service.namespace}/${plan.service.name}`;
      const list = byService.get(k);
      if (list) list.push(plan);
      else byService.set(k, [plan]);
    }
    const writes: TableWrite[] = [];
    const memo = new Map<string, { readonly svc: ServiceInput; readonly plans: readonly Plan[]; readonly write: TableWrite | undefined }>();
    for (const svc of services) {
      const k = `${svc.namespace}/${svc.name}`;
      const plans = byService.get(k) ?? NO_PLANS;
      const was = this.memo.get(k);
      const write = was && was.svc === svc && samePlans(was.plans, plans) ? was.write : serviceWrite(svc, plans, this.key);
      memo.set(k, { svc, plans, write });
      if (write) writes.push(write);
    }
    this.memo = memo;
    return writes;
  }
}

/** The same tables for the same VIPs (a VipPlan's other fields do not reach the stored text). */
function samePlans(a: readonly Plan[], b: readonly Plan[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && (a[i]!.table !== b[i]!.table || a[i]!.vip !== b[i]!.vip)) return false;
  return true;
}

/** One Service's write, or undefined when its stored tables are as they should be. */
function serviceWrite(svc: ServiceInput, plans: readonly Plan[], key: string): TableWrite | undefined {
  const current = svc.annotations[key];
  if (plans.length === 0 && current === undefined) return undefined;
  // The common case, one VIP with a table: its text is remembered per table object, so
  // a change recomputes the text of the changed Service only, not of every Service.
  if (plans.length === 1 && plans[0]!.table.buckets.length > 0) {
    const value = singleTableText(plans[0]!);
    if (value !== current) return { namespace: svc.namespace, name: svc.name, uid: svc.uid, value, basedOn: current };
    // Stored as computed: remember the Service's own copy of the text (alive anyway in its
    // annotations) and let ours go: 10,000 Services' tables are ~20 MB of text.
    singleTexts.set(plans[0]!.table, { vip: plans[0]!.vip, text: current });
    return undefined;
  }
  const tables = new Map<IpAddress, StoredTable>();
  let old: ReadonlyMap<IpAddress, StoredTable> | undefined;
  for (const plan of plans) {
    if (plan.table.buckets.length > 0) {
      tables.set(plan.vip, toStoredTable(plan.table));
      continue;
    }
    old ??= current === undefined ? new Map() : parseStoredTables(current).tables;
    const kept = old.get(plan.vip);
    if (kept) tables.set(plan.vip, kept);
  }
  const value = tables.size > 0 ? formatStoredTables(tables) : null;
  return value !== (current ?? null) ? { namespace: svc.namespace, name: svc.name, uid: svc.uid, value, basedOn: current } : undefined;
}

const singleTexts = new WeakMap<DesiredState['vips'][number]['table'], { readonly vip: IpAddress; readonly text: string }>();

function singleTableText(plan: DesiredState['vips'][number]): string {
  const hit = singleTexts.get(plan.table);
  if (hit?.vip === plan.vip) return hit.text;
  const text = formatStoredTables(new Map([[plan.vip, toStoredTable(plan.table)]]));
  singleTexts.set(plan.table, { vip: plan.vip, text });
  return text;
}

export interface TableWriterOptions {
  readonly kubeConfig: KubeConnection;
  /** config.annotationKey; the tables go in `${annotationKey}-tables`. */
  readonly annotationKey: string;
  /** Checked before every write: only the Lease holder writes. */
  readonly isLeader: () => boolean;
  readonly logger?: Logger;
  /** A write the API server rejects (400/403/422) is reported on the Service. */
  readonly events?: EventSink;
  /** Deadline of each read and write (default KUBE_CALL_DEADLINES_MS.read / .write). */
  readonly requestTimeoutMs?: number;
  /** A rejected write is tried again with the same table only after this long (default 5 min). */
  readonly rejectedRetryMs?: number;
  /** Services written per round (default 50). */
  readonly maxWritesPerRound?: number;
  /** Pause between rounds while work remains (default 1000 ms). */
  readonly roundIntervalMs?: number;
  /** Writes in flight at once within a round (default 4). */
  readonly concurrency?: number;
}

export interface TableWriterStats {
  readonly rounds: number;
  readonly written: number;
  readonly removed: number;
  readonly stale: number;
  readonly conflicts: number;
  readonly failed: number;
  readonly rejected: number;
}

interface Offer {
  readonly desired: DesiredState;
  readonly services: readonly ServiceInput[];
}

export interface RoundResult {
  readonly ok: boolean;
  readonly error?: string;
}

type Outcome = 'written' | 'removed' | 'stale' | 'conflict' | 'failed' | 'rejected' | 'skipped';

export class BucketTableWriter {
  private readonly client: KubeClient;
  private readonly logger: Logger;
  private readonly key: string;
  private readonly loop: ReconcileLoop<Offer, RoundResult>;
  /** Service key -> the write we made, until the watched view moves on from its `basedOn`. */
  private readonly written = new Map<string, TableWrite>();
  /**
   * Service key -> a write the server rejected (400/403/422) and when: the same write is
   * not sent again until it changes or rejectedRetryMs has passed (a rejection is not an
   * outage: resending it every round only floods the log and the API).
   */
  private readonly rejected = new Map<string, { readonly write: TableWrite; readonly at: number }>();
  private stopped = false;
  /** Aborts the reads and writes in flight when stopping: stop() never waits on a hung request. */
  private readonly cancel = new AbortController();
  private readonly planner: TableWritePlanner;
  private counts = { rounds: 0, written: 0, removed: 0, stale: 0, conflicts: 0, failed: 0, rejected: 0 };

  constructor(private readonly options: TableWriterOptions) {
    this.client = kubeClient(options.kubeConfig);
    this.logger = (options.logger ?? silentLogger()).child({ component: 'table-writer' });
    this.key = storedTablesKey(options.annotationKey);
    this.planner = new TableWritePlanner(options.annotationKey);
    const roundMs = options.roundIntervalMs ?? 1000;
    this.loop = new ReconcileLoop<Offer, RoundResult>({
      name: 'stored-tables',
      pass: async (input) => (input ? this.round(input) : { ok: true }),
      failed: (error) => ({ ok: false, error }),
      // What is stored changes only with the Services, which arrive as offers.
      resyncMs: 300_000,
      backoff: { initialMs: roundMs, maxMs: 30_000 },
      minGapMs: roundMs,
      onListenerError: (err) => this.logger.error('a stored-tables result listener threw', { error: String(err) }),
    });
  }

  get reconcileLoop(): ReconcileLoop<Offer, RoundResult> {
    return this.loop;
  }

  start(): void {
    this.loop.start();
  }

  /** The latest desired state and the Services it came from; returns at once. */
  offer(desired: DesiredState, services: readonly ServiceInput[]): void {
    if (this.stopped) return;
    void this.loop.set({ desired, services });
  }

  stats(): TableWriterStats {
    return { ...this.counts };
  }

  /** Resolves when no round is running or due (tests). */
  async idle(): Promise<void> {
    for (;;) {
      await this.loop.idle();
      if (this.stopped || this.loop.lastResult?.ok !== false) return;
      await new Promise((r) => setTimeout(r, 10)); // a retry is due
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancel.abort();
    await this.loop.stop();
  }

  /** One round: at most maxWritesPerRound writes; more to do is another pass after the gap. */
  private async round(input: Offer): Promise<RoundResult> {
    if (!this.options.isLeader()) return { ok: true };
    this.counts.rounds++;
    const planned = this.planner.plan(input.desired, input.services);
    const due: TableWrite[] = [];
    const inView = new Set(planned.map((w) => `${w.namespace}/${w.name}`));
    for (const k of this.written.keys()) if (!inView.has(k)) this.written.delete(k);
    for (const w of planned) {
      const k = `${w.namespace}/${w.name}`;
      // Already written; the view still shows the annotation from before our write.
      const done = this.written.get(k);
      if (done && done.value === w.value && done.basedOn === w.basedOn) continue;
      this.written.delete(k);
      const refused = this.rejected.get(k);
      if (refused && refused.write.value === w.value && refused.write.basedOn === w.basedOn && Date.now() - refused.at < (this.options.rejectedRetryMs ?? 300_000)) continue;
      this.rejected.delete(k);
      due.push(w);
    }
    const max = this.options.maxWritesPerRound ?? 50;
    const batch = due.slice(0, max);
    if (due.length > max) void this.loop.request();
    let retry = false;
    let next = 0;
    const worker = async () => {
      while (next < batch.length && !this.stopped) {
        const w = batch[next++]!;
        const outcome = await this.write(w);
        if (outcome !== 'skipped') tableWrites.inc({ outcome });
        if (outcome === 'written' || outcome === 'removed') this.written.set(`${w.namespace}/${w.name}`, w);
        if (outcome === 'rejected') this.rejected.set(`${w.namespace}/${w.name}`, { write: w, at: Date.now() });
        if (outcome === 'conflict' || outcome === 'failed') retry = true;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency ?? 4, batch.length) }, worker));
    // A conflict or a failed write: the loop retries this input (or a newer one) after its backoff.
    return retry ? { ok: false, error: 'some stored bucket tables could not be written yet (conflict or API failure); retrying' } : { ok: true };
  }

  private async write(w: TableWrite): Promise<Outcome> {
    const what = `Service ${w.namespace}/${w.name}`;
    const limits = { signal: this.cancel.signal, logger: this.logger };
    try {
      const svc = await callWithDeadline('service.get', (signal) => this.client.request<V1Service>({ method: 'GET', path: servicePath(w.namespace, w.name), signal }), {
        ...limits,
        timeoutMs: this.options.requestTimeoutMs ?? KUBE_CALL_DEADLINES_MS.read,
      });
      const current = svc.metadata?.annotations?.[this.key];
      if (svc.metadata?.uid !== w.uid || current !== w.basedOn) {
        // Our view lags behind the API: the next snapshot brings the newer annotation.
        this.counts.stale++;
        return 'stale';
      }
      if (!this.options.isLeader()) return 'skipped';
      await annotateService(
        this.client,
        { namespace: w.namespace, name: w.name, key: this.key, value: w.value, resourceVersion: svc.metadata?.resourceVersion },
        { ...limits, timeoutMs: this.options.requestTimeoutMs ?? KUBE_CALL_DEADLINES_MS.write },
      );
      if (w.value === null) {
        this.counts.removed++;
        this.logger.info(`${what}: stored bucket tables removed (no VIP)`);
        return 'removed';
      }
      this.counts.written++;
      this.logger.debug(`${what}: stored bucket tables written`);
      return 'written';
    } catch (err) {
      const kind = classifyKubeError(err);
      if (kind === 'cancelled') return 'skipped';
      // annotateService names the Service and keeps the API's error as the cause.
      const detail = describeKubeError((err as { cause?: unknown }).cause ?? err);
      if (kind === 'conflict') {
        this.counts.conflicts++;
        this.logger.debug(`${what}: changed while writing its bucket tables; retrying with the next snapshot`);
        return 'conflict';
      }
      if (kind === 'rejected') {
        this.counts.rejected++;
        const message = `cannot store bucket tables: ${detail}`;
        this.logger.error(`${what}: ${message}`);
        this.options.events?.warning({ kind: 'Service', namespace: w.namespace, name: w.name, uid: w.uid }, 'StoredTablesRejected', message);
        return 'rejected';
      }
      this.counts.failed++;
      this.logger.warn(`${what}: cannot store bucket tables: ${detail}`);
      return 'failed';
    }
  }
}
