// One resource's informer: list, then watch from the list's resourceVersion, keeping the
// objects in memory. Written here instead of client-node's ListWatch because a feed must
// be able to tell, and act on, what ListWatch hides (KUBERNETES.md "Watches in practice"):
//
// - a watch that stays connected but delivers nothing (a wedged proxy) is noticed: no
//   event and no bookmark for `inactivityTimeoutMs` aborts it and watches again from the
//   last resourceVersion; if the new watch is silent too, the feed relists (a replaced API
//   server behind us answers a watch from our resourceVersion with silence, not even
//   bookmarks, until its own revision passes ours; only a list shows the jump back);
// - every request has a deadline: a list, and a watch's wait for its response headers;
// - a periodic relist (jittered) heals any divergence; the cache is replaced in one step
//   and objects whose resourceVersion did not change keep their identity, so an identical
//   relist changes nothing downstream;
// - "too large resource version" (the server is behind us) and a resourceVersion lower
//   than one already seen (a restored or replaced API server) lead to a relist;
// - the age of the last event, bookmark or list is kept for staleness reporting.
//
// Fail static: nothing here ever empties the cache on an error; only a successful list
// replaces it.
import type { KubernetesObject } from '@kubernetes/client-node';
import { watchStream, type KubeClient, type WatchHandle } from './client/index.js';
import { Counter } from 'prom-client';
import { metricsRegistry, type Logger } from '../observe/index.js';
import { backoffDelay, type BackoffOptions } from '../system/backoff.js';

export type FeedName = 'services' | 'endpointslices' | 'nodes' | 'pods';

const watchRestarts = new Counter({
  name: 'kst_kube_watch_restarts_total',
  help: 'Watches aborted and started again by the agent, by resource and reason (inactivity: no event and no bookmark within the inactivity timeout; path_healed: the API server answers again after an outage the watch was silent through).',
  labelNames: ['resource', 'reason'],
  registers: [metricsRegistry],
});
const lists = new Counter({ name: 'kst_kube_lists_total', help: 'Full lists (initial sync, periodic relists, relists after 410 Expired or a resourceVersion problem), by resource.', labelNames: ['resource'], registers: [metricsRegistry] });
const relistCounter = new Counter({
  name: 'kst_kube_relists_total',
  help: 'Full lists after the first one, by resource and reason (periodic, expired, too_large, backwards, refused, silent).',
  labelNames: ['resource', 'reason'],
  registers: [metricsRegistry],
});

export interface ListResult {
  readonly items: readonly KubernetesObject[];
  readonly resourceVersion: string;
}

/** What a feed lists and watches. */
export interface FeedSource {
  readonly name: FeedName;
  /** The collection's path, e.g. /api/v1/services. */
  readonly path: string;
  readonly fieldSelector?: string;
  /**
   * A full list; the request must end when `signal` aborts. A source that lists in pages
   * should pass each item through `keep` as its page arrives and return what `keep` gave:
   * then only one page of raw objects is alive at a time, not the whole list (a 10,000
   * EndpointSlice list is about 200 MB of JSON and more as objects). Items not passed
   * through `keep` are kept by the feed itself.
   */
  list(signal: AbortSignal, keep: (obj: KubernetesObject) => KubernetesObject): Promise<ListResult>;
  /**
   * What the cache keeps of each listed or watched object (default: the object itself).
   * The result must keep metadata.name, namespace and resourceVersion. The watcher keeps
   * only the model's converted value (snapshot.ts): 10,000 EndpointSlices as the client
   * delivers them are hundreds of MB the agent never reads again.
   */
  readonly transform?: (obj: KubernetesObject) => KubernetesObject;
}

