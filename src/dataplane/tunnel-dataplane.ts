// The tunnel node's data-plane reconciler: declarative `set(desired)`, applied as one
// kernel batch per change window, with a fast path (diff against what was last applied)
// and periodic full resyncs (diff against a kernel readback) that repair drift.
//
// Scheduling is the agent's one reconcile loop (system/reconcile-loop.ts): a change arriving
// while idle is applied at once; changes arriving while a batch runs or within `coalesceMs`
// after it are merged into the next batch. A failed batch is logged, counted and retried
// by the loop with its backoff, as a full resync; the kernel keeps what it had (fail
// static). stop() leaves the data path in place; only cleanup() removes it.
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Config } from '../config/schema.js';
import type { DesiredState, EncapMode } from '../model/types.js';
import type { EventSink, Logger } from '../observe/index.js';
import { silentLogger } from '../observe/index.js';
import { ReconcileLoop, runCommand, type CommandRunner } from '../system/index.js';
import { diffKernel, type KernelChanges } from './diff.js';
import { createDriver, type EncapDriver } from './drivers/index.js';
import { Kernel } from './kernel.js';
import { kernelOperations, reconcileDuration, reconcileErrors } from './metrics.js';
import { MARK_BASE } from './layout.js';
import type { VipCounter } from './nft.js';
import { endpointsOf, planInSlices, planKernel, RoutePlanCache, type KernelPlan, type VipProblem } from './plan.js';
import { emptyKernelState, type FlowHashBackend, type KernelState, type VipRoutes } from './state.js';

export interface TunnelDataplaneOptions {
  readonly config: Pick<Config, 'encapsulation' | 'dataplane'>;
  /** Act inside this network namespace (tests, lab); default: the node's own. */
  readonly netns?: string;
  readonly run?: CommandRunner;
  readonly logger?: Logger;
  readonly events?: EventSink;
  /** First retry delay after a failure; doubles up to maxBackoffMs. */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * Flow-hash backend: nftables (default) or xtables HMARK for kernels whose nf_tables has
   * no ip/ip6/inet family. All tunnel nodes of a cluster must use the same one.
   */
  readonly flowHash?: FlowHashBackend;
}

export interface ReconcileResult {
  readonly ok: boolean;
  /** True when the diff was against a kernel readback (start, resync, retry). */
  readonly full: boolean;
  readonly operations: number;
  readonly durationMs: number;
  readonly problems: readonly VipProblem[];
  readonly error?: string;
}

/** The longest the first plan of every VIP runs before the event loop gets a turn. */
const PLAN_SLICE_MS = 50;

/** A full resync comes no sooner than this many times its last duration (see armResync). */
const RESYNC_COST_FACTOR = 10;

const IDLE: ReconcileResult = { ok: true, full: false, operations: 0, durationMs: 0, problems: [] };

export class TunnelDataplane {
  readonly kernel: Kernel;
  private readonly log: Logger;
  private readonly loop: ReconcileLoop<DesiredState, ReconcileResult>;
  private lastApplied?: KernelState;
  private cache?: RoutePlanCache;
  private driverMode?: EncapMode;
  private reported = new Map<string, string>();
  /** Kernel operations issued since construction (tests assert on its increments). */
  operations = 0;
  /** Batches applied (each is one ip batch plus at most one nft transaction). */
  batches = 0;

  constructor(private readonly opts: TunnelDataplaneOptions) {
    this.kernel = new Kernel(opts.netns, opts.run ?? runCommand);
    this.log = (opts.logger ?? silentLogger()).child({ component: 'dataplane' });
    const { coalesceMs, resyncSeconds } = opts.config.dataplane;
    this.loop = new ReconcileLoop({
      name: 'dataplane',
      pass: (desired, ctx) => this.batch(desired, ctx.full),
      failed: (error) => ({ ...IDLE, ok: false, error }),
      // The next full resync (readback and diff of everything): its cost grows with the
      // kernel state (256,000 routes per 1,000 VIPs) and changes wait while it runs, so it
      // comes at most every resyncSeconds and never more often than RESYNC_COST_FACTOR
      // times its own last duration: a node spends at most about 1/RESYNC_COST_FACTOR of
      // its time resyncing, however many VIPs it carries.
      resyncMs: (last) => Math.max(resyncSeconds * 1000, RESYNC_COST_FACTOR * last.durationMs),
      backoff: { initialMs: opts.backoffMs ?? 500, maxMs: opts.maxBackoffMs ?? 30_000 },
      minGapMs: coalesceMs,
      onListenerError: (err) => this.log.error('a data-plane result listener threw', { error: String(err) }),
    });
  }

