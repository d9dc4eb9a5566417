// Leader election on a coordination.k8s.io/v1 Lease, for things only one agent may do
// (LoadBalancer status and stored bucket tables). The rules of client-go's leaderelection
// (docs/leader-election.md):
// - a contender takes a Lease over only when its record has not changed for
//   leaseDuration, measured on ITS OWN clock from when it saw that record (nodes' clocks
//   need not agree, only their rates);
// - every write carries the resourceVersion read, so of two contenders exactly one wins
//   (the other gets 409 Conflict);
// - the leader acts as leader only until renewDeadline after the START of its last
//   successful renew. A timer ends leadership then, whether the renew failed or still
//   hangs, and `isLeader` checks the clock itself. Since the record a contender times
//   was written after that start, and renewDeadline < leaseDuration, the old leader has
//   stopped before any contender may take over: never two leaders at once;
// - every Lease request has a deadline; stop() aborts what is in flight.
// acquireTime and renewTime are MicroTime on the wire: exactly six fractional digits, or a
// real API server answers 400 (a JavaScript Date has three).
import type { V1Lease } from '@kubernetes/client-node';
import { Counter, Gauge } from 'prom-client';
import { metricsRegistry, silentLogger, type EventSink, type Logger, type ObjectRef } from '../observe/index.js';
import { classifyKubeError, describeKubeError, errorText } from './api-error.js';
import { kubeClient, leasePath, type KubeClient, type KubeConnection } from './client/index.js';
import { callWithDeadline, KUBE_CALL_DEADLINES_MS } from './deadline.js';

const leaderGauge = new Gauge({ name: 'kst_kube_leader', help: '1 while this agent holds the Lease and acts as leader.', labelNames: ['lease'], registers: [metricsRegistry] });
const stepDowns = new Counter({
  name: 'kst_kube_leader_step_downs_total',
  help: 'Times this agent stopped acting as leader, by reason (renew_deadline, lost, stopped).',
  labelNames: ['reason'],
  registers: [metricsRegistry],
});

export interface LeaderElectorOptions {
  readonly kubeConfig: KubeConnection;
  readonly namespace: string;
  readonly name: string;
  /** This contender, unique per process (lease-identity.ts), never just the node name. */
  readonly identity: string;
  /** Default 15 s (client-go's default). */
  readonly leaseDurationMs?: number;
  /** Default 10 s; must be shorter than leaseDurationMs. */
  readonly renewDeadlineMs?: number;
  /** Default 2 s. */
  readonly retryPeriodMs?: number;
  /** Deadline of each Lease request; default min(KUBE_CALL_DEADLINES_MS.lease, renewDeadline / 2). */
  readonly requestTimeoutMs?: number;
  readonly onStartedLeading?: () => void;
  readonly onStoppedLeading?: () => void;
  /** Someone (maybe us) was seen holding the Lease. */
  readonly onNewLeader?: (identity: string) => void;
  /** A Lease request the server rejects (400/403/422) is reported on this object (the agent's Node). */
  readonly events?: EventSink;
  readonly eventRef?: ObjectRef;
  readonly logger?: Logger;
  readonly now?: () => number;
}

/** A MicroTime for the wire: six fractional digits (a JavaScript Date gives three). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

const SIX_DIGITS = /\.\d{6}(Z|[+-]\d\d:\d\d)$/;

/**
 * A MicroTime read back from the server is kept as it is when it is well formed (it may
 * carry real microseconds); anything else (a Date, three digits written by an older
 * agent) is rewritten with six digits, so a replace never sends back what the server rejects.
 */