export interface FeedTimings {
  /** No event and no bookmark for this long: the watch is restarted from the last resourceVersion. */
  readonly inactivityTimeoutMs: number;
  /** Deadline of a list, and of a watch request until its response headers arrive. */
  readonly requestTimeoutMs: number;
  /** Mean time between periodic relists (each one jittered by ±20 %); 0 disables them. */
  readonly relistIntervalMs: number;
  /** Asked of the server; it ends each watch after this long and the feed watches again. */
  readonly watchTimeoutSeconds: number;
  /** Restart delay after a failure: the agent's one backoff (system/backoff.ts), from `initialMs` up to `maxMs`. */
  readonly backoff: BackoffOptions;
}

export interface FeedListener {
  /** The cache changed (an event, or a list that replaced something). */
  changed(feed: Feed): void;
  /** A list succeeded, or a watch delivered something after a failure. */
  recovered(feed: Feed): void;
  /** A list or watch failed (`first`: the first failure since it last worked); the feed retries on its own. */
  failed(feed: Feed, error: Error, first: boolean): void;
}

/** Why a feed lists again after its first list. */
export type RelistReason = 'periodic' | 'expired' | 'too_large' | 'backwards' | 'refused' | 'silent';

const RELIST_WHY: Record<RelistReason, string> = {
  periodic: 'periodic relist',
  expired: 'the resourceVersion expired (410 Gone)',
  too_large: 'the API server does not have our resourceVersion yet ("too large resource version"): it is behind us',
  backwards: 'the resourceVersion went backwards: the API server was restored or replaced',
  refused: 'the API server refused the watch',
  silent: 'the restarted watch was silent too (no event, no bookmark): the API server may not have our resourceVersion (restored or replaced)',
};

/** resourceVersions are opaque, but every etcd-backed server uses etcd's revision, an integer. Others are never compared. */
function revision(rv: string | undefined): bigint | undefined {
  return rv && /^\d+$/.test(rv) ? BigInt(rv) : undefined;
}

const seconds = (ms: number) => `${ms % 1000 ? (ms / 1000).toFixed(1) : ms / 1000} s`;

