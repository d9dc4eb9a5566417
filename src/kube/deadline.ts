// A deadline on every Kubernetes API call. A request the network (a wedged proxy, a
// black-holed path) accepts and never answers would hang forever, and so would whatever
// awaits it. Each call here gets an AbortSignal (the client aborts the socket and the body
// read) and, in case something before the socket ignores the signal (an exec credential
// plugin), a race against the same timer, so the caller is always released.
//
// Per-call values (docs/leader-election.md "Deadlines"): the API server itself gives up
// on a request after 60 s (--request-timeout), so a single-object call that has not been
// answered in a fraction of that is lost, not slow.
import { Counter } from 'prom-client';
import { metricsRegistry, silentLogger, type Logger } from '../observe/index.js';

export const KUBE_CALL_DEADLINES_MS = {
  /** One Lease request; the elector uses at most half its renewDeadline (lease.ts). */
  lease: 5_000,
  /** GET of one object. */
  read: 10_000,
  /** PATCH/PUT/POST of one object (status, annotations). */
  write: 10_000,
  /** Creating or updating an Event: best effort, never worth waiting long for. */
  event: 5_000,
  /** A full list (initial sync, relist): 10,000 objects take seconds on a busy server. */
  list: 60_000,
} as const;

const timeouts = new Counter({
  name: 'kst_kube_request_timeouts_total',
  help: 'Kubernetes API calls aborted because they were not answered within their deadline, by call.',
  labelNames: ['call'],
  registers: [metricsRegistry],
});

/** The call was not answered within its deadline (and was aborted). */
export class KubeCallTimeoutError extends Error {
  override readonly name = 'KubeCallTimeoutError';
  constructor(
    readonly call: string,
    readonly timeoutMs: number,
  ) {
    super(`${call}: no answer from the Kubernetes API within ${timeoutMs} ms (request aborted)`);
  }
}

/** The caller cancelled the call (stopping). */
export class KubeCallCancelledError extends Error {
  override readonly name = 'KubeCallCancelledError';
  constructor(readonly call: string) {
    super(`${call}: cancelled`);
  }
}

export interface DeadlineOptions {
  readonly timeoutMs: number;
  /** Cancels the call early (a component stopping): it rejects with KubeCallCancelledError. */
  readonly signal?: AbortSignal;
  /** Where a fired deadline is logged (a warning naming the call). */
  readonly logger?: Logger;
}

/**
 * Runs one call with a deadline: `send` gets the AbortSignal to pass to the request. Rejects with KubeCallTimeoutError when the deadline fires (the request
 * is aborted, the metric counts it, a warning is logged), with KubeCallCancelledError
 * when `signal` aborts, otherwise settles as the call does.
 *
 *   await callWithDeadline('lease.get', (signal) => client.request({ method: 'GET', path, signal }), { timeoutMs: 5000 });
 */
export async function callWithDeadline<T>(call: string, send: (signal: AbortSignal) => Promise<T>, opts: DeadlineOptions): Promise<T> {
  if (opts.signal?.aborted) throw new KubeCallCancelledError(call);
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onCancel: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new KubeCallTimeoutError(call, opts.timeoutMs);
      timeouts.inc({ call });
      (opts.logger ?? silentLogger()).warn(err.message, { call, deadlineMs: opts.timeoutMs });
      controller.abort(err);
      reject(err);
    }, opts.timeoutMs);
    onCancel = () => {
      const err = new KubeCallCancelledError(call);
      controller.abort(err);
      reject(err);
    };
    opts.signal?.addEventListener('abort', onCancel, { once: true });
  });
  try {
    // Promise.race subscribes to both, so the loser's later rejection is handled.
    return await Promise.race([send(controller.signal), stopped]);
  } finally {
    clearTimeout(timer);
    if (onCancel) opts.signal?.removeEventListener('abort', onCancel);
  }
}
