// What a failed Kubernetes API call means for the caller. An outage (no answer, a reset,
// 5xx, 429) is waited out and retried; a rejection (400, 401, 403, 413, 415, 422) says the
// request itself is wrong (a format the server does not accept, a missing RBAC verb) and
// retrying it unchanged never helps: it is logged with the server's own message, and
// reported as an Event where a user would look.

/** How a failed call should be handled. */
export type KubeCallFailure =
  /** Our deadline fired (kube/deadline.ts): no answer in time. */
  | 'timeout'
  /** We cancelled it (a component stopping). */
  | 'cancelled'
  /** The server refused the request as it is: fix the request or the RBAC, not the network. */
  | 'rejected'
  /** 409: someone else changed the object first (optimistic concurrency). */
  | 'conflict'
  | 'not-found'
  /** Connection refused or reset, 5xx, 429: the API is unavailable for now. */
  | 'unavailable';

const REJECTED = new Set([400, 401, 403, 405, 413, 415, 422]);

/** The HTTP status of a KubeApiError (client/errors.ts), or of a client-node ApiException in tests (undefined for network errors). */
export function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

export function classifyKubeError(err: unknown): KubeCallFailure {
  const name = (err as { name?: string } | undefined)?.name;
  if (name === 'KubeCallTimeoutError') return 'timeout';
  if (name === 'KubeCallCancelledError' || name === 'AbortError') return 'cancelled';
  const code = statusCode(err);
  // A wrapper that adds context (which Service) keeps the original as its cause.
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  if (code === undefined && cause !== undefined && cause !== err) return classifyKubeError(cause);
  if (code === 409) return 'conflict';
  if (code === 404) return 'not-found';
  if (code !== undefined && REJECTED.has(code)) return 'rejected';
  return 'unavailable';
}

/** The Status object the server answered with, as far as it parses. */
function statusBody(err: unknown): { message?: string; reason?: string } | undefined {
  const body = (err as { body?: unknown } | undefined)?.body;
  if (body === undefined || body === null) return undefined;
  try {
    const parsed = typeof body === 'string' ? (JSON.parse(body) as unknown) : body;
    return typeof parsed === 'object' && parsed !== null ? (parsed as { message?: string; reason?: string }) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A KubeApiError (like client-node's ApiException) carries the server's whole answer; the
 * Status message is what matters ("400 BadRequest: Lease ... cannot parse ...").
 */
export function errorText(err: unknown): string {
  const code = statusCode(err);
  if (code !== undefined && (err as { body?: unknown }).body !== undefined) {
    const status = statusBody(err);
    if (status?.message) return `${code}${status.reason ? ` ${status.reason}` : ''}: ${status.message}`;
    return `HTTP ${code}`;
  }
  const e = err as { message?: string } | undefined;
  return e?.message ?? String(err);
}

/**
 * A log line that says which kind of failure it was, so a 400 from a format error never
 * reads like an outage.
 */
export function describeKubeError(err: unknown): string {
  const kind = classifyKubeError(err);
  const text = errorText(err);
  if (kind === 'rejected') {
    const hint = statusCode(err) === 403 ? ' (missing RBAC permission: see deploy/base/rbac.yaml)' : statusCode(err) === 401 ? ' (credentials not accepted)' : '';
    return `rejected by the API server${hint}: ${text}`;
  }
  if (kind === 'unavailable') return `API server unavailable: ${text}`;
  return text;
}
