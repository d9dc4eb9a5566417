// ClusterWatcher: the agent's view of the cluster. Four feeds (Services, EndpointSlices,
// Nodes, and the Pods on this node; feed.ts) keep the current objects in memory; changes
// are coalesced into one ClusterSnapshot delivered to `onChange`.
//
// Fail static: the feeds' caches are the state. An error never clears them, so while the
// API server is unreachable, or a watch is silent, the last snapshot stays in force; feeds
// retry with backoff, restart silent watches, relist when they must, and a list replaces
// a cache in one step (objects deleted meanwhile disappear, the others never blink).
// Staleness (no event, bookmark or list for `staleAfterMs`) is reported (status, metric,
// readiness, one Node Event per episode), never acted on.
// No snapshot is emitted before every feed has listed once: a partial view (services
// without their endpoints) would withdraw working announcements.
import type { KubernetesObject } from '@kubernetes/client-node';
import { Counter, Gauge } from 'prom-client';
import type { ClusterSnapshot } from '../model/types.js';
import { metricsRegistry, silentLogger, type EventSink, type Logger } from '../observe/index.js';
import { Feed, type FeedName, type FeedSource, type FeedTimings } from './feed.js';
import { describeIssue, objectConverters } from './objects.js';
import { SnapshotBuilder, sameSnapshot, type KindName, type ObjectConverters } from './snapshot.js';
import { kubeClient, type KubeConnection } from './client/index.js';
import { clusterSources } from './sources.js';

export type { FeedName } from './feed.js';

const watchErrors = new Counter({ name: 'kst_kube_watch_errors_total', help: 'Informer list/watch failures, by resource.', labelNames: ['resource'], registers: [metricsRegistry] });
const snapshots = new Counter({ name: 'kst_kube_snapshots_total', help: 'Cluster snapshots delivered to the agent.', registers: [metricsRegistry] });
const readyGauge = new Gauge({ name: 'kst_kube_synced', help: '1 once every informer has listed once.', registers: [metricsRegistry] });

/** Watchers running in this process (one in the agent; tests may run several): read at scrape time. */
const running = new Set<ClusterWatcher>();
new Gauge({
  name: 'kst_kube_feed_last_event_age_seconds',
  help: 'Seconds since the feed last received an event, a bookmark or a list from the API server (computed at scrape time).',
  labelNames: ['feed'],
  registers: [metricsRegistry],
  collect() {
    this.reset();
    for (const watcher of running) for (const f of watcher.status().feeds) if (f.lastEventAgeSeconds !== undefined) this.set({ feed: f.name }, f.lastEventAgeSeconds);
  },
});

/** Defaults sized for a real API server, which sends a bookmark about once a minute. */
export const WATCH_DEFAULTS = {
  inactivityTimeoutMs: 135_000,
  requestTimeoutMs: 30_000,
  relistIntervalMs: 600_000,
  staleAfterMs: 180_000,
  watchTimeoutSeconds: 300,
  pathProbeIntervalMs: 5_000,
} as const;

export interface ClusterWatcherOptions {
  readonly kubeConfig: KubeConnection;
  /** This node: only its pods are watched; stale feeds are reported on its Node. */
  readonly nodeName: string;
  /** Called with each new snapshot (never with an unchanged one). */
  readonly onChange: (snapshot: ClusterSnapshot) => void;
  /** Changes within this window become one snapshot. Default 100 ms. */
  readonly debounceMs?: number;
  /** Restart delay after a failure: doubles from `initialMs` up to `maxMs`. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** The server ends each watch after this long and the feed watches again. Default 300 s. */
  readonly watchTimeoutSeconds?: number;
  /** No event and no bookmark for this long restarts a watch from its last resourceVersion. Default 135 s (twice the bookmark interval, plus 15 s). */
  readonly inactivityTimeoutMs?: number;
  /** Deadline of each list, and of each watch request until its headers. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Mean interval of the periodic relist (jittered); 0 disables it. Default 10 min. */
  readonly relistIntervalMs?: number;
  /** A feed with no event, bookmark or list for this long is stale: reported, never acted on. Default 180 s. */
  readonly staleAfterMs?: number;
  /**
   * How often the path to the API server is probed (GET /version, deadline 3 s or less).
   * When it answers again after failing, watches silent since the failure are restarted at
   * once instead of waiting for TCP or the inactivity timeout. 0 disables it. Default 5 s.
   */
  readonly pathProbeIntervalMs?: number;
  /** Where the Node Event about a stale feed goes (once per episode). */
  readonly events?: EventSink;
  /** The resources to watch; default: the four the agent needs (sources.ts). */
  readonly sources?: readonly FeedSource[];
  readonly converters?: ObjectConverters;
  readonly logger?: Logger;
  readonly now?: () => number;
}

