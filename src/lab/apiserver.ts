// A small Kubernetes API server for tests and the local lab (`kst lab up`). It speaks the
// real REST list/watch wire protocol well enough for the unmodified @kubernetes/client-node
// (informers, typed APIs, patches, Leases), and adds controls a real one lacks: apply and
// delete objects directly, simulate an outage (stop/start on the same port), compact
// history so resuming watches get 410 Expired, and simulate a replaced server.
//
// It is as strict as kube-apiserver where the agent meets it (see docs/testing.md for where
// it still differs): Time/MicroTime fields are parsed with Go's layouts (400), names, labels
// and annotations validated (422 with causes), a stale resourceVersion is 409 Conflict and a
// Lease PUT without one 422, a list at a resourceVersion the server has not reached waits 3 s
// and answers 504 "Too large resource version", a watch from such a resourceVersion stays
// silent until the server gets there (as the real watch cache does).
//
// resourceVersions across restarts (options below):
// - `stateFile`: objects and the counter are kept in that file (journaled per write); a
//   server started again on the same file resumes both, so resourceVersions never go back.
// - `replacedAtResourceVersion` (or `simulateReplacedServer()` on a running server): the
//   counter restarts LOWER than clients have seen, as after an etcd restore or a new cluster
//   behind the same address. For testing that clients relist (see docs/testing.md).
//
// A test double, not a product: plain HTTP on loopback, no authentication, no admission.
import http from 'node:http';
import type { Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { KubeConfig } from '@kubernetes/client-node';
import YAML from 'yaml';
import { jsonPatch, mergePatch } from './apiserver/patch.js';
import { ApiError, apiVersionOf, badRequest, findByKind, findByPath, invalid, tooLargeResourceVersion, type FieldError, type KubeObject, type ResourceType } from './apiserver/resources.js';
import { fieldSelector, labelSelector, type ObjectPredicate } from './apiserver/selectors.js';
import { StateFile } from './apiserver/state-file.js';
import { continueExpired, decodeContinue, pageOf, parseLimit } from './apiserver/paging.js';
import { ObjectStore, type Change } from './apiserver/store.js';

export type { KubeObject, ObjectMeta, ResourceType } from './apiserver/resources.js';

export interface LabApiServerOptions {
  /** 0 (default) picks a free port on first start; restarts reuse it. */
  readonly port?: number;
  readonly host?: string;
  /** Interval of BOOKMARK events for watches that allow them (the real server: about a minute). */
  readonly bookmarkIntervalMs?: number;
  /** The server ends every watch after this long, as the real one does (client re-watches). */
  readonly maxWatchSeconds?: number;
  /** Changes kept for resuming watches; older resourceVersions get 410 Expired. */
  readonly historyLimit?: number;
  /** Keeps objects and the resourceVersion counter in this file: a server started again on it resumes both. */
  readonly stateFile?: string;
  /**
   * Simulates a REPLACED server: after loading `stateFile` (if any) the counter restarts at
   * this value, below what clients have seen, and every object is renumbered from there.
   */
  readonly replacedAtResourceVersion?: number;
  /** How long a list at a not-yet-reached resourceVersion waits before 504 (the real watch cache: 3 s). */
  readonly tooLargeWaitMs?: number;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly contentType?: string;
}

interface Route {
  readonly type: ResourceType;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: 'status';
}

function parsePath(pathname: string): Route {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string | undefined;
  let rest: string[];
  if (parts[0] === 'api') [group, version, rest] = ['', parts[1], parts.slice(2)];
  else if (parts[0] === 'apis') [group, version, rest] = [parts[1] ?? '', parts[2], parts.slice(3)];
  else throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${pathname})`);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural, name, subresource, ...extra] = rest;
  const type = version && plural ? findByPath(group, version, plural) : undefined;
  const valid = type && extra.length === 0 && (subresource === undefined || (subresource === 'status' && type.hasStatus)) && (type.namespaced || !namespace);
  if (!type || !valid) throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${pathname})`);
  return { type, namespace, name, subresource: subresource as 'status' | undefined };
}

