// Real Kubernetes Events (core/v1) for the EventSink interface. A reconcile loop reports the
// same problem on every pass, so identical events are aggregated like kubectl shows them
// ("x12 over 5m"): the first is created, repeats within `aggregateWindowMs` only raise its
// count, written back at most once per `countUpdateIntervalMs`. A token bucket bounds the
// API writes overall. Reporting never throws into the caller and never blocks it: failures
// are logged and counted.
import { randomBytes } from 'node:crypto';
import type { CoreV1Event } from '@kubernetes/client-node';
import { Counter } from 'prom-client';
import { metricsRegistry, silentLogger, type EventSink, type Logger, type ObjectRef } from '../observe/index.js';
import { describeKubeError } from './api-error.js';
import { eventPath, kubeClient, type KubeClient, type KubeConnection } from './client/index.js';
import { callWithDeadline, KUBE_CALL_DEADLINES_MS } from './deadline.js';

// Kept here too: other areas import it from the kube area's face.
export { errorText } from './api-error.js';

const eventWrites = new Counter({
  name: 'kst_kube_events_total',
  help: 'Kubernetes Events by outcome: created, aggregated (count raised), dropped (rate limit), failed.',
  labelNames: ['outcome'],
  registers: [metricsRegistry],
});

export interface KubeEventSinkOptions {
  readonly kubeConfig: KubeConnection;
  /** source.host and reportingInstance: this node. */
  readonly host: string;
  readonly component?: string;
  readonly aggregateWindowMs?: number;
  readonly countUpdateIntervalMs?: number;
  /** Token bucket: `burst` writes at once, refilled at `perSecond`. */
  readonly rateLimit?: { readonly burst: number; readonly perSecond: number };
  readonly logger?: Logger;
  readonly now?: () => number;
  /** Deadline of each Event write (default KUBE_CALL_DEADLINES_MS.event). */
  readonly requestTimeoutMs?: number;
}

interface Aggregate {
  /** Set once the Event exists in the API; repeats before that only count. */
  name?: string;
  readonly namespace: string;
  count: number;
  firstSeen: number;
  lastSeen: number;
  lastWritten: number;
}

const API_VERSION: Record<ObjectRef['kind'], string> = { Service: 'v1', Pod: 'v1', Node: 'v1', EndpointSlice: 'discovery.k8s.io/v1' };