export interface WatchError {
  readonly resource: FeedName;
  readonly message: string;
  readonly at: Date;
}

export interface FeedStatus {
  readonly name: FeedName;
  /** Seconds since the last event, bookmark or list; absent before the first list. */
  readonly lastEventAgeSeconds?: number;
  /** No sign of life for longer than staleAfterMs: the last state stays in force. */
  readonly stale: boolean;
  /** The last list or watch failed (retrying). */
  readonly failing: boolean;
  readonly resourceVersion?: string;
  readonly lastListAt?: Date;
  readonly lastError?: string;
}

export interface ClusterWatcherStatus {
  /** Every informer has listed once and a snapshot was delivered. */
  readonly ready: boolean;
  /** Informers currently failing (the last snapshot stays in force meanwhile). */
  readonly failing: readonly FeedName[];
  /** Informers with no sign of life for longer than staleAfterMs. */
  readonly stale: readonly FeedName[];
  readonly feeds: readonly FeedStatus[];
  readonly lastError?: WatchError;
  readonly lastSnapshotAt?: Date;
}

export class ClusterWatcher {
  private readonly feeds: Feed[] = [];
  private readonly builder: SnapshotBuilder;
  private readonly logger: Logger;
  private readonly now: () => number;
  private debounce?: NodeJS.Timeout;
  private staleTimer?: NodeJS.Timeout;
  private running = false;
  private last?: { snapshot: ClusterSnapshot; at: Date };
  private lastError?: WatchError;
  private readonly readyWaiters: (() => void)[] = [];
  private probeTimer?: NodeJS.Timeout;
  /** The probe last failed at this time (unset while the path works). */
  private pathBrokenSince?: number;
  /** Feeds in a stale episode, and since when (one log line and one Event per episode). */
  private readonly staleSince = new Map<FeedName, number>();

  constructor(private readonly options: ClusterWatcherOptions) {
    this.logger = (options.logger ?? silentLogger()).child({ component: 'kube' });
    this.now = options.now ?? Date.now;
    // Each object version converts once (memoised), so each issue is logged once per version.
    const converters = options.converters ?? objectConverters((issue) => this.logger.warn(describeIssue(issue)));
    this.builder = new SnapshotBuilder(converters, (kind, obj, err) =>
      this.logger.warn(`cannot read ${kind} ${obj.metadata?.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata?.name}: ${(err as Error).message}`),
    );
  }

