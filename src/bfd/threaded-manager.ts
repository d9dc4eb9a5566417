// BfdManager's API with the sessions on a worker thread of their own (worker.ts), so a busy
// main thread cannot delay BFD transmissions or detection (docs/bfd.md). This side keeps
// the desired sessions and admin state (replayed into a restarted worker), the latest
// status the worker reported, and the `kst_bfd_*` metrics of the main thread's registry.
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { Counter } from 'prom-client';
import type { Logger } from '../observe/index.js';
import { silentLogger } from '../observe/index.js';
import type { DropReason } from './codec.js';
import type { BfdEvents, BfdSessionRunner, BfdSessionSpec, BfdSessionStatus } from './manager.js';
import { bfdMetrics, type BfdMetrics } from './metrics.js';
import { builtScript } from './script.js';
import { HeldPeers } from './admin-down.js';
import type { FromWorker, MetricValues, WorkerCommand, WorkerMemory, WorkerOptions, WorkerSnapshot } from './worker-messages.js';

export interface ThreadedBfdManagerOptions {
  readonly logger?: Logger;
  readonly metrics?: BfdMetrics;
  /** How often the worker reports counters and metrics between state changes (default 1 s). */
  readonly snapshotIntervalMs?: number;
  /** The worker's retry of sessions whose sockets could not be opened (BfdManager's default). */
  readonly retryMs?: number;
  /** Longest wait before restarting a worker that keeps crashing (the first restart is at once). */
  readonly maxRestartDelayMs?: number;
}

/** A worker that ran this long before crashing restarts at once again. */
const STABLE_MS = 30000;
const STOP_TIMEOUT_MS = 2000;

export class ThreadedBfdManager extends EventEmitter<BfdEvents> implements BfdSessionRunner {
  private readonly log: Logger;
  private readonly metrics: BfdMetrics;
  private readonly script: string;
  private readonly workerOptions: WorkerOptions;
  private readonly maxRestartDelayMs: number;
  private worker?: Worker;
  private generation = 0;
  private startedAt = 0;
  private quickCrashes = 0;
  private restartTimer?: NodeJS.Timeout;
  private stopped = false;
  // What a restarted worker is given again.
  private desired: readonly BfdSessionSpec[] = [];
  /** Peers held AdminDown for local health (a session made later starts so). */
  private readonly heldDown = new HeldPeers();
  // The worker's last report.
  private sessions: BfdSessionStatus[] = [];
  private unmatched: Readonly<Partial<Record<DropReason, number>>> = {};
  private reportedAt = Date.now();
  private workerMemory?: WorkerMemory;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextId = 1;
  /** Counter values last seen from the current worker, to add only the increase. */
  private readonly counterSeen = new Map<string, number>();
  private readonly gaugePeers = new Set<string>();

  /** Starts the worker at once; `setSessions` gives it work. */
  constructor(opts: ThreadedBfdManagerOptions = {}) {
    super();
    this.log = (opts.logger ?? silentLogger()).child({ component: 'bfd' });
    this.metrics = opts.metrics ?? bfdMetrics();
    this.script = builtScript('worker.js');
    this.workerOptions = { snapshotIntervalMs: opts.snapshotIntervalMs ?? 1000, ...(opts.retryMs !== undefined ? { retryMs: opts.retryMs } : {}) };
    this.maxRestartDelayMs = opts.maxRestartDelayMs ?? 5000;
    this.spawn();
  }

  /** Like BfdManager.setSessions; resolves once the worker applied it (or, if it is restarting, recorded for the restart). */
  async setSessions(desired: readonly BfdSessionSpec[]): Promise<void> {
    if (this.stopped) throw new Error('BFD: manager is stopped');
    this.desired = desired.map((s) => ({ peer: s.peer, local: s.local, profile: { ...s.profile } }));
    await this.request({ op: 'set', sessions: this.desired });
  }

