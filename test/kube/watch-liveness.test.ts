// Watches that cannot hang silently (issue 12): the in-repo API server, the real
// client-node, and a TCP proxy in between that can wedge the connections open at a given
// moment (they stay open, nothing more arrives), as a stuck load balancer does.
import { afterEach, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import winston from 'winston';
import { ClusterWatcher, type ClusterWatcherOptions } from '../../src/kube/index.js';
import { FaultProxy, LabApiServer, waitFor } from '../../src/lab/index.js';
import { MemoryEventSink, ObserveServer, metricsRegistry } from '../../src/observe/index.js';
import { kubeReadiness } from '../../src/agent/status.js';
import type { ClusterSnapshot } from '../../src/model/types.js';
import { NODE, endpointSlice, node, service } from './fixtures.js';

/**
 * An HTTP front for the lab API server that answers a watch from a resourceVersion the
 * server does not have yet as kube-apiserver does ("Too large resource version", 504
 * Timeout): as an ERROR event in a 200 stream (the watch cache) or as the HTTP status.
 * Everything else is passed through to `target`, which a test may swap for another server.
 */
class StrictFront {
  tooLarge = 0;
  private readonly server: http.Server;
  port = 0;

  constructor(
    public target: LabApiServer,
    private readonly mode: 'event' | 'http',
  ) {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://front');
    const rv = Number(url.searchParams.get('resourceVersion') ?? 0);
    const current = this.target.store.resourceVersion;
    if (url.searchParams.get('watch') === 'true' && rv > current) {
      this.tooLarge += 1;
      const status = {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `Timeout: Too large resource version: ${rv}, current: ${current}`,
        reason: 'Timeout',
        details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 },
        code: 504,
      };
      res.writeHead(this.mode === 'http' ? 504 : 200, { 'Content-Type': 'application/json' });
      res.end(this.mode === 'http' ? JSON.stringify(status) : `${JSON.stringify({ type: 'ERROR', object: status })}\n`);
      return;
    }
    const target = new URL(this.target.url);
    const upstream = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
      // The server went away mid-stream: so does our answer (pipe alone would leave it open).
      answer.on('close', () => res.destroy());
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }
}

function kubeConfigFor(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'h5-test', server: url, skipTLSVerify: true }, { name: 'h5-test' });
  return kc;
}

function capturingLogger(lines: string[]): winston.Logger {
  const stream = new Writable({
    objectMode: true,
    write(info: { level: string; message: string }, _enc, done) {
      lines.push(`${info.level} ${info.message}`);
      done();
    },
  });
  return winston.createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream })] });
}

