// Leader election on a coordination.k8s.io/v1 Lease, for things only one agent may do
// (LoadBalancer allocation and status write-back). The same rules as client-go:
// - a Lease is taken over only when its record has not changed for leaseDuration, measured
//   on OUR clock from when we first saw that record (nodes' clocks need not agree);
// - every write carries the resourceVersion read, so of two contenders exactly one wins
//   (the other gets 409 Conflict);
// - a leader that cannot renew within renewDeadline stops leading on its own, before its
//   lease can expire for the others (renewDeadline < leaseDuration).
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { Gauge } from 'prom-client';
import { metricsRegistry, silentLogger, type Logger } from '../observe/index.js';
import { errorText } from './events.js';

const leaderGauge = new Gauge({ name: 'kst_kube_leader', help: '1 while this agent holds the Lease.', labelNames: ['lease'], registers: [metricsRegistry] });

export interface LeaderElectorOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  /** This contender (node name, pod name). */
  readonly identity: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly onStartedLeading?: () => void;
  readonly onStoppedLeading?: () => void;
  /** Someone (maybe us) was seen holding the Lease. */
  readonly onNewLeader?: (identity: string) => void;
  readonly logger?: Logger;
  readonly now?: () => number;
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly logger: Logger;
  private readonly now: () => number;
  private leading = false;
  private running = false;
  private timer?: NodeJS.Timeout;
  private tick?: Promise<void>;
  private lastRenewed = 0;
  private observed?: { record: string; at: number };
  private knownLeader?: string;

  constructor(private readonly options: LeaderElectorOptions) {
    const duration = this.leaseDurationMs;
    if (this.renewDeadlineMs >= duration) throw new Error(`Lease ${options.namespace}/${options.name}: renewDeadlineMs (${this.renewDeadlineMs}) must be shorter than leaseDurationMs (${duration})`);
    this.api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.logger = (options.logger ?? silentLogger()).child({ component: 'lease', lease: `${options.namespace}/${options.name}` });
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

  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder last seen in the Lease (maybe us); undefined when none. */
  get leader(): string | undefined {
    return this.knownLeader;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop();
  }

  /**
   * Stops contending. With `release` (the default) a leader hands the Lease back at once
   * (holder cleared), so another contender takes over without waiting for expiry.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.timer);
    await this.tick;
    if (this.leading && opts.release !== false) await this.release();
    this.setLeading(false);
  }

  private loop(): void {
    this.tick = this.tryAcquireOrRenew()
      .catch((err: unknown) => {
        this.logger.warn(`lease: ${errorText(err)}`);
      })
      .finally(() => {
        if (this.running) this.timer = setTimeout(() => this.loop(), this.retryPeriodMs);
      });
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const now = this.now();
    let lease: V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ name: this.options.name, namespace: this.options.namespace });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) return this.failedRenew(err);
    }
    if (!this.running) return;
    if (!lease) {
      return this.write(() => this.api.createNamespacedLease({ namespace: this.options.namespace, body: this.record(undefined, now) }), now);
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    this.noteLeader(holder);
    const record = JSON.stringify([holder, spec.renewTime, spec.acquireTime, spec.leaseTransitions]);
    if (this.observed?.record !== record) this.observed = { record, at: now };
    const expired = holder === '' || now - this.observed.at > (spec.leaseDurationSeconds ?? this.leaseDurationMs / 1000) * 1000;
    if (holder !== this.options.identity && !expired) {
      // Someone else holds a live lease (or took ours over).
      this.setLeading(false);
      return;
    }
    const body = this.record(lease, now);
    await this.write(() => this.api.replaceNamespacedLease({ name: this.options.name, namespace: this.options.namespace, body }), now);
  }

  /** The Lease as we want it: held by us, renewed now; a takeover counts a transition. */
  private record(current: V1Lease | undefined, now: number): V1Lease {
    const spec = current?.spec ?? {};
    const ours = spec.holderIdentity === this.options.identity;
    const stamp = new Date(now);
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.options.name, namespace: this.options.namespace, ...(current?.metadata?.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}) },
      spec: {
        holderIdentity: this.options.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        acquireTime: ours && spec.acquireTime ? spec.acquireTime : stamp,
        renewTime: stamp,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (current && !ours ? 1 : 0),
      },
    };
  }

  private async write(send: () => Promise<V1Lease>, startedAt: number): Promise<void> {
    try {
      const written = await send();
      if (!this.running) return;
      this.lastRenewed = startedAt;
      this.observed = undefined;
      this.noteLeader(written.spec?.holderIdentity ?? '');
      this.setLeading(true);
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 409) {
        // Another contender wrote first: it leads (or is about to).
        this.logger.debug(`lease: lost the race: ${errorText(err)}`);
        this.setLeading(false);
        return;
      }
      this.failedRenew(err);
    }
  }

  /** The API is unreachable: a leader keeps leading until renewDeadline, not longer. */
  private failedRenew(err: unknown): void {
    this.logger.warn(`lease: ${errorText(err)}`);
    if (this.leading && this.now() - this.lastRenewed > this.renewDeadlineMs) {
      this.logger.warn('lease: not renewed within the renew deadline; stepping down');
      this.setLeading(false);
    }
  }

  private async release(): Promise<void> {
    try {
      const lease = await this.api.readNamespacedLease({ name: this.options.name, namespace: this.options.namespace });
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      lease.spec = { ...lease.spec, holderIdentity: undefined, leaseDurationSeconds: 1 };
      await this.api.replaceNamespacedLease({ name: this.options.name, namespace: this.options.namespace, body: lease });
    } catch (err) {
      this.logger.warn(`lease: release failed (others take over after expiry): ${errorText(err)}`);
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

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    leaderGauge.set({ lease: `${this.options.namespace}/${this.options.name}` }, leading ? 1 : 0);
    this.logger.info(leading ? 'started leading' : 'stopped leading');
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
