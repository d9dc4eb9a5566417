// The one reconcile loop every adapter runs on (docs/architecture.md "One loop"):
//
//   - requests coalesce: set()/request() while a pass runs (or within minGapMs after one)
//     become one more pass, which sees the latest desired state;
//   - set(desired) resolves with the result of the first pass that started after it, so a
//     caller knows whether *its* state is in place; it never rejects;
//   - a failed pass is retried on its own, after the one backoff (backoff.ts) or after the
//     delay the pass asked for (retryInMs: per-item backoffs such as podnet's pods);
//     a change does not wait for a pending retry;
//   - a periodic resync (a "full" pass: read back, repair drift) comes every resyncMs, on its
//     own timer, so a steady stream of changes cannot postpone it forever;
//   - the loop records lastSuccessAt / lastPassAt / lastError: health comes from progress.
//
// One owner per retry: callers never re-run a pass because it failed; they listen to
// onResult() when they must react to a loop's success or failure.
import { Backoff, type BackoffOptions } from './backoff.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';

/** What every adapter's set() answers (its result may carry more). */
export interface PassOutcome {
  readonly ok: boolean;
  readonly error?: string;
  /** Retry after this long instead of the loop's backoff (the earliest per-item retry). */
  readonly retryInMs?: number;
}

export interface PassContext {
  /** Read back and repair everything: first pass after start, periodic resync, resync(). */
  readonly full: boolean;
  readonly reason: 'change' | 'resync' | 'retry';
  /** Consecutive failed passes before this one. */
  readonly failures: number;
}

/**
 * Which progress keeps the loop alive: 'success' (the pass must succeed) or 'progress'
 * (a pass must complete; for loops whose failures are per item, such as one pod that
 * cannot be set up, where restarting the agent would not help).
 */
export type LivenessBasis = 'success' | 'progress';

export interface ReconcileLoopOptions<D, R extends PassOutcome> {
  readonly name: string;
  readonly pass: (desired: D | undefined, ctx: PassContext) => Promise<R>;
  /** The result for a request no pass ran for (stopped) and for a pass that threw. */
  readonly failed: (error: string) => R;
  /** Period of the full resync; a function may stretch it after an expensive pass. */
  readonly resyncMs: number | ((last: R) => number);
  readonly backoff: BackoffOptions;
  /** Quiet time after a pass before the next change pass (batches a burst). Default 0. */
  readonly minGapMs?: number;
  readonly liveness?: LivenessBasis;
  readonly clock?: Clock;
  readonly random?: () => number;
  /** A listener threw: its owner's bug; reported here, the loop goes on. */
  readonly onListenerError?: (err: unknown) => void;
}