export class KubeEventSink implements EventSink {
  private readonly client: KubeClient;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly aggregates = new Map<string, Aggregate>();
  private tokens: number;
  private refilledAt: number;
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly options: KubeEventSinkOptions) {
    this.client = kubeClient(options.kubeConfig);
    this.logger = (options.logger ?? silentLogger()).child({ component: 'events' });
    this.now = options.now ?? Date.now;
    this.tokens = this.limit.burst;
    this.refilledAt = this.now();
  }

  warning(ref: ObjectRef, reason: string, message: string): void {
    this.record('Warning', ref, reason, message);
  }

  normal(ref: ObjectRef, reason: string, message: string): void {
    this.record('Normal', ref, reason, message);
  }

  /** Waits for the writes in flight (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  /** Every Event write is bounded (KUBE_CALL_DEADLINES_MS.event): flush() never waits on a hung request. */
  private deadline() {
    return { timeoutMs: this.options.requestTimeoutMs ?? KUBE_CALL_DEADLINES_MS.event, logger: this.logger };
  }

  private get limit() {
    return this.options.rateLimit ?? { burst: 25, perSecond: 1 };
  }

  private takeToken(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.limit.perSecond);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private record(type: 'Warning' | 'Normal', ref: ObjectRef, reason: string, message: string): void {
    try {
      const now = this.now();
      const key = JSON.stringify([type, ref.kind, ref.namespace ?? '', ref.name, ref.uid ?? '', reason, message]);
      const agg = this.aggregates.get(key);
      if (agg && now - agg.lastSeen <= (this.options.aggregateWindowMs ?? 10 * 60_000)) {
        agg.count += 1;
        agg.lastSeen = now;
        eventWrites.inc({ outcome: 'aggregated' });
        if (agg.name && now - agg.lastWritten >= (this.options.countUpdateIntervalMs ?? 30_000) && this.takeToken()) {
          this.track(this.updateCount(agg, type, ref, reason, message));
        }
        return;
      }
      this.prune(now);
      if (!this.takeToken()) {
        eventWrites.inc({ outcome: 'dropped' });
        this.logger.debug(`event rate limit: dropped ${type} ${reason} on ${describe(ref)}`);
        return;
      }
      const fresh: Aggregate = { namespace: ref.namespace ?? 'default', count: 1, firstSeen: now, lastSeen: now, lastWritten: now };
      this.aggregates.set(key, fresh);
      this.track(this.create(fresh, type, ref, reason, message));
    } catch (err) {
      this.logger.warn(`cannot record event ${reason} on ${describe(ref)}: ${(err as Error).message}`);
    }
  }

  private track(write: Promise<void>): void {
    const p = write.catch(() => {});
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private async create(agg: Aggregate, type: string, ref: ObjectRef, reason: string, message: string): Promise<void> {
    const component = this.options.component ?? 'kube-service-tunnel';
    // kubectl's naming: the object's name and a unique suffix.
    const name = `${ref.name}.${Date.now().toString(16)}${randomBytes(2).toString('hex')}`;
    const body: CoreV1Event = {
      metadata: { name, namespace: agg.namespace },
      involvedObject: {
        apiVersion: API_VERSION[ref.kind],
        kind: ref.kind,
        name: ref.name,
        ...(ref.namespace ? { namespace: ref.namespace } : {}),
        ...(ref.uid ? { uid: ref.uid } : {}),
      },
      type,
      reason,
      message,
      count: agg.count,
      // Time fields: RFC 3339 at second precision on the wire (the typed fields say Date).
      firstTimestamp: wireTime(agg.firstSeen) as unknown as Date,
      lastTimestamp: wireTime(agg.lastSeen) as unknown as Date,
      source: { component, host: this.options.host },
      reportingComponent: component,
      reportingInstance: this.options.host,
    };
    try {
      await callWithDeadline('event.create', (signal) => this.client.request({ method: 'POST', path: eventPath(agg.namespace), body, signal }), this.deadline());
      agg.name = name;
      eventWrites.inc({ outcome: 'created' });
    } catch (err) {
      eventWrites.inc({ outcome: 'failed' });
      this.logger.warn(`cannot create event ${reason} on ${describe(ref)}: ${describeKubeError(err)}`);
      // Let the next occurrence try again instead of only counting.
      this.aggregates.forEach((a, k) => a === agg && this.aggregates.delete(k));
    }
  }

  private async updateCount(agg: Aggregate, type: string, ref: ObjectRef, reason: string, message: string): Promise<void> {
    agg.lastWritten = this.now();
    try {
      await callWithDeadline(
        'event.patch',
        (signal) =>
          this.client.request({ method: 'PATCH', path: eventPath(agg.namespace, agg.name!), body: { count: agg.count, lastTimestamp: wireTime(agg.lastSeen) }, patch: 'merge', signal }),
        this.deadline(),
      );
    } catch (err) {
      if ((err as { code?: number }).code === 404) {
        // The Event expired (the API server's TTL): start a new one.
        agg.name = undefined;
        return this.create(agg, type, ref, reason, message);
      }
      eventWrites.inc({ outcome: 'failed' });
      this.logger.warn(`cannot update event ${reason} on ${describe(ref)}: ${describeKubeError(err)}`);
    }
  }

  /** Forgets aggregates whose window has passed, so memory stays bounded. */
  private prune(now: number): void {
    const window = this.options.aggregateWindowMs ?? 10 * 60_000;
    for (const [key, agg] of this.aggregates) if (now - agg.lastSeen > window) this.aggregates.delete(key);
  }
}

/** metav1.Time: RFC 3339, whole seconds. */
function wireTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

function describe(ref: ObjectRef): string {
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;
}