  private get staleAfterMs(): number {
    return this.options.staleAfterMs ?? WATCH_DEFAULTS.staleAfterMs;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    running.add(this);
    const timings: FeedTimings = {
      inactivityTimeoutMs: this.options.inactivityTimeoutMs ?? WATCH_DEFAULTS.inactivityTimeoutMs,
      requestTimeoutMs: this.options.requestTimeoutMs ?? WATCH_DEFAULTS.requestTimeoutMs,
      relistIntervalMs: this.options.relistIntervalMs ?? WATCH_DEFAULTS.relistIntervalMs,
      watchTimeoutSeconds: this.options.watchTimeoutSeconds ?? WATCH_DEFAULTS.watchTimeoutSeconds,
      backoff: this.options.backoff ?? { initialMs: 500, maxMs: 30000 },
    };
    // The feeds keep each object's converted value only (SnapshotBuilder.ingest).
    const kinds: Record<FeedName, KindName> = { services: 'Service', endpointslices: 'EndpointSlice', nodes: 'Node', pods: 'Pod' };
    const sources = (this.options.sources ?? clusterSources(this.options.kubeConfig, this.options.nodeName)).map(
      (s): FeedSource => ({
        name: s.name,
        path: s.path,
        ...(s.fieldSelector !== undefined ? { fieldSelector: s.fieldSelector } : {}),
        list: (signal, keep) => s.list(signal, keep),
        transform: (obj: KubernetesObject) => this.builder.ingest(kinds[s.name], s.transform ? s.transform(obj) : obj),
      }),
    );
    const listener = {
      changed: () => this.schedule(),
      recovered: (feed: Feed) => this.logger.info(`${feed.name}: watching again`),
      failed: (feed: Feed, err: Error, first: boolean) => this.failed(feed, err, first),
    };
    for (const source of sources) {
      const feed = new Feed(source, kubeClient(this.options.kubeConfig), timings, listener, this.logger, this.now);
      this.feeds.push(feed);
    }
    for (const feed of this.feeds) feed.start();
    const every = Math.max(50, Math.min(5000, this.staleAfterMs / 4));
    this.staleTimer = setInterval(() => this.checkStaleness(), every);
    this.staleTimer.unref();
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    const every = this.options.pathProbeIntervalMs ?? WATCH_DEFAULTS.pathProbeIntervalMs;
    if (!every || !this.running) return;
    this.probeTimer = setTimeout(() => void this.probe(Math.min(3000, every)).finally(() => this.scheduleProbe()), every);
    this.probeTimer.unref();
  }