export interface LoopHealth {
  readonly name: string;
  readonly started: boolean;
  readonly startedAt?: number;
  readonly lastPassAt?: number;
  readonly lastSuccessAt?: number;
  readonly lastError?: string;
  /** Consecutive failed passes. */
  readonly failures: number;
  readonly resyncMs: number;
  /** When the running pass started (undefined: idle). */
  readonly passStartedAt?: number;
  /** When the last completed pass started, and how long it took. */
  readonly lastPassStartedAt?: number;
  readonly lastPassDurationMs?: number;
  readonly liveness: LivenessBasis;
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class ReconcileLoop<D, R extends PassOutcome> {
  private desired?: D;
  private dirty = false;
  private fullDue = false;
  private waiters: ((r: R) => void)[] = [];
  /** Waiters of the running pass. */
  private inFlight: ((r: R) => void)[] = [];
  private running?: Promise<void>;
  private passStartedAt?: number;
  private lastPassStartedAt?: number;
  private passTimer?: { readonly handle: TimerHandle; readonly at: number };
  private resyncTimer?: TimerHandle;
  private started = false;
  private startedAt?: number;
  private lastPassEnd = Number.NEGATIVE_INFINITY;
  private resyncPeriod: number;
  private readonly backoff: Backoff;
  private readonly clock: Clock;
  private readonly listeners = new Set<(r: R) => void>();
  private failures = 0;
  lastResult?: R;
  lastPassAt?: number;
  lastSuccessAt?: number;
  lastError?: string;

  constructor(private readonly opts: ReconcileLoopOptions<D, R>) {
    this.clock = opts.clock ?? systemClock;
    this.backoff = new Backoff(opts.backoff, opts.random);
    this.resyncPeriod = typeof opts.resyncMs === 'number' ? opts.resyncMs : 30_000;
  }

  get name(): string {
    return this.opts.name;
  }

  /** The latest desired state given to set(). */
  get current(): D | undefined {
    return this.desired;
  }

  /** Declares the whole desired state; resolves with the first pass that includes it. */
  set(desired: D): Promise<R> {
    this.desired = desired;
    return this.request();
  }

  /** A pass with the current desired state (something outside changed); same promise as set(). */
  request(): Promise<R> {
    const p = new Promise<R>((resolve) => this.waiters.push(resolve));
    this.dirty = true;
    this.schedule();
    return p;
  }

  /**
   * Resolves with the first pass that includes every request made so far: the running pass
   * when nothing was asked since it started, else the next one (a pass is requested when
   * none is running or due, so the caller always gets a fresh result).
   */
  settled(): Promise<R> {
    if (this.running && !this.dirty) return new Promise<R>((resolve) => this.inFlight.push(resolve));
    return this.request();
  }

  /** A full pass now (or after the running one). */
  resync(): Promise<R> {
    this.fullDue = true;
    return this.request();
  }

  /** Every pass's result, retries and resyncs included; returns the unsubscribe. */
  onResult(listener: (r: R) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Runs what was requested so far; the first pass is a full one. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.startedAt = this.clock.now();
    this.fullDue = true;
    this.schedule();
  }

  /** Stops the timers, waits for a running pass; requests no pass ran for get failed('stopped'). */
  async stop(): Promise<void> {
    this.started = false;
    this.clearPassTimer();
    if (this.resyncTimer) this.clock.clearTimer(this.resyncTimer);
    this.resyncTimer = undefined;
    while (this.running) await this.running;
    this.dirty = false;
    const stopped = this.opts.failed('stopped: not applied');
    for (const w of this.waiters.splice(0)) w(stopped);
  }

  /** Resolves when no pass runs and none is requested (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running || (this.started && this.dirty)) {
      if (this.running) await this.running;
      else await new Promise<R>((resolve) => this.waiters.push(resolve));
    }
  }

  health(): LoopHealth {
    return {
      name: this.opts.name,
      started: this.started,
      failures: this.failures,
      resyncMs: this.resyncPeriod,
      liveness: this.opts.liveness ?? 'success',
      ...(this.startedAt !== undefined ? { startedAt: this.startedAt } : {}),
      ...(this.lastPassAt !== undefined ? { lastPassAt: this.lastPassAt } : {}),
      ...(this.lastSuccessAt !== undefined ? { lastSuccessAt: this.lastSuccessAt } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(this.passStartedAt !== undefined ? { passStartedAt: this.passStartedAt } : {}),
      ...(this.lastPassStartedAt !== undefined && this.lastPassAt !== undefined ? { lastPassStartedAt: this.lastPassStartedAt, lastPassDurationMs: this.lastPassAt - this.lastPassStartedAt } : {}),
    };
  }

  /** A requested pass: now if the loop is idle and the gap has passed, else at the earliest due time. */
  private schedule(): void {
    if (!this.started || this.running || !this.dirty) return;
    const now = this.clock.now();
    const at = Math.max(now, this.lastPassEnd + (this.opts.minGapMs ?? 0));
    if (this.passTimer && this.passTimer.at <= at) return;
    this.clearPassTimer();
    if (at <= now) {
      this.runPass();
      return;
    }
    const handle = this.clock.setTimer(() => {
      this.passTimer = undefined;
      this.runPass();
    }, at - now);
    this.passTimer = { handle, at };
  }

  private clearPassTimer(): void {
    if (this.passTimer) this.clock.clearTimer(this.passTimer.handle);
    this.passTimer = undefined;
  }

  private runPass(): void {
    if (!this.started || this.running) return;
    const waiters = this.waiters.splice(0);
    this.inFlight = waiters;
    const full = this.fullDue;
    const reason = full ? 'resync' : this.dirty ? 'change' : 'retry';
    this.dirty = false;
    this.fullDue = false;
    this.passStartedAt = this.clock.now();
    const ctx: PassContext = { full, reason, failures: this.failures };
    const run = async () => {
      let result: R;
      try {
        result = await this.opts.pass(this.desired, ctx);
      } catch (err) {
        result = this.opts.failed(errorText(err));
      }
      this.running = undefined;
      this.lastPassStartedAt = this.passStartedAt;
      this.passStartedAt = undefined;
      this.record(result);
      for (const l of this.listeners) {
        try {
          l(result);
        } catch (err) {
          this.opts.onListenerError?.(err);
        }
      }
      for (const w of waiters) w(result);
      this.next(result, full);
    };
    this.running = run();
  }

  private record(result: R): void {
    const now = this.clock.now();
    this.lastResult = result;
    this.lastPassAt = now;
    this.lastPassEnd = now;
    if (result.ok) {
      this.lastSuccessAt = now;
      this.lastError = undefined;
      this.failures = 0;
      this.backoff.reset();
    } else {
      this.lastError = result.error ?? 'failed';
      this.failures += 1;
    }
  }

  private next(result: R, wasFull: boolean): void {
    if (!this.started) return;
    if (wasFull || !this.resyncTimer) this.armResync(result);
    if (this.dirty) {
      this.schedule();
      return;
    }
    if (result.ok && result.retryInMs === undefined) return;
    // A retry: the loop's backoff, or when the pass knows better (per-item backoffs), its delay.
    const delay = result.ok ? result.retryInMs! : (result.retryInMs ?? this.backoff.next());
    const at = this.clock.now() + delay;
    this.clearPassTimer();
    const handle = this.clock.setTimer(() => {
      this.passTimer = undefined;
      this.runPass();
    }, delay);
    this.passTimer = { handle, at };
  }

  private armResync(result: R): void {
    const { resyncMs } = this.opts;
    this.resyncPeriod = typeof resyncMs === 'number' ? resyncMs : resyncMs(result);
    if (this.resyncTimer) this.clock.clearTimer(this.resyncTimer);
    this.resyncTimer = this.clock.setTimer(() => {
      this.resyncTimer = undefined;
      this.fullDue = true;
      this.dirty = true;
      this.schedule();
    }, this.resyncPeriod);
    this.resyncTimer.unref?.();
  }
}
