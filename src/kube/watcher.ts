// ClusterWatcher: the agent's view of the cluster. Four informers (Services,
// EndpointSlices, Nodes, and the Pods on this node) keep the current objects in memory;
// changes are coalesced into one ClusterSnapshot delivered to `onChange`.
//
// Fail static: the informers' caches are the state. An error never clears them, so while
// the API server is unreachable the last snapshot stays in force; failed informers restart
// with backoff and resume their watch, and one that expired (410) relists and replaces its
// cache in one step (objects deleted meanwhile disappear, the others never blink).
// No snapshot is emitted before every informer has listed once: a partial view (services
// without their endpoints) would withdraw working announcements.
import { CoreV1Api, DiscoveryV1Api, ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { Counter, Gauge } from 'prom-client';
import type { ClusterSnapshot } from '../model/types.js';
import { metricsRegistry, silentLogger, type Logger } from '../observe/index.js';
import { describeIssue, objectConverters } from './objects.js';
import { SnapshotBuilder, sameSnapshot, type ObjectConverters } from './snapshot.js';

export type FeedName = 'services' | 'endpointslices' | 'nodes' | 'pods';

const watchErrors = new Counter({ name: 'kst_kube_watch_errors_total', help: 'Informer list/watch failures, by resource.', labelNames: ['resource'], registers: [metricsRegistry] });
const relists = new Counter({ name: 'kst_kube_lists_total', help: 'Full lists (initial sync and relists after 410 Expired), by resource.', labelNames: ['resource'], registers: [metricsRegistry] });
const snapshots = new Counter({ name: 'kst_kube_snapshots_total', help: 'Cluster snapshots delivered to the agent.', registers: [metricsRegistry] });
const readyGauge = new Gauge({ name: 'kst_kube_synced', help: '1 once every informer has listed once.', registers: [metricsRegistry] });

export interface ClusterWatcherOptions {
  readonly kubeConfig: KubeConfig;
  /** This node: only its pods are watched. */
  readonly nodeName: string;
  /** Called with each new snapshot (never with an unchanged one). */
  readonly onChange: (snapshot: ClusterSnapshot) => void;
  /** Changes within this window become one snapshot. Default 100 ms. */
  readonly debounceMs?: number;
  /** Restart delay after an informer failure: doubles from `initialMs` up to `maxMs`. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** The server ends each watch after this long so a silently dead connection is noticed. Default 300 s. */
  readonly watchTimeoutSeconds?: number;
  readonly converters?: ObjectConverters;
  readonly logger?: Logger;
}

export interface WatchError {
  readonly resource: FeedName;
  readonly message: string;
  readonly at: Date;
}

export interface ClusterWatcherStatus {
  /** Every informer has listed once and a snapshot was delivered. */
  readonly ready: boolean;
  /** Informers currently failing (the last snapshot stays in force meanwhile). */
  readonly failing: readonly FeedName[];
  readonly lastError?: WatchError;
  readonly lastSnapshotAt?: Date;
}

/**
 * client-node's Watch, asking for bookmarks (keeps the resume point fresh, so fewer 410s)
 * and a server-side timeout, and telling us when a watch is established (the informer
 * has recovered) so backoff and the failing state reset.
 */
class ReportingWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly timeoutSeconds: number,
    private readonly onEstablished: () => void,
  ) {
    super(config);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    let failed = false;
    const controller = await super.watch(path, { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: this.timeoutSeconds }, callback, (err) => {
      if (err) failed = true;
      done(err);
    });
    if (!failed) this.onEstablished();
    return controller;
  }
}

interface Feed {
  readonly name: FeedName;
  readonly informer: ListWatch<KubernetesObject>;
  listed: boolean;
  failing: boolean;
  attempt: number;
  retry?: NodeJS.Timeout;
}

export class ClusterWatcher {
  private readonly feeds: Feed[] = [];
  private readonly builder: SnapshotBuilder;
  private readonly logger: Logger;
  private debounce?: NodeJS.Timeout;
  private running = false;
  private last?: { snapshot: ClusterSnapshot; at: Date };
  private lastError?: WatchError;
  private readonly readyWaiters: (() => void)[] = [];