async function counterValue(name: string, labels: Record<string, string>): Promise<number> {
  const metric = metricsRegistry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((sum, v) => sum + v.value, 0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ClusterWatcher liveness (lab API server, real client, wedging proxy)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setUp(serverOpts: ConstructorParameters<typeof LabApiServer>[0], watcherOpts: Partial<ClusterWatcherOptions>, viaProxy = true) {
    const server = new LabApiServer(serverOpts);
    await server.start();
    cleanups.push(() => server.stop());
    let url = server.url;
    let proxy: FaultProxy | undefined;
    if (viaProxy) {
      proxy = new FaultProxy({ target: { host: '127.0.0.1', port: Number(new URL(server.url).port) } });
      await proxy.start();
      cleanups.push(() => proxy!.stop());
      url = proxy.url;
    }
    const snapshots: ClusterSnapshot[] = [];
    const lines: string[] = [];
    const watcher = new ClusterWatcher({
      kubeConfig: kubeConfigFor(url),
      nodeName: NODE,
      onChange: (s) => snapshots.push(s),
      debounceMs: 20,
      backoff: { initialMs: 100, maxMs: 400 },
      logger: capturingLogger(lines),
      // Off unless a test is about it: a probe would restart wedged watches on its own.
      pathProbeIntervalMs: 0,
      ...watcherOpts,
    });
    cleanups.push(() => watcher.stop());
    return { server, proxy, watcher, snapshots, lines };
  }

  it('a watch that stays connected but delivers nothing is restarted after the inactivity timeout, and a change made during the stall arrives', async () => {
    // No bookmarks within the test: only the inactivity timeout can notice the stall.
    const { server, proxy, watcher, snapshots, lines } = await setUp({ bookmarkIntervalMs: 600_000 }, { inactivityTimeoutMs: 1500, relistIntervalMs: 0 });
    server.apply(service('web', { vip: '203.0.113.10' }));
    await watcher.start();
    await watcher.waitUntilReady(10000);
    const restartsBefore = await counterValue('kst_kube_watch_restarts_total', { resource: 'services', reason: 'inactivity' });

    // Let the inactivity timers settle on fresh watches, then wedge all four.
    await sleep(200);
    expect(proxy!.stall()).toBeGreaterThanOrEqual(4);
    const wedgedAt = Date.now();
    await sleep(100);
    server.apply(service('web', { vip: '203.0.113.11' }));
    const changed = () => snapshots.at(-1)?.services[0]?.annotations['cmd.nu/tunnel'] === '203.0.113.11';

    // Still unseen well inside the timeout: the stall is real.
    await sleep(600);
    expect(changed()).toBe(false);
    await waitFor(changed, 10000, 20);
    const tookMs = Date.now() - wedgedAt;
    expect(tookMs).toBeLessThan(6000);
    expect(await counterValue('kst_kube_watch_restarts_total', { resource: 'services', reason: 'inactivity' })).toBeGreaterThan(restartsBefore);
    expect(lines.some((l) => /^warn services: no event and no bookmark for 1.5 s although the watch is connected: restarting it from resourceVersion \d+/.test(l))).toBe(true);
    // Restarted from the last resourceVersion, not relisted.
    expect(server.requests.filter((r) => r.path === '/api/v1/services' && !r.query.includes('watch=true'))).toHaveLength(1);
  }, 30000);

  it('requests accepted and never answered end at their deadline (lists and watches); the feeds recover on their own when the path heals', async () => {
    const { server, proxy, watcher, snapshots, lines } = await setUp({ bookmarkIntervalMs: 200 }, { inactivityTimeoutMs: 1000, requestTimeoutMs: 500, relistIntervalMs: 0 });
    server.apply(service('web', { vip: '203.0.113.50' }));
    proxy!.set({ kind: 'blackhole' });
    await watcher.start();
    // The first lists hang in the black hole: they end at the deadline and are retried.
    await expect(watcher.waitUntilReady(1500)).rejects.toThrow(/not synced after 1500 ms \(waiting for services, endpointslices, nodes, pods; last error: list \/\S+: no answer within 500 ms\)/);
    expect(watcher.status().failing).toHaveLength(4);
    proxy!.heal();
    await watcher.waitUntilReady(10000);

    // Black-out after the sync: open watches wedge, new requests are never answered.
    proxy!.set({ kind: 'blackhole' });
    await sleep(100);
    server.apply(service('web', { vip: '203.0.113.51' }));
    // The silent watches are restarted; their new requests end at the header deadline.
    await waitFor(() => lines.some((l) => l.includes('list/watch failed') && l.includes('no response headers within 500 ms')), 5000, 20);
    expect(snapshots.at(-1)!.services[0]!.annotations['cmd.nu/tunnel']).toBe('203.0.113.50');
    const healedAt = Date.now();
    proxy!.heal();
    await waitFor(() => snapshots.at(-1)?.services[0]?.annotations['cmd.nu/tunnel'] === '203.0.113.51', 10000, 20);
    // Backoff is at most 400 ms here: recovery is a matter of one retry, not of minutes.
    expect(Date.now() - healedAt).toBeLessThan(3000);
    await waitFor(() => watcher.status().failing.length === 0, 5000, 20);
  }, 30000);

  it('after a black-out shorter than the inactivity timeout, the path probe restarts the silent watches: a change made during it arrives within seconds of the heal', async () => {
    const { server, proxy, watcher, snapshots } = await setUp(
      { bookmarkIntervalMs: 600_000 },
      { inactivityTimeoutMs: 60_000, requestTimeoutMs: 2000, relistIntervalMs: 0, pathProbeIntervalMs: 300 },
    );
    server.apply(service('web', { vip: '203.0.113.60' }));
    await watcher.start();
    await watcher.waitUntilReady(10000);
    const inactivityBefore = await counterValue('kst_kube_watch_restarts_total', { reason: 'inactivity' });

    proxy!.set({ kind: 'blackhole' });
    server.apply(service('web', { vip: '203.0.113.61' }));
    await sleep(1500);
    expect(snapshots.at(-1)!.services[0]!.annotations['cmd.nu/tunnel']).toBe('203.0.113.60');
    const healedAt = Date.now();
    proxy!.heal();
    await waitFor(() => snapshots.at(-1)?.services[0]?.annotations['cmd.nu/tunnel'] === '203.0.113.61', 10000, 20);
    // Far below the 60 s inactivity timeout: a few probe intervals.
    expect(Date.now() - healedAt).toBeLessThan(5000);
    // Each feed came back through the probe: a silent watch restarted, or (when its watch
    // request had hung into the black-out and failed) its retry brought forward.
    expect(await counterValue('kst_kube_watch_restarts_total', { reason: 'inactivity' })).toBe(inactivityBefore);
    await waitFor(() => watcher.status().failing.length === 0, 5000, 20);
  }, 30000);

  it('a periodic relist that finds nothing new emits no snapshot; one that finds what a wedged watch missed heals it by diff', async () => {
    // requestTimeoutMs: stall() also wedges idle keep-alive connections, and a relist that
    // reuses one hangs until its deadline (30 s by default), then the next relist heals.
    const { server, proxy, watcher, snapshots } = await setUp({ bookmarkIntervalMs: 600_000 }, { inactivityTimeoutMs: 600_000, relistIntervalMs: 300, requestTimeoutMs: 2000 });
    server.apply(node(NODE));
    server.apply(service('web', { vip: '203.0.113.20' }));
    server.apply(service('other', { vip: '203.0.113.21' }));
    server.apply(endpointSlice('web-1', 'web', ['198.51.100.11']));
    await watcher.start();
    const first = await watcher.waitUntilReady(10000);
    const lists = () => server.requests.filter((r) => r.method === 'GET' && !r.query.includes('watch=true')).length;
    const listsBefore = lists();

    await sleep(1500);
    // Every feed relisted a few times (300 ms ± 20 %), and not one snapshot came of it.
    expect(lists() - listsBefore).toBeGreaterThanOrEqual(4 * 3);
    expect(snapshots).toHaveLength(1);
    expect(watcher.snapshot).toBe(first);

    // Divergence: the watches are wedged (and the inactivity timeout is far away), so only
    // a relist can bring the change. Unchanged objects keep their identity downstream.
    proxy!.stall();
    server.apply(endpointSlice('web-1', 'web', ['198.51.100.11', '198.51.100.12']));
    // Relists come every 300 ms, a wedged one is cut after 2 s; 20 s is room for a loaded machine.
    await waitFor(() => snapshots.at(-1)?.endpointSlices[0]?.endpoints.length === 2, 20000, 20);
    expect(snapshots).toHaveLength(2);
    const healed = snapshots[1]!;
    expect(healed.services[0]).toBe(first.services[0]);
    expect(healed.services[1]).toBe(first.services[1]);
    expect(healed.nodes[0]).toBe(first.nodes[0]);
  }, 60000);

  it('a resourceVersion that goes backwards (API server replaced by one with a fresh store) leads to a relist and the view converges', async () => {
    const { server, watcher, snapshots, lines } = await setUp({ bookmarkIntervalMs: 200 }, { inactivityTimeoutMs: 2000, relistIntervalMs: 0 }, false);
    for (const name of ['a', 'b', 'c', 'd']) server.apply(service(name));
    server.apply(node(NODE));
    await watcher.start();
    await watcher.waitUntilReady(10000);
    const rvBefore = Number(watcher.status().feeds.find((f) => f.name === 'services')!.resourceVersion);
    const port = Number(new URL(server.url).port);

    // A restored API server on the same address: its history starts again, so its
    // resourceVersions are lower than those we have seen.
    await server.stop();
    const restored = new LabApiServer({ port, bookmarkIntervalMs: 200 });
    cleanups.push(() => restored.stop());
    restored.apply(service('a'));
    restored.apply(service('e'));
    restored.apply(node(NODE));
    expect(restored.store.resourceVersion).toBeLessThan(rvBefore);
    await restored.start();

    // The restored server answers a watch from our (future) resourceVersion with silence, as
    // the real watch cache does: the watch is restarted once, then the feed relists, and the
    // list shows the jump back.
    await waitFor(() => snapshots.at(-1)?.services.map((s) => s.name).join() === 'a,e', 15000, 20);
    expect(lines.some((l) => /^warn services: relisting: (the resourceVersion went backwards|the API server does not have our resourceVersion|the restarted watch was silent too)/.test(l))).toBe(true);
    expect(lines.some((l) => /^warn services: .*resourceVersion \d+ is lower than \d+ seen before/.test(l))).toBe(true);
    // Nothing was emptied on the way.
    expect(snapshots.every((s) => s.nodes.length === 1)).toBe(true);
    // And it keeps watching the restored server: a later change arrives.
    restored.apply(service('f'));
    await waitFor(() => snapshots.at(-1)?.services.map((s) => s.name).join() === 'a,e,f', 10000, 20);
  }, 30000);

  it.each(['event', 'http'] as const)('"too large resource version" (as an ERROR %s) from a restored API server leads to a relist and the view converges', async (mode) => {
    const first = new LabApiServer({ bookmarkIntervalMs: 600_000 });
    await first.start();
    cleanups.push(() => first.stop());
    const front = new StrictFront(first, mode);
    await front.start();
    cleanups.push(() => front.stop());
    const snapshots: ClusterSnapshot[] = [];
    const lines: string[] = [];
    const watcher = new ClusterWatcher({
      kubeConfig: kubeConfigFor(`http://127.0.0.1:${front.port}`),
      nodeName: NODE,
      onChange: (s) => snapshots.push(s),
      debounceMs: 20,
      backoff: { initialMs: 100, maxMs: 400 },
      relistIntervalMs: 0,
      pathProbeIntervalMs: 0,
      logger: capturingLogger(lines),
    });
    cleanups.push(() => watcher.stop());
    for (const name of ['a', 'b', 'c', 'd']) first.apply(service(name));
    await watcher.start();
    await watcher.waitUntilReady(10000);

    // Restored from an older backup: its resourceVersions are behind ours, and it has no bookmarks to give that away.
    await first.stop();
    const restored = new LabApiServer({ bookmarkIntervalMs: 600_000 });
    cleanups.push(() => restored.stop());
    restored.apply(service('a'));
    restored.apply(service('e'));
    await restored.start();
    front.target = restored;

    await waitFor(() => snapshots.at(-1)?.services.map((s) => s.name).join() === 'a,e', 15000, 20);
    expect(front.tooLarge).toBeGreaterThan(0);
    expect(lines.some((l) => l.startsWith('warn services: relisting: the API server does not have our resourceVersion yet ("too large resource version")'))).toBe(true);
    restored.apply(service('f'));
    await waitFor(() => snapshots.at(-1)?.services.map((s) => s.name).join() === 'a,e,f', 10000, 20);
  }, 30000);

  it('staleness shows in status, metrics and readiness (one Node Event per episode) and the last snapshot stays in force', async () => {
    const events = new MemoryEventSink();
    const { server, proxy, watcher, snapshots } = await setUp({ bookmarkIntervalMs: 150 }, { inactivityTimeoutMs: 2500, staleAfterMs: 700, relistIntervalMs: 0, events });
    server.apply(service('web', { vip: '203.0.113.40' }));
    await watcher.start();
    await watcher.waitUntilReady(10000);
    const observe = new ObserveServer({ listen: '127.0.0.1:0' });
    observe.addReadinessCheck('kubernetes', () => kubeReadiness(watcher.status()));
    const { port } = await observe.start();
    cleanups.push(() => observe.stop());
    const readyz = async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
    await sleep(500);
    expect(watcher.status().stale).toEqual([]);
    expect(await readyz()).toBe(200);
    const before = snapshots.length;

    proxy!.stall();
    await waitFor(() => watcher.status().stale.length === 4, 5000, 20);
    expect(await readyz()).toBe(503);
    const status = watcher.status();
    expect(status.feeds.find((f) => f.name === 'services')!.lastEventAgeSeconds).toBeGreaterThanOrEqual(0.7);
    const metrics = await metricsRegistry.getSingleMetricAsString('kst_kube_feed_last_event_age_seconds');
    const age = Number(/kst_kube_feed_last_event_age_seconds\{feed="services"\} ([\d.]+)/.exec(metrics)?.[1]);
    expect(age).toBeGreaterThanOrEqual(0.7);
    const body = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { checks: { detail: string }[] };
    expect(body.checks[0]!.detail).toMatch(/^stale: services \(\d+ s\), endpointslices/);

    // The inactivity timeout restarts the watches; bookmarks flow again; ready again.
    await waitFor(() => watcher.status().stale.length === 0, 10000, 20);
    expect(await readyz()).toBe(200);
    const stale = events.events.filter((e) => e.reason === 'KubeFeedStale');
    expect(stale.map((e) => e.message.split(':')[0]).sort()).toEqual(['endpointslices', 'nodes', 'pods', 'services']);
    expect(stale.every((e) => e.type === 'Warning' && e.ref.kind === 'Node' && e.ref.name === NODE)).toBe(true);
    // The episode's end is noticed on the next staleness check.
    await waitFor(() => events.events.filter((e) => e.reason === 'KubeFeedRecovered').length === 4, 2000, 20);
    expect(events.events.filter((e) => e.reason === 'KubeFeedStale')).toHaveLength(4);
    // Never destructive: no snapshot came out of the whole episode.
    expect(snapshots).toHaveLength(before);
  }, 30000);
});
