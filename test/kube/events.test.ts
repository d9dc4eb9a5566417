import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeEventSink } from '../../src/kube/index.js';
import { LabApiServer } from '../../src/lab/index.js';

describe('KubeEventSink (real core/v1 Events through client-node)', () => {
  const server = new LabApiServer();
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  const events = (namespace?: string) => server.list('v1', 'Event', namespace);

  it('creates an Event with the involved object, reason, type and source', async () => {
    const sink = new KubeEventSink({ kubeConfig: server.kubeConfig(), host: 'node-a' });
    sink.warning({ kind: 'Service', namespace: 'shop', name: 'web', uid: 'u-1' }, 'InvalidTunnelAddress', 'cmd.nu/tunnel: "x" is not an IP address');
    sink.normal({ kind: 'Node', name: 'node-a' }, 'Announced', 'announcing 1 VIP');
    await sink.flush();
    const [warning] = events('shop');
    expect(warning).toMatchObject({
      metadata: { namespace: 'shop' },
      involvedObject: { kind: 'Service', apiVersion: 'v1', namespace: 'shop', name: 'web', uid: 'u-1' },
      type: 'Warning',
      reason: 'InvalidTunnelAddress',
      message: 'cmd.nu/tunnel: "x" is not an IP address',
      count: 1,
      source: { component: 'kube-service-tunnel', host: 'node-a' },
      reportingComponent: 'kube-service-tunnel',
      reportingInstance: 'node-a',
    });
    expect(String(warning!.metadata!.name)).toMatch(/^web\./);
    // Cluster-scoped objects' events go to "default", as the kubelet's do.
    expect(events('default').map((e) => [e.reason, (e.involvedObject as { kind: string }).kind])).toEqual([['Announced', 'Node']]);
  });

  it('aggregates repeats of the same event into a count instead of new Events', async () => {
    let now = 1_000_000;
    const sink = new KubeEventSink({ kubeConfig: server.kubeConfig(), host: 'node-a', now: () => now, countUpdateIntervalMs: 10_000 });
    const ref = { kind: 'Service' as const, namespace: 'agg', name: 'web' };
    for (let i = 0; i < 50; i++) {
      sink.warning(ref, 'NoPool', 'no pool allows 203.0.113.7');
      now += 500;
      await sink.flush();
    }
    sink.warning(ref, 'NoPool', 'a different message is a different event');
    await sink.flush();
    const list = events('agg');
    expect(list).toHaveLength(2);
    const first = list.find((e) => e.message === 'no pool allows 203.0.113.7')!;
    // 25 s of repeats with a 10 s update interval: the count was written back, twice.
    expect(first.count).toBeGreaterThan(1);
    expect(first.count).toBeLessThanOrEqual(50);
    const patches = server.requests.filter((r) => r.method === 'PATCH' && r.path.startsWith('/api/v1/namespaces/agg/events/'));
    expect(patches.length).toBeGreaterThanOrEqual(2);
    expect(patches.length).toBeLessThanOrEqual(3);
  });

  it('rate-limits distinct events and never throws when the API is down', async () => {
    const now = 5_000_000;
    const sink = new KubeEventSink({ kubeConfig: server.kubeConfig(), host: 'node-a', now: () => now, rateLimit: { burst: 3, perSecond: 0.1 } });
    for (let i = 0; i < 10; i++) sink.warning({ kind: 'Pod', namespace: 'rl', name: `p${i}` }, 'Broken', `pod ${i}`);
    await sink.flush();
    expect(events('rl')).toHaveLength(3);

    await server.stop();
    try {
      const offline = new KubeEventSink({ kubeConfig: server.kubeConfig(), host: 'node-a' });
      expect(() => offline.warning({ kind: 'Service', namespace: 'down', name: 'x' }, 'Whatever', 'API is down')).not.toThrow();
      await offline.flush();
    } finally {
      await server.start();
    }
    expect(events('down')).toHaveLength(0);
  });
});