  adminDown(peer?: string): Promise<void> {
    this.heldDown.hold(peer);
    return this.quietRequest(peer === undefined ? { op: 'adminDown' } : { op: 'adminDown', peer });
  }

  adminUp(peer?: string): Promise<void> {
    this.heldDown.release(peer);
    return this.quietRequest(peer === undefined ? { op: 'adminUp' } : { op: 'adminUp', peer });
  }

  /**
   * The sessions as the worker last reported them: at once on every state change and
   * command, otherwise every `snapshotIntervalMs` (counters may lag by that much).
   */
  status(): BfdSessionStatus[] {
    const age = Date.now() - this.reportedAt;
    return this.sessions.map((s) => (s.uptimeMs !== undefined ? { ...s, uptimeMs: s.uptimeMs + age } : s));
  }

  /** The BFD thread's own heap as it last reported it (every snapshot interval); undefined before its first report or while it restarts. */
  memory(): WorkerMemory | undefined {
    return this.workerMemory;
  }

  unmatchedDrops(): Readonly<Partial<Record<DropReason, number>>> {
    return { ...this.unmatched };
  }

  /** Asks the worker for fresh counters and metrics now. */
  async refresh(): Promise<void> {
    await this.request({ op: 'snapshot' });
  }

  /** Test hook: an uncaught exception on the BFD thread, handled like any crash. */
  simulateCrash(): void {
    this.worker?.postMessage({ op: 'crash', id: 0 });
  }