  /** The loop's name, health and results (the agent listens; health comes from its progress). */
  get reconcileLoop(): ReconcileLoop<DesiredState, ReconcileResult> {
    return this.loop;
  }

  get lastResult(): ReconcileResult {
    return this.loop.lastResult ?? IDLE;
  }

  /**
   * Starts the loop. Nothing is changed in the kernel until the first set(): a restarted
   * agent must not tear down the data path before it knows what it should be. The first
   * batch is a full reconcile, which adopts what a previous run left and removes the rest.
   */
  start(): void {
    this.loop.start();
  }

  /**
   * Declares the whole desired state. Resolves when the batch that includes it has been
   * applied (or has failed: see `ok`); never rejects.
   */
  set(desired: DesiredState): Promise<ReconcileResult> {
    return this.loop.set(desired);
  }

  /** Forces a full reconcile against a kernel readback now (or after the running batch). */
  resync(): Promise<ReconcileResult> {
    return this.loop.resync();
  }

  /** Stops the loop; the kernel state stays as it is (fail static). */
  async stop(): Promise<void> {
    await this.loop.stop();
    this.kernel.close();
  }

  /** Removes everything the data plane owns from the kernel (`kst cleanup`). */
  async cleanup(): Promise<KernelChanges> {
    await this.stop();
    const changes = await cleanupKernel(this.kernel, this.opts.config.dataplane.tableBase);
    this.lastApplied = undefined;
    return changes;
  }

  async vipCounters(): Promise<VipCounter[]> {
    return this.kernel.vipCounters();
  }

  /** One pass of the loop: a fast batch (diff against what was last applied) or a full one. */
  private async batch(desired: DesiredState | undefined, fullAsked: boolean): Promise<ReconcileResult> {
    const full = fullAsked || !this.lastApplied;
    let result: ReconcileResult;
    try {
      result = desired ? await this.reconcile(desired, full) : { ...IDLE, full };
    } catch (err) {
      result = { ok: false, full, operations: 0, durationMs: 0, problems: [], error: err instanceof Error ? err.message : String(err) };
    }
    if (!result.ok) {
      // The kernel keeps what it had (fail static); the loop retries, as a full resync.
      reconcileErrors.inc();
      this.lastApplied = undefined;
      this.log.warn('data-plane batch failed; the kernel keeps its last state, retrying', { error: result.error });
    }
    return result;
  }

  private driverFor(desired: DesiredState): RoutePlanCache {
    if (!this.cache || this.driverMode !== desired.mode) {
      const driver: EncapDriver = createDriver(desired.mode, this.opts.config.encapsulation, (a) => this.kernel.routeDevice(a));
      const { tableBase, rulePriority, pinEstablishedFlows } = this.opts.config.dataplane;
      this.cache = new RoutePlanCache(driver, { tableBase, rulePriority, flowHash: this.opts.flowHash, pinEstablishedFlows });
      this.driverMode = desired.mode;
    }
    return this.cache;
  }

  private async reconcile(desired: DesiredState, full: boolean): Promise<ReconcileResult> {
    const started = performance.now();
    const cache = this.driverFor(desired);
    if (cache.driver.prepare) {
      await cache.driver.prepare(endpointsOf(desired, cache.driver), full);
      if (full) cache.prune(new Set(), true); // lookups may have changed: re-plan every VIP
    }
    // Read first: with pinning the plan builds on what the kernel holds (active parities).
    const actual = full || !this.lastApplied ? await this.kernel.read(this.opts.config.dataplane.tableBase, this.opts.flowHash === 'iptables-legacy') : this.lastApplied;
    // A full pass plans every VIP: in slices first, so the event loop keeps running.
    if (full) await planInSlices(desired, cache, PLAN_SLICE_MS, () => nextTurn(), actual);
    const plan = planKernel(desired, cache.driver, cache.params, cache, actual);
    // An incremental plan (changedVips) had the same VIPs as the last one: nothing to forget.
    if (!plan.changedVips) cache.prune(new Set(desired.vips.map((v) => v.vip)));
    const changes = diffKernel(actual, plan.state, plan.hash, plan.held, plan.changedVips);
    const errors = await this.apply(changes, plan);
    const durationMs = performance.now() - started;
    this.operations += changes.operations;
    this.batches += 1;
    kernelOperations.inc(changes.operations);
    reconcileDuration.observe({ kind: full ? 'full' : 'fast' }, durationMs / 1000);
    this.reportProblems(plan.problems);
    if (errors.length) return { ok: false, full, operations: changes.operations, durationMs, problems: plan.problems, error: errors.slice(0, 5).join('; ') + (errors.length > 5 ? ` (and ${errors.length - 5} more)` : '') };
    this.lastApplied = withHeldRoutes(plan, actual);
    if (changes.operations) this.log.debug('data plane updated', { full, operations: changes.operations, ms: Math.round(durationMs) });
    return { ok: true, full, operations: changes.operations, durationMs, problems: plan.problems };
  }

