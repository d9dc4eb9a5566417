// What the agent writes back to Services: the allocated LoadBalancer addresses
// (status.loadBalancer.ingress) and annotations (stored bucket tables). Both are merge
// patches of only the fields concerned, so they never overwrite what others own.
import type { V1Service } from '@kubernetes/client-node';
import { Counter } from 'prom-client';
import type { IpAddress, ServiceInput } from '../model/types.js';
import { metricsRegistry, silentLogger, type EventSink, type Logger } from '../observe/index.js';
import { classifyKubeError, describeKubeError, errorText } from './api-error.js';
import { kubeClient, servicePath, type KubeClient, type KubeConnection } from './client/index.js';
import { callWithDeadline, KUBE_CALL_DEADLINES_MS } from './deadline.js';

const statusWrites = new Counter({
  name: 'kst_kube_lb_status_writes_total',
  help: 'status.loadBalancer.ingress patches by outcome (set, cleared, failed, rejected, not_leader).',
  labelNames: ['outcome'],
  registers: [metricsRegistry],
});

/** "namespace/name", the key of the allocator's results (model serviceKey). */
const keyOf = (s: { readonly namespace: string; readonly name: string }) => `${s.namespace}/${s.name}`;

export interface StatusWriteResult {
  /** Keys whose ingress was set to new addresses. */
  readonly set: readonly string[];
  /** Keys whose ingress was removed (released). */
  readonly cleared: readonly string[];
  readonly failed: readonly { readonly key: string; readonly error: string }[];
}

export interface LoadBalancerStatusWriterOptions {
  readonly kubeConfig: KubeConnection;
  /** spec.loadBalancerClass this project serves: only these Services are cleared on release. */
  readonly loadBalancerClass: string;
  /**
   * Asked again before every patch: leadership can end while a round is under way (the
   * Lease not renewed within its deadline), and a former leader must not write after that.
   */
  readonly isLeader?: () => boolean;
  /** A patch the server rejects (400/403/422) is reported on the Service. */
  readonly events?: EventSink;
  /** Deadline of each patch (default KUBE_CALL_DEADLINES_MS.write). */
  readonly requestTimeoutMs?: number;
  readonly logger?: Logger;
}

/**
 * Declarative: `set()` takes the whole allocation (Service key -> addresses) and the
 * Services as last seen, and patches only those whose status differs. A Service of our
 * class that is absent from the allocation (or allocated nothing) has its ingress cleared;
 * Services of other classes are never touched unless they are in the allocation.
 */
export class LoadBalancerStatusWriter {
  private readonly client: KubeClient;
  private readonly logger: Logger;

  constructor(private readonly options: LoadBalancerStatusWriterOptions) {
    this.client = kubeClient(options.kubeConfig);
    this.logger = (options.logger ?? silentLogger()).child({ component: 'lb-status' });
  }

  async set(services: readonly ServiceInput[], allocation: ReadonlyMap<string, readonly IpAddress[]>): Promise<StatusWriteResult> {
    const result = { set: [] as string[], cleared: [] as string[], failed: [] as { key: string; error: string }[] };
    for (const svc of services) {
      const key = keyOf(svc);
      const wanted = allocation.get(key);
      const ours = svc.type === 'LoadBalancer' && svc.loadBalancerClass === this.options.loadBalancerClass;
      if (wanted === undefined && !ours) continue;
      const desired = [...new Set(wanted ?? [])].sort();
      if (sameAddresses(desired, svc.statusIngressIps)) continue;
      if (this.options.isLeader && !this.options.isLeader()) {
        // Not a failure: whoever leads now writes the rest.
        statusWrites.inc({ outcome: 'not_leader' });
        this.logger.info(`${key}: not writing status.loadBalancer.ingress: no longer the Lease holder`);
        break;
      }
      try {
        await this.patchIngress(svc, desired);
        (desired.length ? result.set : result.cleared).push(key);
        statusWrites.inc({ outcome: desired.length ? 'set' : 'cleared' });
        this.logger.info(`${key}: status.loadBalancer.ingress ${desired.length ? `= ${desired.join(', ')}` : 'cleared'}`);
      } catch (err) {
        const rejected = classifyKubeError(err) === 'rejected';
        statusWrites.inc({ outcome: rejected ? 'rejected' : 'failed' });
        result.failed.push({ key, error: errorText(err) });
        const message = `cannot write status.loadBalancer.ingress: ${describeKubeError(err)}`;
        if (rejected) {
          this.logger.error(`${key}: ${message}`);
          this.options.events?.warning({ kind: 'Service', namespace: svc.namespace, name: svc.name, uid: svc.uid }, 'LoadBalancerStatusRejected', message);
        } else this.logger.warn(`${key}: ${message}`);
      }
    }
    return result;
  }

  private async patchIngress(svc: ServiceInput, ips: readonly string[]): Promise<V1Service> {
    // null removes the field (merge patch); an empty list would be kept as "ingress: []".
    const ingress = ips.length ? ips.map((ip) => ({ ip, ipMode: 'VIP' })) : null;
    return callWithDeadline(
      'service.patchStatus',
      (signal) =>
        this.client.request<V1Service>({ method: 'PATCH', path: servicePath(svc.namespace, svc.name, 'status'), body: { status: { loadBalancer: { ingress } } }, patch: 'merge', signal }),
      { timeoutMs: this.options.requestTimeoutMs ?? KUBE_CALL_DEADLINES_MS.write, logger: this.logger },
    );
  }
}

function sameAddresses(desired: readonly string[], current: readonly string[]): boolean {
  const now = [...new Set(current)].sort();
  return desired.length === now.length && desired.every((ip, i) => ip === now[i]);
}

export interface AnnotationWrite {
  readonly namespace: string;
  readonly name: string;
  readonly key: string;
  /** null removes the annotation. */
  readonly value: string | null;
  /**
   * Only write if the Service is still at this resourceVersion (optimistic concurrency:
   * the API answers 409 Conflict otherwise, and the caller rereads).
   */
  readonly resourceVersion?: string;
}

export interface CallLimits {
  /** Default KUBE_CALL_DEADLINES_MS.write. */
  readonly timeoutMs?: number;
  /** Cancels the call (the caller stopping). */
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
}

/**
 * Sets or removes one annotation on a Service; returns the Service's new resourceVersion.
 * Throws on API errors (with the Service named, the status code kept in `code` and the
 * original error in `cause`), also when the deadline fires.
 */
export async function annotateService(kubeConfig: KubeConnection, write: AnnotationWrite, limits: CallLimits = {}): Promise<string | undefined> {
  const client = kubeClient(kubeConfig);
  const metadata: Record<string, unknown> = { annotations: { [write.key]: write.value } };
  if (write.resourceVersion) metadata.resourceVersion = write.resourceVersion;
  try {
    const svc = await callWithDeadline('service.patch', (signal) => client.request<V1Service>({ method: 'PATCH', path: servicePath(write.namespace, write.name), body: { metadata }, patch: 'merge', signal }), {
      timeoutMs: limits.timeoutMs ?? KUBE_CALL_DEADLINES_MS.write,
      ...(limits.signal ? { signal: limits.signal } : {}),
      ...(limits.logger ? { logger: limits.logger } : {}),
    });
    return svc.metadata?.resourceVersion;
  } catch (err) {
    const e = new Error(`Service ${write.namespace}/${write.name}: cannot ${write.value === null ? 'remove' : 'set'} annotation ${write.key}: ${describeKubeError(err)}`, { cause: err });
    (e as Error & { code?: number }).code = (err as { code?: number }).code;
    throw e;
  }
}