  constructor(private readonly options: ClusterWatcherOptions) {
    this.logger = (options.logger ?? silentLogger()).child({ component: 'kube' });
    // Each object version converts once (memoised), so each issue is logged once per version.
    const converters = options.converters ?? objectConverters((issue) => this.logger.warn(describeIssue(issue)));
    this.builder = new SnapshotBuilder(converters, (kind, obj, err) =>
      this.logger.warn(`cannot read ${kind} ${obj.metadata?.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata?.name}: ${(err as Error).message}`),
    );
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const kc = this.options.kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const podsOnNode = `spec.nodeName=${this.options.nodeName}`;
    this.addFeed('services', '/api/v1/services', () => core.listServiceForAllNamespaces());
    this.addFeed('endpointslices', '/apis/discovery.k8s.io/v1/endpointslices', () => discovery.listEndpointSliceForAllNamespaces());
    this.addFeed('nodes', '/api/v1/nodes', () => core.listNode());
    this.addFeed('pods', '/api/v1/pods', () => core.listPodForAllNamespaces({ fieldSelector: podsOnNode }), podsOnNode);
    await Promise.all(this.feeds.map((f) => f.informer.start()));
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.debounce);
    this.debounce = undefined;
    for (const feed of this.feeds.splice(0)) {
      clearTimeout(feed.retry);
      await feed.informer.stop();
    }
  }

  /** The snapshot in force: the last one delivered, kept through API outages. */
  get snapshot(): ClusterSnapshot | undefined {
    return this.last?.snapshot;
  }

  get ready(): boolean {
    return this.last !== undefined;
  }

  status(): ClusterWatcherStatus {
    return {
      ready: this.ready,
      failing: this.feeds.filter((f) => f.failing).map((f) => f.name),
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

  private addFeed(name: FeedName, path: string, list: () => Promise<KubernetesListObject<KubernetesObject>>, fieldSelector?: string): void {
    // `feed` is assigned below; the callbacks only run after start().
    const watch = new ReportingWatch(this.options.kubeConfig, this.options.watchTimeoutSeconds ?? 300, () => this.recovered(feed));
    const listAndMark = async () => {
      const result = await list();
      relists.inc({ resource: name });
      feed.listed = true;
      this.recovered(feed);
      // The informer applies the list right after this resolves; the debounced flush runs later.
      this.schedule();
      return result;
    };
    const informer = new ListWatch<KubernetesObject>(path, watch, listAndMark, false, undefined, fieldSelector);
    const feed: Feed = { name, informer, listed: false, failing: false, attempt: 0 };
    const changed = () => {
      this.recovered(feed);
      this.schedule();
    };
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    informer.on('error', (err: unknown) => this.failed(feed, err));
    this.feeds.push(feed);
  }

  private recovered(feed: Feed): void {
    if (feed.failing) this.logger.info(`${feed.name}: watching again`);
    feed.failing = false;
    feed.attempt = 0;
  }

  /** The informer gave up (list or watch failed): keep its cache, restart it later. */
  private failed(feed: Feed, err: unknown): void {
    if (!this.running || feed.retry) return; // stop() aborts watches, which reports an error
    const message = err instanceof Error ? err.message : String(err);
    this.lastError = { resource: feed.name, message, at: new Date() };
    watchErrors.inc({ resource: feed.name });
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 500, maxMs: 30000 };
    const delay = Math.min(maxMs, initialMs * 2 ** feed.attempt) * (0.8 + Math.random() * 0.4);
    feed.attempt += 1;
    if (!feed.failing) this.logger.warn(`${feed.name}: list/watch failed, keeping the last known state: ${message}`);
    feed.failing = true;
    feed.retry = setTimeout(() => {
      feed.retry = undefined;
      if (this.running) void feed.informer.start();
    }, delay);
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
    const byFeed = (name: FeedName) => this.feeds.find((f) => f.name === name)!.informer.list();
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