const keyOf = (obj: KubernetesObject) => `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;

interface ApiStatus {
  readonly code?: number;
  readonly reason?: string;
  readonly message?: string;
  readonly details?: { readonly causes?: ReadonlyArray<{ readonly reason?: string }> };
}

/** The real server answers a watch from a future resourceVersion with 504 Timeout "Too large resource version". */
export function isTooLargeResourceVersion(status: ApiStatus): boolean {
  return status.code === 504 || /too large resource version/i.test(status.message ?? '') || (status.details?.causes ?? []).some((c) => c.reason === 'ResourceVersionTooLarge');
}

export class Feed {
  private cache = new Map<string, KubernetesObject>();
  /** What keep() made: a listed item already kept is not kept again. */
  private readonly keptObjects = new WeakSet<KubernetesObject>();
  /** keep() reuses the cached object of the same version; off for one list after the server went back in time. */
  private reuseVersions = true;
  private resourceVersion?: string;
  /** The highest resourceVersion seen since the last list: anything lower means the server went back in time. */
  private highest?: bigint;
  private lastSeenAt?: number;
  private lastListAt?: number;
  private listedOnce = false;
  private failingNow = false;
  private lastFailure?: { readonly message: string; readonly at: number };
  private attempt = 0;
  /** Every list or watch attempt gets a new generation; callbacks of older ones are ignored. */
  private generation = 0;
  private inFlight?: AbortController | WatchHandle;
  private inactivity?: NodeJS.Timeout;
  private retry?: NodeJS.Timeout;
  private relistTimer?: NodeJS.Timeout;
  private running = false;
  /** What the feed is doing now, and when its current request was sent. */
  /** Inactivity timeouts in a row without an event or bookmark in between. */
  private silentTimeouts = 0;
  private phase: 'idle' | 'listing' | 'connecting' | 'watching' | 'waiting' = 'idle';
  private requestStartedAt?: number;

  constructor(
    readonly source: FeedSource,
    private readonly client: KubeClient,
    private readonly timings: FeedTimings,
    private readonly listener: FeedListener,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  get name(): FeedName {
    return this.source.name;
  }

  /** The objects now, in no particular order. */
  objects(): KubernetesObject[] {
    return [...this.cache.values()];
  }

  get listed(): boolean {
    return this.listedOnce;
  }

  get failing(): boolean {
    return this.failingNow;
  }

  get lastError(): { readonly message: string; readonly at: number } | undefined {
    return this.lastFailure;
  }

  /** The resourceVersion the next watch resumes from. */
  get currentResourceVersion(): string | undefined {
    return this.resourceVersion;
  }

  /** Time of the last event, bookmark or successful list (epoch ms). */
  get lastActivityAt(): number | undefined {
    return this.lastSeenAt;
  }

  get lastListedAt(): number | undefined {
    return this.lastListAt;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.list();
  }

  stop(): void {
    this.running = false;
    this.phase = 'idle';
    this.abandon();
    clearTimeout(this.retry);
    clearTimeout(this.relistTimer);
    this.retry = this.relistTimer = undefined;
  }

  /** Lists now (aborting the watch), replaces the cache and watches from the list. */
  relist(reason: RelistReason): void {
    if (!this.running) return;
    const level = reason === 'periodic' ? 'debug' : 'warn';
    this.logger[level](`${this.name}: relisting: ${RELIST_WHY[reason]}`, { resource: this.name, reason, resourceVersion: this.resourceVersion });
    relistCounter.inc({ resource: this.name, reason });
    void this.list();
  }

  /**
   * The path to the API server works again after it did not (watcher.ts probes it): a
   * watch that has heard nothing since `brokenSince` rides a connection that went through
   * the outage, where TCP may take minutes to retransmit, so it is restarted now from its
   * resourceVersion (cheap: the server replays what we missed). A feed waiting out its
   * backoff retries now.
   */
  pathHealed(brokenSince: number): void {
    if (!this.running) return;
    if (this.retry) {
      clearTimeout(this.retry);
      this.retry = undefined;
      this.attempt = 0;
      if (this.resourceVersion === undefined || !this.listedOnce) void this.list();
      else this.watch();
      return;
    }
    // A request sent into the outage may hang until its deadline: send it again now.
    const sentIntoOutage = this.requestStartedAt !== undefined && this.requestStartedAt < brokenSince;
    if (this.phase === 'listing') {
      if (sentIntoOutage) void this.list();
      return;
    }
    if (this.phase === 'connecting') {
      if (sentIntoOutage) this.watch();
      return;
    }
    if (this.phase !== 'watching' || (this.lastSeenAt ?? 0) >= brokenSince) return;
    this.logger.info(`${this.name}: the API server answers again: restarting the watch that went silent during the outage, from resourceVersion ${this.resourceVersion}`, { resource: this.name });
    watchRestarts.inc({ resource: this.name, reason: 'path_healed' });
    this.watch();
  }

  /** Ends the current request, if any: its callbacks are ignored from now on. */
  private abandon(): number {
    // The new generation first: aborting calls the old request's callbacks synchronously.
    const generation = ++this.generation;
    clearTimeout(this.inactivity);
    this.inactivity = undefined;
    const request = this.inFlight;
    this.inFlight = undefined;
    request?.abort();
    return generation;
  }

  private async list(): Promise<void> {
    clearTimeout(this.retry);
    this.retry = undefined;
    const generation = this.abandon();
    const controller = new AbortController();
    this.inFlight = controller;
    this.phase = 'listing';
    this.requestStartedAt = this.now();
    const deadline = setTimeout(() => controller.abort(new Error(`list ${this.source.path}: no answer within ${this.timings.requestTimeoutMs} ms`)), this.timings.requestTimeoutMs);
    let result: ListResult;
    try {
      result = await this.source.list(controller.signal, this.keep);
    } catch (err) {
      if (generation !== this.generation) return;
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : err;
      this.fail(reason instanceof Error ? reason : new Error(String(reason)), 'list');
      return;
    } finally {
      clearTimeout(deadline);
    }
    if (generation !== this.generation || !this.running) return;
    this.inFlight = undefined;
    lists.inc({ resource: this.name });
    if (!this.replace(result)) return;
    this.scheduleRelist();
    this.watch();
  }

  /**
   * The list is the truth: one step, keeping the very objects whose version did not change
   * (so an identical relist changes nothing downstream and converts nothing).
   */
  private replace(result: ListResult): boolean {
    const listed = revision(result.resourceVersion);
    const wentBack = listed !== undefined && this.highest !== undefined && listed < this.highest;
    if (wentBack) this.logger.warn(`${this.name}: the list's resourceVersion ${result.resourceVersion} is lower than ${this.highest} seen before: the API server was restored or replaced; its list replaces our view`);
    const next = new Map<string, KubernetesObject>();
    let changed = false;
    let reused = false;
    for (const obj of result.items) {
      const key = keyOf(obj);
      const old = this.cache.get(key);
      const kept = this.keptObjects.has(obj) ? obj : wentBack ? this.fresh(obj) : this.keep(obj);
      next.set(key, kept);
      if (kept === old) reused = true;
      else changed = true;
    }
    if (wentBack && reused && this.reuseVersions) {
      // After a jump back in time equal versions may name different contents, but the
      // source kept them as the cached ones: list once more, converting every object.
      this.reuseVersions = false;
      this.relist('backwards');
      return false;
    }
    this.reuseVersions = true;
    if (next.size !== this.cache.size || [...this.cache.keys()].some((k) => !next.has(k))) changed = true;
    this.cache = next;
    this.resourceVersion = result.resourceVersion;
    this.highest = listed;
    this.lastSeenAt = this.lastListAt = this.now();
    this.silentTimeouts = 0;
    // The first list completes the view even when it is empty.
    if (!this.listedOnce) changed = true;
    this.listedOnce = true;
    this.recovered();
    if (changed) this.listener.changed(this);
    return true;
  }

  private watch(): void {
    if (!this.running) return;
    const generation = this.abandon();
    const started = this.now();
    this.phase = 'connecting';
    this.requestStartedAt = started;
    let delivered = false;
    const query = {
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: this.timings.watchTimeoutSeconds,
      ...(this.source.fieldSelector ? { fieldSelector: this.source.fieldSelector } : {}),
    };
    const onEvent = (type: string, obj: unknown) => {
      if (generation !== this.generation) return;
      delivered = true;
      this.event(type, obj as KubernetesObject & ApiStatus);
    };
    const onDone = (err: unknown) => {
      if (generation !== this.generation || !this.running) return;
      clearTimeout(this.inactivity);
      this.inFlight = undefined;
      if (!err) {
        // The server ended the watch (its timeout): resume at once, unless it ends
        // immediately every time (then back off like after a failure).
        if (delivered || this.now() - started > 1000) this.watch();
        else this.fail(new Error(`watch ${this.source.path} ended at once without an event`), 'watch');
        return;
      }
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 410) return this.relist('expired');
      if (status === 504) return this.relist('too_large');
      if (status === 500) return this.relist('refused');
      this.fail(err instanceof Error ? err : new Error(String(err)), 'watch');
    };
    // A request that is accepted and never answered: requestTimeoutMs bounds the wait for
    // the headers (the stream itself is the inactivity timer's business).
    watchStream(this.client, this.source.path, query, onEvent, onDone, { headersTimeoutMs: this.timings.requestTimeoutMs }).then(
      (controller) => {
        if (generation !== this.generation) controller.abort();
        else {
          // The server accepted the watch: the feed works again (whether it stays alive is
          // the inactivity timer's business).
          this.inFlight = controller;
          this.phase = 'watching';
          this.armInactivity(generation);
          this.recovered();
        }
      },
      (err: unknown) => onDone(err instanceof Error ? err : new Error(String(err))),
    );
  }

  private event(type: string, obj: KubernetesObject & ApiStatus): void {
    if (type === 'ERROR') {
      if (obj.code === 410) return this.relist('expired');
      if (isTooLargeResourceVersion(obj)) return this.relist('too_large');
      return this.fail(new Error(`watch ${this.source.path}: ${obj.message ?? `error ${obj.code ?? ''}`}`), 'watch');
    }
    const rv = obj.metadata?.resourceVersion;
    const seen = revision(rv);
    if (seen !== undefined && this.highest !== undefined && seen < this.highest) {
      this.logger.warn(`${this.name}: ${type} event with resourceVersion ${rv}, lower than ${this.highest} seen before`, { resource: this.name });
      return this.relist('backwards');
    }
    if (seen !== undefined) this.highest = seen;
    if (rv) this.resourceVersion = rv;
    this.lastSeenAt = this.now();
    this.silentTimeouts = 0;
    this.armInactivity(this.generation);
    this.recovered();
    if (type === 'ADDED' || type === 'MODIFIED') {
      this.cache.set(keyOf(obj), this.keep(obj));
      this.listener.changed(this);
    } else if (type === 'DELETED') {
      if (this.cache.delete(keyOf(obj))) this.listener.changed(this);
    }
    // BOOKMARK: only the resourceVersion and the sign of life.
  }

  /**
   * What the cache keeps of `obj` (the source's transform): the cached object itself when it
   * is this very version (same resourceVersion and uid), so an unchanged object is neither
   * converted nor copied again on a relist.
   */
  private readonly keep = (obj: KubernetesObject): KubernetesObject => {
    if (this.keptObjects.has(obj)) return obj;
    const old = this.cache.get(keyOf(obj));
    const rv = obj.metadata?.resourceVersion;
    if (this.reuseVersions && old !== undefined && rv !== undefined && old.metadata?.resourceVersion === rv && old.metadata?.uid === obj.metadata?.uid) return old;
    return this.fresh(obj);
  };

  private fresh(obj: KubernetesObject): KubernetesObject {
    const kept = this.source.transform ? this.source.transform(obj) : obj;
    this.keptObjects.add(kept);
    return kept;
  }

  private armInactivity(generation: number): void {
    clearTimeout(this.inactivity);
    this.inactivity = setTimeout(() => {
      if (generation !== this.generation || !this.running) return;
      this.silentTimeouts += 1;
      if (this.silentTimeouts >= 2) {
        this.silentTimeouts = 0;
        return this.relist('silent');
      }
      this.logger.warn(`${this.name}: no event and no bookmark for ${seconds(this.timings.inactivityTimeoutMs)} although the watch is connected: restarting it from resourceVersion ${this.resourceVersion}`, {
        resource: this.name,
      });
      watchRestarts.inc({ resource: this.name, reason: 'inactivity' });
      this.watch();
    }, this.timings.inactivityTimeoutMs);
    this.inactivity.unref?.();
  }

  private scheduleRelist(): void {
    clearTimeout(this.relistTimer);
    this.relistTimer = undefined;
    const every = this.timings.relistIntervalMs;
    if (!every || !this.running) return;
    // Jitter keeps a DaemonSet's agents from relisting all at once.
    this.relistTimer = setTimeout(() => this.relist('periodic'), every * (0.8 + Math.random() * 0.4));
    this.relistTimer.unref?.();
  }

  private recovered(): void {
    const was = this.failingNow;
    this.failingNow = false;
    this.attempt = 0;
    if (was) this.listener.recovered(this);
  }

  /** Keeps the cache; retries later: a watch resumes, a feed that never listed lists. */
  private fail(error: Error, what: 'list' | 'watch'): void {
    if (!this.running) return;
    this.abandon();
    this.phase = 'waiting';
    this.lastFailure = { message: error.message, at: this.now() };
    const first = !this.failingNow;
    this.failingNow = true;
    this.listener.failed(this, error, first);
    const delay = backoffDelay(this.timings.backoff, this.attempt);
    this.attempt += 1;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (!this.running) return;
      if (what === 'list' || this.resourceVersion === undefined) void this.list();
      else this.watch();
    }, delay);
  }
}