export function wireMicroTime(value: unknown, fallbackMs: number): string {
  if (typeof value === 'string' && SIX_DIGITS.test(value)) return value;
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
  return microTime(Number.isFinite(ms) ? ms : fallbackMs);
}

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly logger: Logger;
  private readonly now: () => number;
  private leading = false;
  /** Our clock: leadership ends here unless a renew succeeds (start of last good renew + renewDeadline). */
  private leadingUntil = 0;
  private running = false;
  private timer?: NodeJS.Timeout;
  private deadlineTimer?: NodeJS.Timeout;
  private tick?: Promise<void>;
  /** Cancels the attempt in flight (stop()). */
  private inflight?: AbortController;
  /** The Lease as last written by us: release() replaces it (one request, its resourceVersion). */
  private lastWritten?: V1Lease;
  private observed?: { record: string; at: number };
  private knownLeader?: string;
  /** Last rejection logged, so a persistent 400/403 is one error line, not one per retry. */
  private lastRejection?: string;

  constructor(private readonly options: LeaderElectorOptions) {
    const duration = this.leaseDurationMs;
    if (this.renewDeadlineMs >= duration) throw new Error(`Lease ${options.namespace}/${options.name}: renewDeadlineMs (${this.renewDeadlineMs}) must be shorter than leaseDurationMs (${duration})`);
    this.client = kubeClient(options.kubeConfig);
    this.logger = (options.logger ?? silentLogger()).child({ component: 'lease', lease: `${options.namespace}/${options.name}`, identity: options.identity });
    this.now = options.now ?? Date.now;
  }

  private get leaseDurationMs() {
    return this.options.leaseDurationMs ?? 15_000;
  }
  private get renewDeadlineMs() {
    return this.options.renewDeadlineMs ?? 10_000;
  }
  private get retryPeriodMs() {
    return this.options.retryPeriodMs ?? 2_000;
  }
  private get requestTimeoutMs() {
    return this.options.requestTimeoutMs ?? Math.min(KUBE_CALL_DEADLINES_MS.lease, Math.floor(this.renewDeadlineMs / 2));
  }

  /**
   * True only while the last successful renew is younger than renewDeadline, read from the
   * clock at the moment of asking: every writer asks right before it writes.
   */
  get isLeader(): boolean {
    return this.leading && this.now() < this.leadingUntil;
  }

  /** The holder last seen in the Lease (maybe us); undefined when none. */
  get leader(): string | undefined {
    return this.knownLeader;
  }

  get identity(): string {
    return this.options.identity;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop();
  }

  /**
   * Stops contending, at once: the request in flight is aborted, never awaited to its end.
   * A leader stops acting as leader first and then, with `release` (the default), hands the
   * Lease back (holder cleared, one request bounded by the request deadline), so another
   * contender takes over without waiting for expiry.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.timer);
    this.inflight?.abort();
    await this.tick;
    const wasLeading = this.isLeader;
    this.setLeading(false, 'stopped');
    if (wasLeading && opts.release !== false) await this.release();
  }

  private loop(): void {
    const controller = new AbortController();
    this.inflight = controller;
    this.tick = this.tryAcquireOrRenew(controller.signal)
      .catch((err: unknown) => {
        if (classifyKubeError(err) !== 'cancelled') this.logger.warn(`lease: ${describeKubeError(err)}`);
      })
      .finally(() => {
        if (this.inflight === controller) this.inflight = undefined;
        if (this.running) this.timer = setTimeout(() => this.loop(), this.retryPeriodMs);
      });
  }

  private call<T>(call: string, send: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
    return callWithDeadline(call, send, { timeoutMs: this.requestTimeoutMs, signal, logger: this.logger });
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<void> {
    // Taken BEFORE the first request: a renew that succeeds proves the Lease was ours no
    // earlier than this, so leading until started + renewDeadline is safe.
    const started = this.now();
    const { name, namespace } = this.options;
    let lease: V1Lease | undefined;
    try {
      lease = await this.call('lease.get', (s) => this.client.request<V1Lease>({ method: 'GET', path: leasePath(namespace, name), signal: s }), signal);
    } catch (err) {
      if (classifyKubeError(err) !== 'not-found') return this.failed(err, 'read');
    }
    if (!this.running) return;
    if (!lease) {
      return this.write('lease.create', (s) => this.client.request<V1Lease>({ method: 'POST', path: leasePath(namespace), body: this.record(undefined, started), signal: s }), started, signal);
    }
    // Taken AFTER the answer: the record was written no later than this, so timing its
    // age from here never makes it look older than it is.
    const seenAt = this.now();
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    this.noteLeader(holder);
    const record = JSON.stringify([holder, spec.renewTime, spec.acquireTime, spec.leaseTransitions, lease.metadata?.resourceVersion]);
    if (this.observed?.record !== record) this.observed = { record, at: seenAt };
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseDurationMs / 1000) * 1000;
    const expired = holder === '' || seenAt - this.observed.at > durationMs;
    if (holder !== this.options.identity && !expired) {
      // Someone else holds a live lease (or took ours over after we stopped renewing).
      this.setLeading(false, 'lost');
      return;
    }
    const body = this.record(lease, started);
    await this.write('lease.update', (s) => this.client.request<V1Lease>({ method: 'PUT', path: leasePath(namespace, name), body, signal: s }), started, signal);
  }

  /** The Lease as we want it: held by us, renewed now; a takeover counts a transition. */
  private record(current: V1Lease | undefined, now: number): V1Lease {
    const spec = current?.spec ?? {};
    const ours = spec.holderIdentity === this.options.identity;
    const stamp = microTime(now);
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.options.name, namespace: this.options.namespace, ...(current?.metadata?.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}) },
      spec: {
        holderIdentity: this.options.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        // The typed field says Date, but the wire wants a MicroTime string (six digits): sent as that string.
        acquireTime: (ours && spec.acquireTime ? wireMicroTime(spec.acquireTime, now) : stamp) as unknown as Date,
        renewTime: stamp as unknown as Date,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (current && !ours ? 1 : 0),
      },
    };
  }

  private async write(call: string, send: (signal: AbortSignal) => Promise<V1Lease>, startedAt: number, signal: AbortSignal): Promise<void> {
    let written: V1Lease;
    try {
      written = await this.call(call, send, signal);
    } catch (err) {
      if (classifyKubeError(err) === 'conflict') {
        // Another contender wrote first: it leads (or is about to).
        this.logger.debug(`lease: lost the race: ${errorText(err)}`);
        this.setLeading(false, 'lost');
        return;
      }
      return this.failed(err, call === 'lease.create' ? 'create' : 'renew');
    }
    if (!this.running) return;
    this.lastRejection = undefined;
    this.lastWritten = written;
    this.observed = undefined;
    this.noteLeader(written.spec?.holderIdentity ?? '');
    const until = startedAt + this.renewDeadlineMs;
    if (this.now() >= until) {
      // Answered so late that the safe window has already passed: not leading on it.
      this.logger.warn(`lease: renewed, but ${this.now() - startedAt} ms after starting (renewDeadline ${this.renewDeadlineMs} ms): not acting as leader on it`);
      return;
    }
    this.leadingUntil = until;
    this.armDeadline();
    this.setLeading(true);
  }

  /** Ends leadership at leadingUntil unless a renew moves it on: the request may still hang. */
  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      if (!this.leading) return;
      if (this.now() < this.leadingUntil) return this.armDeadline();
      this.logger.warn(`lease: not renewed within renewDeadline (${this.renewDeadlineMs} ms): stopping acting as leader`);
      this.setLeading(false, 'renew_deadline');
    }, Math.max(0, this.leadingUntil - this.now()));
  }

  /**
   * A request that failed. An outage is waited out (leadership ends by the deadline timer
   * if it lasts); a rejection is a bug or a missing permission, logged as an error once per
   * message and reported as an Event, and it also ends leadership by the same timer.
   */
  private failed(err: unknown, what: 'read' | 'create' | 'renew'): void {
    const kind = classifyKubeError(err);
    if (kind === 'cancelled') return;
    const message = `cannot ${what} Lease ${this.options.namespace}/${this.options.name}: ${describeKubeError(err)}`;
    if (kind !== 'rejected') {
      this.logger.warn(`lease: ${message}`);
      return;
    }
    if (this.lastRejection === message) {
      this.logger.debug(`lease: ${message}`);
      return;
    }
    this.lastRejection = message;
    this.logger.error(`lease: ${message}`);
    if (this.options.events && this.options.eventRef) this.options.events.warning(this.options.eventRef, 'LeaseRejected', message);
  }

  /** Hands the Lease back: one replace of what we wrote last, bounded by the request deadline. */
  private async release(): Promise<void> {
    const last = this.lastWritten;
    if (!last?.metadata?.resourceVersion || last.spec?.holderIdentity !== this.options.identity) return;
    const now = this.now();
    const body: V1Lease = {
      ...last,
      spec: {
        ...last.spec,
        holderIdentity: undefined,
        leaseDurationSeconds: 1,
        acquireTime: wireMicroTime(last.spec.acquireTime, now) as unknown as Date,
        renewTime: microTime(now) as unknown as Date,
      },
    };
    try {
      await callWithDeadline('lease.release', (signal) => this.client.request<V1Lease>({ method: 'PUT', path: leasePath(this.options.namespace, this.options.name), body, signal }), {
        timeoutMs: this.requestTimeoutMs,
        logger: this.logger,
      });
      this.logger.info('lease released');
    } catch (err) {
      this.logger.warn(`lease: release failed (others take over after expiry): ${describeKubeError(err)}`);
    }
  }

  private noteLeader(holder: string): void {
    const leader = holder || undefined;
    if (leader === this.knownLeader) return;
    this.knownLeader = leader;
    if (leader) {
      this.logger.info(`lease held by ${leader}`);
      this.callback(() => this.options.onNewLeader?.(leader));
    }
  }

  private setLeading(leading: boolean, reason?: 'renew_deadline' | 'lost' | 'stopped'): void {
    if (!leading) {
      this.leadingUntil = 0;
      clearTimeout(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
    if (leading === this.leading) return;
    this.leading = leading;
    leaderGauge.set({ lease: `${this.options.namespace}/${this.options.name}` }, leading ? 1 : 0);
    if (!leading && reason) stepDowns.inc({ reason });
    this.logger.info(leading ? 'started leading' : `stopped leading${reason ? ` (${reason.replace('_', ' ')})` : ''}`);
    this.callback(() => (leading ? this.options.onStartedLeading?.() : this.options.onStoppedLeading?.()));
  }

  private callback(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error(`lease callback failed: ${(err as Error).message}`);
    }
  }
}
