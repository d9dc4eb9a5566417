import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { ClusterWatcher } from '../../src/kube/index.js';
import { LabApiServer, waitFor } from '../../src/lab/index.js';
import type { ClusterSnapshot } from '../../src/model/types.js';
import { NODE, endpointSlice, node, pod, service } from './fixtures.js';

describe('ClusterWatcher against the lab API server (real client-node informers)', () => {
  let server: LabApiServer;
  let watcher: ClusterWatcher;
  let snapshots: ClusterSnapshot[];

  const latest = () => snapshots[snapshots.length - 1];
  const until = (cond: (s: ClusterSnapshot) => boolean, timeoutMs = 10000) => waitFor(() => latest() !== undefined && cond(latest()!), timeoutMs, 20);

  beforeEach(async () => {
    server = new LabApiServer();
    await server.start();
    snapshots = [];
    watcher = new ClusterWatcher({
      kubeConfig: server.kubeConfig(),
      nodeName: NODE,
      onChange: (s) => snapshots.push(s),
      debounceMs: 20,
      backoff: { initialMs: 100, maxMs: 400 },
    });
  });

  afterEach(async () => {
    await watcher.stop();
    await server.stop();
  });

  it('delivers the first snapshot only when every informer has synced', async () => {
    server.apply(node(NODE, { labels: { node: 'tunnel' } }));
    server.apply(service('web', { vip: '203.0.113.10' }));
    server.apply(endpointSlice('web-1', 'web', ['198.51.100.11']));
    server.apply(pod('web-0', NODE, '198.51.100.11'));
    server.apply(pod('elsewhere', 'node-b', '198.51.100.12'));
    expect(watcher.ready).toBe(false);
    await watcher.start();
    const first = await watcher.waitUntilReady(10000);
    expect(snapshots).toHaveLength(1);
    expect(first.nodes.map((n) => [n.name, n.labels, n.internalIps, n.ready])).toEqual([[NODE, { node: 'tunnel' }, ['192.0.2.10'], true]]);
    expect(first.services.map((s) => [s.namespace, s.name, s.annotations['cmd.nu/tunnel']])).toEqual([['default', 'web', '203.0.113.10']]);
    expect(first.services[0]!.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(first.endpointSlices.map((e) => [e.name, e.serviceName, e.endpoints.map((p) => p.address)])).toEqual([['web-1', 'web', ['198.51.100.11']]]);
    // Only this node's pods (field selector spec.nodeName).
    expect(first.localPods.map((p) => p.name)).toEqual(['web-0']);
    expect(watcher.status()).toMatchObject({ ready: true, failing: [] });
  });

  it('add, update and delete of each resource type reach the snapshot', async () => {
    await watcher.start();
    const empty = await watcher.waitUntilReady(10000);
    expect(empty).toEqual({ services: [], endpointSlices: [], nodes: [], localPods: [] });

    server.apply(node(NODE));
    server.apply(service('web'));
    server.apply(endpointSlice('web-1', 'web', ['198.51.100.11']));
    server.apply(pod('web-0', NODE, '198.51.100.11'));
    await until((s) => s.nodes.length === 1 && s.services.length === 1 && s.endpointSlices.length === 1 && s.localPods.length === 1);

    server.apply(node(NODE, { labels: { node: 'tunnel' }, ready: false }));
    server.apply(service('web', { vip: '203.0.113.20' }));
    server.apply(endpointSlice('web-1', 'web', ['198.51.100.11', '198.51.100.12'], { ready: false }));
    server.apply(pod('web-0', NODE, '198.51.100.11', { containerId: 'containerd://restarted' }));
    await until(
      (s) =>
        s.nodes[0]?.labels['node'] === 'tunnel' &&
        s.nodes[0].ready === false &&
        s.services[0]?.annotations['cmd.nu/tunnel'] === '203.0.113.20' &&
        s.endpointSlices[0]?.endpoints.length === 2 &&
        s.endpointSlices[0].endpoints.every((e) => !e.ready) &&
        s.localPods[0]?.containerIds[0] === 'containerd://restarted',
    );

    // A pod moving to another node leaves this node's view (the server sends DELETED).
    server.apply(pod('web-0', 'node-b', '198.51.100.11'));
    await until((s) => s.localPods.length === 0);

    server.remove('v1', 'Node', NODE);
    server.remove('v1', 'Service', 'web', 'default');
    server.remove('discovery.k8s.io/v1', 'EndpointSlice', 'web-1', 'default');
    await until((s) => s.nodes.length === 0 && s.services.length === 0 && s.endpointSlices.length === 0);
  });

  it('does not deliver a snapshot for changes the model does not read (node heartbeats)', async () => {
    server.apply(node(NODE));
    server.apply(service('web'));
    await watcher.start();
    const first = await watcher.waitUntilReady(10000);
    const heartbeat = node(NODE);
    (heartbeat.status as { conditions: object[] }).conditions = [{ type: 'Ready', status: 'True', lastHeartbeatTime: '2026-01-01T00:00:10Z' }];
    server.apply(heartbeat);
    server.apply(service('web2'));
    await until((s) => s.services.length === 2);
    expect(snapshots).toHaveLength(2);
    // Unchanged parts are the very same values (cheap comparisons downstream).
    expect(latest()!.nodes[0]).toBe(first.nodes[0]);
    expect(latest()!.services[0]).toBe(first.services[0]);
    server.apply({ ...heartbeat, status: { ...(heartbeat.status as object), conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: '2026-01-01T00:00:20Z' }] } });
    await new Promise((r) => setTimeout(r, 300));
    expect(snapshots).toHaveLength(2);
  });

  it('a watch that gets 410 Expired relists without dropping state in between', async () => {
    server.apply(service('keep'));
    server.apply(service('gone'));
    await watcher.start();
    await watcher.waitUntilReady(10000);
    const listsBefore = server.requests.filter((r) => r.path === '/api/v1/services' && !r.query.includes('watch=true')).length;

    // Outage long enough for the history to be compacted: resuming watches get 410.
    await server.stop();
    server.remove('v1', 'Service', 'gone', 'default');
    server.apply(service('new'));
    server.compact();
    const during = snapshots.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(snapshots).toHaveLength(during);
    expect(watcher.snapshot!.services.map((s) => s.name)).toEqual(['gone', 'keep']);
    expect(watcher.status().failing.length).toBeGreaterThan(0);
    await server.start();

    await until((s) => s.services.map((x) => x.name).join() === 'keep,new');
    const listsAfter = server.requests.filter((r) => r.path === '/api/v1/services' && !r.query.includes('watch=true')).length;
    expect(listsAfter).toBeGreaterThan(listsBefore);
    // Every snapshot on the way kept the object that never went away.
    expect(snapshots.every((s) => s.services.some((x) => x.name === 'keep'))).toBe(true);
    await waitFor(() => watcher.status().failing.length === 0, 5000);
  });

  it('a watch ended by a 410 ERROR event relists and keeps its objects', async () => {
    server.apply(service('keep'));
    await watcher.start();
    await watcher.waitUntilReady(10000);
    const mark = server.requests.length;
    server.compact();
    server.expireWatches();
    await waitFor(() => server.requests.slice(mark).some((r) => r.path === '/api/v1/services' && !r.query.includes('watch')), 10000, 20);
    server.apply(service('after'));
    await until((s) => s.services.map((x) => x.name).join() === 'after,keep');
    expect(snapshots.every((s) => s.services.some((x) => x.name === 'keep'))).toBe(true);
    expect(watcher.status().failing).toEqual([]);
  });

  it('keeps the last state through a 5 s API outage and converges afterwards', async () => {
    server.apply(node(NODE));
    server.apply(service('web', { vip: '203.0.113.30' }));
    server.apply(service('old'));
    server.apply(endpointSlice('web-1', 'web', ['198.51.100.11']));
    await watcher.start();
    const before = await watcher.waitUntilReady(10000);

    await server.stop();
    // Changes made while the agent cannot see the API server.
    server.apply(service('web', { vip: '203.0.113.31' }));
    server.remove('v1', 'Service', 'old', 'default');
    server.apply(endpointSlice('web-1', 'web', ['198.51.100.11', '198.51.100.13']));
    server.apply(pod('web-1', NODE, '198.51.100.13'));
    await new Promise((r) => setTimeout(r, 5000));
    expect(watcher.snapshot).toEqual(before);
    expect(latest()).toEqual(before);
    expect(watcher.status().lastError).toBeDefined();
    expect(watcher.status().failing.length).toBeGreaterThan(0);
    expect(watcher.ready).toBe(true);

    await server.start();
    await until(
      (s) =>
        s.services.map((x) => x.name).join() === 'web' &&
        s.services[0]!.annotations['cmd.nu/tunnel'] === '203.0.113.31' &&
        s.endpointSlices[0]!.endpoints.length === 2 &&
        s.localPods.length === 1,
      15000,
    );
    // Nothing was ever emptied on the way.
    expect(snapshots.every((s) => s.nodes.length === 1)).toBe(true);
    await waitFor(() => watcher.status().failing.length === 0, 5000);
  }, 40000);
});