function send(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest(`request body is not valid JSON: ${text.slice(0, 80)}`);
  }
}

/** ValidateListOptions: how resourceVersionMatch may be combined (422 on ListOptions.meta.k8s.io). */
function checkResourceVersionMatch(rv: string | null, match: string): void {
  const errors: FieldError[] = [];
  const forbidden = (detail: string) => errors.push({ type: 'FieldValueForbidden', field: 'resourceVersionMatch', detail });
  if (!rv) forbidden('resourceVersionMatch is forbidden unless resourceVersion is provided');
  if (match !== 'Exact' && match !== 'NotOlderThan') {
    errors.push({ type: 'FieldValueNotSupported', field: 'resourceVersionMatch', value: JSON.stringify(match), detail: 'supported values: "Exact", "NotOlderThan", ""' });
  }
  if (match === 'Exact' && rv === '0') forbidden('resourceVersionMatch "exact" is forbidden for resourceVersion "0"');
  if (errors.length) throw invalid('meta.k8s.io', 'ListOptions', '', errors);
}

/**
 * Writes a list's objects (JSON texts) as they are, a block at a time, waiting for the
 * client to take each block: the list of 10,000 EndpointSlices is 200 MB, never one string.
 */
async function sendList(res: http.ServerResponse, head: string, items: readonly string[]): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  let block = `${head}"items":[`;
  for (const [i, item] of items.entries()) {
    block += i ? `,${item}` : item;
    if (block.length < 1 << 20) continue;
    const flushed = res.write(block);
    block = '';
    if (!flushed) await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
    if (res.destroyed) return;
  }
  res.end(`${block}]}`);
}

export class LabApiServer {
  readonly store: ObjectStore;
  /** Every request, in order: tests assert on what the client did (e.g. no needless PATCH). */
  readonly requests: RecordedRequest[] = [];
  private server?: http.Server;
  private readonly sockets = new Set<Socket>();
  /** Open watch streams: ending one, or expiring it with a 410 ERROR event first. */
  private readonly watches = new Map<() => void, () => void>();
  private boundPort: number;
  private readonly host: string;
  private readonly stateFile?: StateFile;
  /** True when objects came from an existing state file (a restart, not a first start). */
  readonly restored: boolean = false;