  /** Applies one batch; returns error texts (empty = success) and reports per-Service failures. */
  private async apply(changes: KernelChanges, plan: KernelPlan): Promise<string[]> {
    const errors: string[] = [];
    const eventFor = new Set<string>(); // one Event per VIP and batch, however many lines failed
    for (const batch of changes.ipBatches) {
      if (batch.afterSuccess && errors.length) {
        errors.push(`not run after the failures above (kept until the retry): ${batch.size} removals`);
        break;
      }
      const ip = await this.kernel.applyIpBatch(batch, batch.family);
      if (ip.ok) continue;
      // The failed lines are made again (the batch keeps none), all in one pass.
      const failedLines = batch.pick(ip.failed.map((f) => f.line));
      for (const f of ip.failed) {
        const line = failedLines.get(f.line)?.line ?? '(batch)';
        const vip = failedLines.get(f.line)?.vip;
        const service = vip ? plan.owners.get(vip) : undefined;
        errors.push(`${line}: ${f.message}`);
        if (service && vip && !eventFor.has(vip)) {
          eventFor.add(vip);
          this.opts.events?.warning({ kind: 'Service', ...service }, 'DataplaneProgrammingFailed', `Programming tunnel VIP ${vip} failed on this node: ${f.message}. The previous routes stay in place; retrying.`);
        }
      }
      if (!ip.failed.length) errors.push(ip.stderr || `ip${batch.family === 6 ? ' -6' : ''} -batch failed`);
    }
    const steps: [string, () => Promise<void>][] = [
      ['nft', () => this.kernel.applyNft(changes.nftScript, changes.nftElementsOnly)],
      ['iptables', () => this.kernel.applyXt(changes.xtScripts.v4, 4)],
      ['ip6tables', () => this.kernel.applyXt(changes.xtScripts.v6, 6)],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (errors.length) this.log.error('kernel operations failed', { failures: errors.length, first: errors.slice(0, 5) });
    return errors;
  }

  /** One Event per VIP problem, repeated only when its message changes. */
  private reportProblems(problems: readonly VipProblem[]): void {
    const now = new Map(problems.map((p) => [p.vip, p.message]));
    for (const p of problems) {
      if (this.reported.get(p.vip) === p.message) continue;
      this.log.warn('VIP not programmed as desired; keeping its previous routes', { vip: p.vip, service: `${p.service.namespace}/${p.service.name}`, problem: p.message });
      this.opts.events?.warning({ kind: 'Service', ...p.service }, 'InvalidDataplaneInput', `${p.message}; the previous routes for ${p.vip} stay in place.`);
    }
    this.reported = now;
  }
}

/** The state now in the kernel after a successful batch: the plan, plus held VIPs' old routes. */
function withHeldRoutes(plan: KernelPlan, actual: KernelState): KernelState {
  if (plan.held.size === 0) return plan.state;
  const routes = new Map<string, VipRoutes>(plan.state.routes);
  for (const vip of plan.held) {
    const have = actual.routes.get(vip);
    if (have) routes.set(vip, have);
    else routes.delete(vip);
  }
  return { ...plan.state, routes };
}

/** Removes every object the data plane owns (readback, diff against nothing, one batch). */
export async function cleanupKernel(kernel: Kernel, tableBase: number): Promise<KernelChanges> {
  try {
    return await removeOwned(kernel, tableBase);
  } finally {
    kernel.close();
  }
}

async function removeOwned(kernel: Kernel, tableBase: number): Promise<KernelChanges> {
  const actual = await kernel.read(tableBase, true);
  const changes = diffKernel(actual, emptyKernelState(), { buckets: 1, seed: 0, markBase: MARK_BASE });
  const failures: string[] = [];
  for (const batch of changes.ipBatches) {
    const ip = await kernel.applyIpBatch(batch, batch.family);
    if (!ip.ok) failures.push(ip.stderr);
  }
  await kernel.applyNft(changes.nftScript);
  await kernel.applyXt(changes.xtScripts.v4, 4);
  await kernel.applyXt(changes.xtScripts.v6, 6);
  if (failures.length) throw new Error(`cleanup: ${failures.filter(Boolean).join('; ')}`);
  return changes;
}