  /** One GET /version with a deadline: does the path to the API server work right now? */
  private async probe(deadlineMs: number): Promise<void> {
    const client = kubeClient(this.options.kubeConfig);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), deadlineMs);
    let ok: boolean;
    try {
      await client.request({ method: 'GET', path: '/version', signal: controller.signal });
      ok = true;
    } catch {
      ok = false;
    } finally {
      clearTimeout(timer);
    }
    if (!this.running) return;
    if (!ok) {
      this.pathBrokenSince ??= this.now();
      return;
    }
    const since = this.pathBrokenSince;
    this.pathBrokenSince = undefined;
    if (since !== undefined) for (const feed of this.feeds) feed.pathHealed(since);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    running.delete(this);
    clearTimeout(this.debounce);
    clearInterval(this.staleTimer);
    clearTimeout(this.probeTimer);
    this.debounce = this.staleTimer = this.probeTimer = undefined;
    for (const feed of this.feeds.splice(0)) feed.stop();
  }

  /** The snapshot in force: the last one delivered, kept through API outages. */
  get snapshot(): ClusterSnapshot | undefined {
    return this.last?.snapshot;
  }

  get ready(): boolean {
    return this.last !== undefined;
  }

  status(): ClusterWatcherStatus {
    const now = this.now();
    const feeds: FeedStatus[] = this.feeds.map((f) => {
      const seen = f.lastActivityAt;
      const listedAt = f.lastListedAt;
      return {
        name: f.name,
        ...(seen !== undefined ? { lastEventAgeSeconds: Math.max(0, Math.round((now - seen) / 100) / 10) } : {}),
        stale: this.isStale(f, now),
        failing: f.failing,
        ...(f.currentResourceVersion ? { resourceVersion: f.currentResourceVersion } : {}),
        ...(listedAt !== undefined ? { lastListAt: new Date(listedAt) } : {}),
        ...(f.failing && f.lastError ? { lastError: f.lastError.message } : {}),
      };
    });
    return {
      ready: this.ready,
      failing: feeds.filter((f) => f.failing).map((f) => f.name),
      stale: feeds.filter((f) => f.stale).map((f) => f.name),
      feeds,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.last ? { lastSnapshotAt: this.last.at } : {}),
    };
  }

  /** Resolves with the first snapshot; rejects after `timeoutMs` naming the informers not yet synced. */
  async waitUntilReady(timeoutMs = 30000): Promise<ClusterSnapshot> {
    if (this.last) return this.last.snapshot;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => this.readyWaiters.push(resolve)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const pending = this.feeds.filter((f) => !f.listed).map((f) => f.name);
            reject(new Error(`Kubernetes API not synced after ${timeoutMs} ms (waiting for ${pending.join(', ') || 'first snapshot'}${this.lastError ? `; last error: ${this.lastError.message}` : ''})`));
          }, timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return this.last!.snapshot;
  }

  /** A feed that has listed once and has had no sign of life for longer than staleAfterMs. */
  private isStale(feed: Feed, now: number): boolean {
    const seen = feed.lastActivityAt;
    return seen !== undefined && now - seen > this.staleAfterMs;
  }

  /** Staleness episodes: one warning and one Node Event when one starts, one line when it ends. */
  private checkStaleness(): void {
    const now = this.now();
    for (const feed of this.feeds) {
      const stale = this.isStale(feed, now);
      const since = this.staleSince.get(feed.name);
      if (stale && since === undefined) {
        this.staleSince.set(feed.name, now);
        const age = Math.round((now - feed.lastActivityAt!) / 1000);
        const why = feed.failing && feed.lastError ? ` (last error: ${feed.lastError.message})` : ' (the watch is connected but silent, or being restarted)';
        const message = `${feed.name}: no event, bookmark or list from the Kubernetes API for ${age} s${why}; the last known state stays in force: data path and announcements unchanged`;
        this.logger.warn(message, { resource: feed.name });
        this.options.events?.warning({ kind: 'Node', name: this.options.nodeName }, 'KubeFeedStale', message);
      } else if (!stale && since !== undefined) {
        this.staleSince.delete(feed.name);
        const message = `${feed.name}: the Kubernetes API feed is live again after ${Math.round((now - since) / 1000 + this.staleAfterMs / 1000)} s without news`;
        this.logger.info(message, { resource: feed.name });
        this.options.events?.normal({ kind: 'Node', name: this.options.nodeName }, 'KubeFeedRecovered', message);
      }
    }
  }

  /** A list or watch failed: the feed keeps its cache and retries on its own. */
  private failed(feed: Feed, err: Error, first: boolean): void {
    if (!this.running) return;
    this.lastError = { resource: feed.name, message: err.message, at: new Date(this.now()) };
    watchErrors.inc({ resource: feed.name });
    if (first) this.logger.warn(`${feed.name}: list/watch failed, keeping the last known state: ${err.message}`);
  }

  private schedule(): void {
    if (this.debounce || !this.running) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.flush();
    }, this.options.debounceMs ?? 100);
  }

  private flush(): void {
    if (!this.running || this.feeds.some((f) => !f.listed)) return;
    const byFeed = (name: FeedName) => this.feeds.find((f) => f.name === name)?.objects() ?? [];
    const snapshot = this.builder.build({
      services: byFeed('services'),
      endpointSlices: byFeed('endpointslices'),
      nodes: byFeed('nodes'),
      localPods: byFeed('pods'),
    });
    if (this.last && sameSnapshot(this.last.snapshot, snapshot)) return;
    this.last = { snapshot, at: new Date() };
    readyGauge.set(1);
    snapshots.inc();
    for (const resolve of this.readyWaiters.splice(0)) resolve();
    try {
      this.options.onChange(snapshot);
    } catch (err) {
      this.logger.error(`snapshot consumer failed: ${(err as Error).message}`);
    }
  }
}