  constructor(private readonly options: LabApiServerOptions = {}) {
    const stateFile = options.stateFile ? new StateFile(options.stateFile) : undefined;
    this.store = new ObjectStore({ historyLimit: options.historyLimit, ...(stateFile ? { journal: (e) => stateFile.append(e) } : {}) });
    if (stateFile) {
      const snapshot = stateFile.load();
      if (snapshot) {
        this.store.restore(snapshot);
        this.restored = true;
      }
      this.stateFile = stateFile;
    }
    if (options.replacedAtResourceVersion !== undefined) this.store.rewind(options.replacedAtResourceVersion);
    this.stateFile?.rewrite(this.store.snapshot());
    this.boundPort = options.port ?? 0;
    this.host = options.host ?? '127.0.0.1';
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  get url(): string {
    if (!this.boundPort) throw new Error('lab apiserver: not started yet (no port)');
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.boundPort}`;
  }

  /** Open watch streams right now. */
  get watchCount(): number {
    return this.watches.size;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.boundPort, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Simulates an outage or a crash: the listener closes and every connection drops at once. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    for (const finish of [...this.watches.keys()]) finish();
    await closed;
  }

  /** A client configuration for this server (plain HTTP, no credentials). */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromString(this.kubeconfigYaml());
    return kc;
  }

  /** The kubeconfig file text, for the lab's processes (`--kubeconfig`). */
  kubeconfigYaml(): string {
    return YAML.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'kst-lab', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'kst-lab', user: {} }],
      contexts: [{ name: 'kst-lab', context: { cluster: 'kst-lab', user: 'kst-lab' } }],
      'current-context': 'kst-lab',
    });
  }

  // ---------- controls (work while stopped too: changes made "during an outage") ----------

  /** Creates or replaces an object (status included), like `kubectl apply` without the merge. */
  apply(obj: KubeObject): KubeObject {
    const type = this.typeOf(obj.apiVersion, obj.kind);
    const { name, namespace } = obj.metadata ?? {};
    if (name && this.store.has(type, namespace, name)) {
      const { resourceVersion: _ignored, ...metadata } = obj.metadata!;
      return this.store.update(type, { ...obj, metadata }, 'all', namespace);
    }
    return this.store.create(type, obj, namespace);
  }

  /**
   * apply() for many objects at once, taking them over: the caller must not use them (or
   * anything inside them) again. Each is validated and versioned, and watches see it, as with
   * apply(); nothing is copied. For benches that set up thousands of objects.
   */
  load(objects: Iterable<KubeObject>): void {
    for (const obj of objects) {
      const type = this.typeOf(obj.apiVersion, obj.kind);
      const { name, namespace } = obj.metadata ?? {};
      if (name && this.store.has(type, namespace, name)) {
        const { resourceVersion: _ignored, ...metadata } = obj.metadata!;
        this.store.updateEntry(type, { ...obj, metadata }, 'all', namespace, false, true);
      } else this.store.createEntry(type, obj, namespace, true);
    }
  }

  /** Deletes an object; false when there was none. */
  remove(apiVersion: string, kind: string, name: string, namespace?: string): boolean {
    if (!this.find(apiVersion, kind, name, namespace)) return false;
    this.store.delete(this.typeOf(apiVersion, kind), namespace, name);
    return true;
  }

  find(apiVersion: string, kind: string, name: string, namespace?: string): KubeObject | undefined {
    try {
      return this.store.get(this.typeOf(apiVersion, kind), namespace, name);
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  list(apiVersion: string, kind: string, namespace?: string): KubeObject[] {
    return this.store.list(this.typeOf(apiVersion, kind), namespace);
  }

  /** Forgets watch history: clients resuming from an older resourceVersion get 410 Expired. */
  compact(): void {
    this.store.compact();
  }

  /**
   * Ends every open watch with an ERROR event carrying 410 Expired, as the real server does
   * when a watcher falls too far behind; with compact() the clients' resumes fail too.
   */
  expireWatches(): void {
    for (const expire of [...this.watches.values()]) expire();
  }

  /**
   * Simulates a REPLACED server at the same address (an etcd restore, a new cluster): every
   * open watch ends (as the old server's connections do), the resourceVersion counter restarts
   * at `resourceVersion` (below what clients have seen) with the objects renumbered from there,
   * and history is gone. A client resuming at its old resourceVersion then waits in silence,
   * exactly as against a real server, until it relists.
   */
  simulateReplacedServer(resourceVersion = 1): void {
    this.store.rewind(resourceVersion);
    this.stateFile?.rewrite(this.store.snapshot());
    for (const finish of [...this.watches.keys()]) finish();
  }

  /** Applies every object of a multi-document YAML text (also `kind: List`). */
  seedYaml(text: string, source = 'YAML'): KubeObject[] {
    const applied: KubeObject[] = [];
    for (const [i, doc] of YAML.parseAllDocuments(text).entries()) {
      if (doc.errors.length) throw new Error(`${source}: document ${i + 1}: ${doc.errors[0]!.message}`);
      const value = doc.toJSON() as KubeObject | null;
      if (value === null) continue;
      const objects = value.kind === 'List' && Array.isArray(value.items) ? (value.items as KubeObject[]) : [value];
      for (const obj of objects) {
        try {
          applied.push(this.apply(obj));
        } catch (err) {
          throw new Error(`${source}: document ${i + 1} (${String(obj.kind)} ${String(obj.metadata?.name)}): ${(err as Error).message}`, { cause: err });
        }
      }
    }
    return applied;
  }

  async seedFiles(paths: readonly string[]): Promise<KubeObject[]> {
    const applied: KubeObject[] = [];
    for (const path of paths) applied.push(...this.seedYaml(await readFile(path, 'utf8'), path));
    return applied;
  }

  private typeOf(apiVersion: string | undefined, kind: string | undefined): ResourceType {
    const type = apiVersion && kind ? findByKind(apiVersion, kind) : undefined;
    if (!type) throw new Error(`lab apiserver: unsupported object apiVersion=${String(apiVersion)} kind=${String(kind)}`);
    return type;
  }

  // ---------- HTTP ----------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://lab');
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, query: url.search, contentType: req.headers['content-type'] });
    try {
      if (url.pathname === '/version') return send(res, 200, { major: '1', minor: '31', gitVersion: 'v1.31.0-kst-lab', platform: 'linux/amd64' });
      if (['/healthz', '/readyz', '/livez'].includes(url.pathname)) {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        return void res.end('ok');
      }
      const route = parsePath(url.pathname);
      const { type, namespace, name } = route;
      if (method === 'GET' && !name) return await this.listOrWatch(req, res, route, url.searchParams);
      if (method === 'GET') {
        await this.readAt(url.searchParams.get('resourceVersion'), null);
        return send(res, 200, this.store.get(type, namespace, name!));
      }
      if (method === 'POST' && !name) return send(res, 201, this.store.create(type, (await readJson(req)) as KubeObject, namespace, true));
      if (method === 'DELETE' && name) return send(res, 200, this.store.delete(type, namespace, name));
      if (method === 'PUT' && name) {
        const body = (await readJson(req)) as KubeObject;
        if (body.metadata?.name !== name) throw badRequest(`the name of the object (${String(body.metadata?.name)}) does not match the name on the URL (${name})`);
        if (type.createOnUpdate && !route.subresource && !this.find(apiVersionOf(type), type.kind, name, namespace)) {
          const { resourceVersion: _ignored, ...metadata } = body.metadata;
          return send(res, 201, this.store.create(type, { ...body, metadata }, namespace, true));
        }
        return send(res, 200, this.store.update(type, body, route.subresource ? 'status' : 'main', namespace, true, true));
      }
      if (method === 'PATCH' && name) return send(res, 200, this.patch(route, req.headers['content-type'] ?? '', await readJson(req)));
      throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported on ${url.pathname}`);
    } catch (err) {
      if (res.headersSent) return void res.end();
      const apiErr = err instanceof ApiError ? err : new ApiError(500, 'InternalError', (err as Error).message);
      send(res, apiErr.code, apiErr.toStatus());
    }
  }

  private patch(route: Route, contentType: string, body: unknown): KubeObject {
    const { type, namespace, name } = route;
    const current = this.store.get(type, namespace, name!);
    const mediaType = contentType.split(';')[0]!.trim();
    let patched: KubeObject;
    if (mediaType === 'application/json-patch+json') patched = jsonPatch(current, body) as KubeObject;
    else if (mediaType === 'application/merge-patch+json' || mediaType === 'application/strategic-merge-patch+json') {
      patched = mergePatch(current, body) as KubeObject;
    } else throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got "${mediaType}")`);
    return this.store.update(type, patched, route.subresource ? 'status' : 'main', namespace, false, true);
  }

  private async listOrWatch(req: http.IncomingMessage, res: http.ServerResponse, route: Route, query: URLSearchParams): Promise<void> {
    const labels = labelSelector(query.get('labelSelector'));
    const fields = fieldSelector(query.get('fieldSelector'));
    const matches: ObjectPredicate = (o) => (!route.namespace || o.metadata?.namespace === route.namespace) && labels(o) && fields(o);
    if (query.get('watch') === 'true' || query.get('watch') === '1') return this.watch(req, res, route.type, matches, query);
    const { rv, start, limit } = await this.listPoint(query);
    const state = this.store.entriesAt(route.type, rv, route.namespace);
    if (state === 'expired') {
      if (start !== undefined) throw continueExpired(start);
      throw new ApiError(410, 'Expired', 'The resourceVersion for the provided list is too old.');
    }
    const selected = query.get('labelSelector') || query.get('fieldSelector') ? state.filter((s) => matches(s.object)) : state;
    const page = pageOf(selected, rv, limit, start, !query.get('labelSelector') && !query.get('fieldSelector'));
    const metadata = { resourceVersion: String(rv), ...(page.continue ? { continue: page.continue } : {}), ...(page.remainingItemCount !== undefined ? { remainingItemCount: page.remainingItemCount } : {}) };
    const head = JSON.stringify({ kind: `${route.type.kind}List`, apiVersion: apiVersionOf(route.type), metadata });
    await sendList(res, `${head.slice(0, -1)},`, page.items.map((s) => s.json));
  }

  /**
   * Which state a list shows, and from where, as kube-apiserver decides it (API concepts,
   * "Semantics for get and list"; the cacher's shouldDelegateList):
   * - `continue`: the token's resourceVersion (rv -1: the latest), from its key; with it a
   *   resourceVersion other than "0" is 400 and resourceVersionMatch 422;
   * - resourceVersion "0": served from the watch cache, which ignores `limit` and sends
   *   everything (kube-apiserver before ListFromCacheSnapshot);
   * - unset: the latest state, paged;
   * - N with `limit` and no match, or match Exact: exactly N (paged; 410 once compacted);
   * - N with match NotOlderThan, or without `limit`: the latest state once it has reached N.
   */
  private async listPoint(query: URLSearchParams): Promise<{ rv: number; start?: string; limit: number }> {
    const rvParam = query.get('resourceVersion');
    const match = query.get('resourceVersionMatch');
    const token = query.get('continue');
    let limit = parseLimit(query.get('limit'));
    if (token) {
      if (match) throw invalid('meta.k8s.io', 'ListOptions', '', [{ type: 'FieldValueForbidden', field: 'resourceVersionMatch', detail: 'resourceVersionMatch is forbidden when continue is provided' }]);
      if (rvParam && rvParam !== '0') throw badRequest('specifying resource version is not allowed when using continue');
      const { rv, start } = decodeContinue(token);
      if (rv > this.store.resourceVersion) throw tooLargeResourceVersion(rv, this.store.resourceVersion, 0);
      return { rv: rv === -1 ? this.store.resourceVersion : rv, start, limit };
    }
    if (!rvParam || rvParam === '0') {
      if (match) checkResourceVersionMatch(rvParam, match);
      // The watch cache answers resourceVersion "0" whole, whatever the limit.
      if (rvParam === '0') limit = 0;
      return { rv: this.store.resourceVersion, limit };
    }
    const exact = match === 'Exact' || (!match && limit > 0);
    return { rv: await this.readAt(rvParam, exact ? 'Exact' : match), limit };
  }

  /**
   * The resourceVersion rules of a read; returns the resourceVersion to serve. Unset or "0":
   * the current state. N with match NotOlderThan (or none): at least as fresh as N; if the
   * server has not reached N it waits (the real watch cache up to 3 s) and then answers 504
   * "Too large resource version". N with match Exact: a future N is 504 at once (etcd's
   * ErrFutureRev); a past N is served as it was, or 410 once history no longer reaches it.
   */
  private async readAt(rvParam: string | null, match: string | null): Promise<number> {
    if (match) checkResourceVersionMatch(rvParam, match);
    if (!rvParam || rvParam === '0') return this.store.resourceVersion;
    const wanted = Number(rvParam);
    if (!/^\d+$/.test(rvParam) || !Number.isSafeInteger(wanted)) throw badRequest(`invalid resourceVersion "${rvParam}"`);
    const current = this.store.resourceVersion;
    if (match === 'Exact') {
      if (wanted > current) throw tooLargeResourceVersion(wanted, current, 0);
      return wanted;
    }
    if (wanted <= current) return current;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(tooLargeResourceVersion(wanted, this.store.resourceVersion, 1));
      }, this.options.tooLargeWaitMs ?? 3000);
      const unsubscribe = this.store.subscribe((change) => {
        if (change.resourceVersion < wanted) return;
        clearTimeout(timer);
        unsubscribe();
        resolve();
      });
    });
    return this.store.resourceVersion;
  }

  /**
   * A watch stream: one JSON object per line. From resourceVersion N it replays the
   * changes after N (410 Expired if history no longer reaches back), without one (or "0")
   * it starts with a synthetic ADDED per existing object. A MODIFIED change that moves an
   * object into or out of the selector is sent as ADDED or DELETED, as the real server does.
   * From an N the server has not reached yet (a client of a replaced server), the real watch
   * cache accepts the watch and sends nothing, not even bookmarks, until changes pass N.
   */
  private watch(req: http.IncomingMessage, res: http.ServerResponse, type: ResourceType, matches: ObjectPredicate, query: URLSearchParams): void {
    const rvParam = query.get('resourceVersion');
    const since = rvParam && rvParam !== '0' ? Number(rvParam) : undefined;
    if (since !== undefined && !Number.isInteger(since)) throw badRequest(`invalid resourceVersion "${rvParam}"`);
    const replay = since === undefined ? undefined : this.store.changesSince(since);

    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders(); // the client's watch() resolves on the headers, before any event
    const write = (eventType: string, object: unknown) => res.write(`${JSON.stringify({ type: eventType, object })}\n`);
    // Stored objects go out as their stored text.
    const writeStored = (eventType: string, json: string) => res.write(`{"type":"${eventType}","object":${json}}\n`);
    const timers: NodeJS.Timeout[] = [];
    let unsubscribe = () => {};
    const finish = () => {
      if (!this.watches.delete(finish)) return;
      unsubscribe();
      timers.forEach(clearTimeout);
      res.end();
    };
    const expire = () => {
      write('ERROR', new ApiError(410, 'Expired', `too old resource version: ${since ?? 0} (${this.store.resourceVersion})`).toStatus());
      finish();
    };
    this.watches.set(finish, expire);
    req.on('close', finish);
    res.on('close', finish);

    if (replay === 'expired') return expire();
    const deliver = (change: Change) => {
      if (change.resource !== type || change.resourceVersion <= (since ?? 0)) return;
      const now = matches(change.object);
      const before = change.previous ? matches(change.previous) : false;
      if (change.type === 'MODIFIED') {
        if (now) writeStored(before ? 'MODIFIED' : 'ADDED', change.json);
        else if (before) writeStored('DELETED', change.json);
      } else if (now) writeStored(change.type, change.json);
    };
    if (replay) replay.forEach(deliver);
    else for (const s of this.store.entries(type)) if (matches(s.object)) writeStored('ADDED', s.json);
    unsubscribe = this.store.subscribe(deliver);

    const timeoutSeconds = Math.min(Number(query.get('timeoutSeconds') ?? Infinity), this.options.maxWatchSeconds ?? 1800);
    timers.push(setTimeout(finish, timeoutSeconds * 1000));
    if (query.get('allowWatchBookmarks') === 'true') {
      const bookmark = () => {
        // A watch from the current revision is healthy and gets bookmarks; one from a
        // revision the server has not reached yet gets nothing (the comment above).
        if (since !== undefined && this.store.resourceVersion < since) return;
        write('BOOKMARK', { kind: type.kind, apiVersion: apiVersionOf(type), metadata: { resourceVersion: String(this.store.resourceVersion) } });
      };
      timers.push(setInterval(bookmark, this.options.bookmarkIntervalMs ?? 60000));
    }
  }
}
