// The agent's Kubernetes client: JSON over node:https with one keep-alive agent. It is
// small on purpose (docs/kubernetes.md "Our own client"): @kubernetes/client-node costs
// about 77 MB of RSS just by being imported, because its KubeConfig loads every generated
// API and model. Deadlines are the caller's (kube/deadline.ts passes an AbortSignal);
// errors carry the HTTP status and the server's Status (errors.ts).
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { ClusterAccess } from './access.js';
import { BearerToken } from './credentials.js';
import { KubeApiError } from './errors.js';

/** The patch flavours the API server takes (Content-Type of a PATCH). */
export const PATCH_CONTENT_TYPES = {
  merge: 'application/merge-patch+json',
  'strategic-merge': 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
  /** Server-side apply; needs `fieldManager` in the query. JSON is YAML, so the body stays JSON. */
  apply: 'application/apply-patch+yaml',
} as const;
export type PatchType = keyof typeof PATCH_CONTENT_TYPES;

export type QueryValue = string | number | boolean | undefined;

export interface KubeRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly query?: Readonly<Record<string, QueryValue>>;
  readonly body?: unknown;
  /** PATCH only (default merge). */
  readonly patch?: PatchType;
  /** Aborts the request (and a streamed body) at any time. */
  readonly signal?: AbortSignal;
}

export interface KubeClientOptions {
  /** Sockets kept per host (default 16: four watches plus the calls of a busy moment). */
  readonly maxSockets?: number;
}

export class KubeClient {
  private readonly agent: HttpAgent;
  private readonly secure: boolean;
  private readonly url: URL;
  private readonly bearer: BearerToken;

  constructor(
    readonly access: ClusterAccess,
    options: KubeClientOptions = {},
  ) {
    this.url = new URL(access.server);
    this.secure = this.url.protocol === 'https:';
    const common = { keepAlive: true, maxSockets: options.maxSockets ?? 16 };
    const { tls } = access;
    this.agent = this.secure
      ? new HttpsAgent({
          ...common,
          ...(tls.ca ? { ca: tls.ca } : {}),
          ...(tls.cert ? { cert: tls.cert } : {}),
          ...(tls.key ? { key: tls.key } : {}),
          ...(tls.serverName ? { servername: tls.serverName } : {}),
          rejectUnauthorized: !tls.insecureSkipTlsVerify,
        })
      : new HttpAgent(common);
    this.bearer = new BearerToken(access.auth);
  }

  get server(): string {
    return this.access.server;
  }

  /** One call, JSON in and out. Rejects with KubeApiError on a non-2xx answer. */
  async request<T>(req: KubeRequest): Promise<T> {
    const res = await this.send(req);
    const text = await readText(res);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * A request whose answer is read as a stream (a watch): resolves with the response once
   * its headers say 2xx; the caller reads and ends it (abort through `signal`).
   */
  async stream(req: KubeRequest): Promise<IncomingMessage> {
    return this.send(req);
  }

  /** Closes idle keep-alive sockets (stopping). */
  close(): void {
    this.agent.destroy();
  }

  private async send(req: KubeRequest): Promise<IncomingMessage> {
    req.signal?.throwIfAborted();
    const path = withQuery(`${this.url.pathname.replace(/\/$/, '')}${req.path}`, req.query);
    const headers: OutgoingHttpHeaders = { Accept: 'application/json' };
    const authorization = await this.bearer.header();
    if (authorization) headers.Authorization = authorization;
    let payload: string | undefined;
    if (req.body !== undefined) {
      payload = JSON.stringify(req.body);
      headers['Content-Type'] = req.method === 'PATCH' ? PATCH_CONTENT_TYPES[req.patch ?? 'merge'] : 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    req.signal?.throwIfAborted();
    const attempt = (retried: boolean): Promise<IncomingMessage> =>
      new Promise<IncomingMessage>((resolve, reject) => {
        const send = this.secure ? httpsRequest : httpRequest;
        const r = send({ protocol: this.url.protocol, hostname: this.url.hostname.replace(/^\[|\]$/g, ''), port: this.url.port || (this.secure ? 443 : 80), method: req.method, path, headers, agent: this.agent }, resolve);
        r.on('error', (err: NodeJS.ErrnoException) => {
          // A kept-alive socket the server closed as we picked it up (its idle timeout):
          // sent once more on a fresh socket, Node's documented remedy for this race (http
          // "request.reusedSocket"). Safe even if the first copy arrived: every write the
          // agent makes is idempotent or carries the resourceVersion it read (then 409).
          if (!retried && r.reusedSocket && err.code === 'ECONNRESET' && !req.signal?.aborted) attempt(true).then(resolve, reject);
          else reject(err);
        });
        if (req.signal) abortWith(req.signal, r);
        r.end(payload);
      });
    const res = await attempt(false);
    const code = res.statusCode ?? 0;
    if (code >= 200 && code < 300) return res;
    const text = await readText(res).catch(() => '');
    // The credential was refused: a rotated token file or an expired exec token is fetched again next time.
    if (code === 401) this.bearer.invalidate();
    throw new KubeApiError(req.method, req.path, code, text);
  }
}

/**
 * Aborting ends the request at any stage: before the answer the request fails with an
 * AbortError; afterwards the answer's stream is destroyed (its reader sees it end early).
 * Done by hand rather than with http.request's `signal`: that one also destroys a
 * keep-alive socket after the answer was read, when the socket may already serve another
 * request, and emits an error nobody listens to any more.
 */
function abortWith(signal: AbortSignal, r: ClientRequest): void {
  const onAbort = () => {
    const res = (r as ClientRequest & { res?: IncomingMessage }).res;
    if (res) {
      if (!res.complete) res.destroy(abortError(signal));
    } else r.destroy(abortError(signal));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  r.once('close', () => signal.removeEventListener('abort', onAbort));
}

function abortError(signal: AbortSignal): Error {
  const err = new Error('The operation was aborted', { cause: signal.reason });
  err.name = 'AbortError';
  return err;
}

function withQuery(path: string, query: KubeRequest['query']): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

async function readText(res: IncomingMessage): Promise<string> {
  res.setEncoding('utf8');
  let text = '';
  for await (const chunk of res) text += chunk as string;
  return text;
}