  /** Stops the sessions (AdminDown first if asked, as BfdManager.stop) and terminates the worker. */
  async stop(opts: { adminDown?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    // From here on an exit of the worker is no crash, and nothing is replayed.
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (worker) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS)));
      await Promise.race([this.request({ op: 'stop', adminDown: opts.adminDown ?? false }), timeout]);
      clearTimeout(timer);
    }
    this.worker = undefined;
    this.settlePending();
    await worker?.terminate();
    for (const peer of this.gaugePeers) this.metrics.sessionState.remove({ peer });
    this.gaugePeers.clear();
    this.sessions = [];
    this.workerMemory = undefined;
  }

  // ---------------------------------------------------------------------------------------

  private spawn(): void {
    const generation = ++this.generation;
    const worker = new Worker(this.script, { workerData: this.workerOptions });
    this.worker = worker;
    this.startedAt = Date.now();
    this.counterSeen.clear();
    worker.on('message', (m: FromWorker) => {
      if (generation === this.generation) this.onMessage(m);
    });
    worker.on('error', (err) => this.onCrash(generation, err));
    worker.on('exit', (code) => {
      this.onCrash(generation, new Error(`BFD worker exited with code ${code}`));
      // Only now are the dead worker's sockets closed, so the new one can bind port 3784.
      if (generation === this.generation && !this.stopped) this.scheduleRestart();
    });
    // Admin state before the sessions, so a drained node's sessions start AdminDown.
    if (this.heldDown.all) void this.quietRequest({ op: 'adminDown' });
    for (const peer of this.heldDown.addresses()) void this.quietRequest({ op: 'adminDown', peer });
    if (this.desired.length > 0) void this.quietRequest({ op: 'set', sessions: this.desired });
  }

  /** Resolves when the worker has handled `cmd`. Never rejects for a crash: a restart replays the desired state. */
  private request(cmd: WorkerCommand): Promise<void> {
    const worker = this.worker;
    if (!worker) return Promise.resolve();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...cmd, id });
    });
  }

  /** For requests nobody needs to await (adminDown/adminUp are synchronous in BfdManager, replays): never rejects. */
  private async quietRequest(cmd: WorkerCommand): Promise<void> {
    try {
      await this.request(cmd);
    } catch (err) {
      this.log.error(`BFD ${cmd.op} failed`, { error: (err as Error).message });
    }
  }

  private settlePending(): void {
    for (const p of this.pending.values()) p.resolve();
    this.pending.clear();
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'ready':
        this.log.debug('BFD worker started', { startMs: Date.now() - this.startedAt, generation: this.generation });
        return;
      case 'log':
        this.log.log(m.level, m.message, m.meta);
        return;
      case 'snapshot':
        this.applySnapshot(m.snapshot);
        return;
      case 'state':
        this.applySnapshot(m.snapshot);
        this.emit('state', m.event);
        return;
      case 'reply': {
        this.applySnapshot(m.snapshot);
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error !== undefined) p?.reject(new Error(m.error));
        else p?.resolve();
        return;
      }
      case 'error':
        this.reportError(new Error(`BFD worker: ${m.message}`));
        return;
    }
  }

  private reportError(err: Error): void {
    // An 'error' event without a listener would throw on the agent's main thread.
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Once per worker ('error' is followed by 'exit'): report, and mark its sessions down. */
  private onCrash(generation: number, err: Error): void {
    if (generation !== this.generation || this.stopped || !this.worker) return;
    this.worker = undefined;
    this.workerMemory = undefined;
    this.quickCrashes = Date.now() - this.startedAt < STABLE_MS ? this.quickCrashes + 1 : 1;
    this.log.error('BFD worker crashed; restarting it with the last desired sessions', { error: err.message, restartInMs: this.restartDelayMs() });
    this.reportError(err);
    this.settlePending();
    this.markDown();
  }

  /** At once after a worker that ran a while; 0.2 s, 0.4 s, ... up to the maximum when it keeps crashing. */
  private restartDelayMs(): number {
    return this.quickCrashes <= 1 ? 0 : Math.min(this.maxRestartDelayMs, 100 * 2 ** (this.quickCrashes - 1));
  }

  private scheduleRestart(): void {
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopped) this.spawn();
    }, this.restartDelayMs());
  }

  /** The crashed worker's sessions transmit no more: the peers will declare them down, so do we. */
  private markDown(): void {
    this.sessions = this.sessions.map((s) => {
      if (s.state !== 'Up' && s.state !== 'Init') return s;
      this.metrics.sessionState.set({ peer: s.peer }, 1);
      this.emit('state', { peer: s.peer, local: s.local, from: s.state, to: 'Down', diag: 'bfd-worker-crashed', remoteDiag: s.remoteDiag });
      const { uptimeMs: _uptime, ...rest } = s;
      return { ...rest, state: 'Down', localDiag: 'bfd-worker-crashed' };
    });
  }

  private applySnapshot(s: WorkerSnapshot): void {
    this.sessions = s.sessions;
    this.unmatched = s.unmatched;
    this.reportedAt = Date.now();
    if (s.metrics) this.mirrorMetrics(s.metrics);
    if (s.memory) this.workerMemory = s.memory;
  }

  /** The worker's registry into ours: gauges as they are, counters by their increase. */
  private mirrorMetrics(list: readonly MetricValues[]): void {
    const counters: Record<string, Counter<string>> = {
      kst_bfd_packets_total: this.metrics.packets,
      kst_bfd_dropped_total: this.metrics.dropped,
      kst_bfd_state_changes_total: this.metrics.stateChanges,
    };
    for (const m of list) {
      if (m.name === 'kst_bfd_session_state') {
        const peers = new Set<string>();
        for (const v of m.values) {
          const peer = String(v.labels.peer);
          peers.add(peer);
          this.metrics.sessionState.set({ peer }, v.value);
        }
        for (const peer of this.gaugePeers) if (!peers.has(peer)) this.metrics.sessionState.remove({ peer });
        this.gaugePeers.clear();
        for (const peer of peers) this.gaugePeers.add(peer);
        continue;
      }
      const counter = counters[m.name];
      if (!counter) continue;
      for (const v of m.values) {
        const key = `${m.name}${JSON.stringify(v.labels)}`;
        const increase = v.value - (this.counterSeen.get(key) ?? 0);
        this.counterSeen.set(key, v.value);
        if (increase > 0) counter.inc(v.labels, increase);
      }
    }
  }
}
