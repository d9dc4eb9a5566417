// The lab API server's wire protocol, checked with plain HTTP (what any client sees).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, EventsV1Api } from '@kubernetes/client-node';
import { LabApiServer } from '../../src/lab/index.js';
import { node, pod, service } from './fixtures.js';

interface WatchLine {
  type: string;
  object: { metadata?: { name?: string; resourceVersion?: string }; code?: number; reason?: string };
}

describe('LabApiServer wire protocol', () => {
  const server = new LabApiServer({ bookmarkIntervalMs: 100 });
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  const call = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
    const res = await fetch(`${server.url}${path}`, { method, headers: { 'Content-Type': contentType }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  /** Reads a watch stream until `count` lines arrived or the server ends it. */
  const watch = async (path: string, count: number, during?: () => void): Promise<WatchLine[]> => {
    const controller = new AbortController();
    const res = await fetch(`${server.url}${path}`, { signal: controller.signal });
    expect(res.status).toBe(200);
    const lines: WatchLine[] = [];
    const decoder = new TextDecoder();
    let buffer = '';
    during?.();
    try {
      for await (const chunk of res.body!) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buffer.slice(0, nl)) as WatchLine);
          buffer = buffer.slice(nl + 1);
        }
        if (lines.length >= count) break;
      }
    } finally {
      controller.abort();
    }
    return lines;
  };

  it('creates, reads, replaces with optimistic concurrency, and deletes', async () => {
    const created = await call('POST', '/api/v1/namespaces/crud/services', service('web', { namespace: 'crud' }));
    expect(created.status).toBe(201);
    expect(created.body.metadata).toMatchObject({ name: 'web', namespace: 'crud', uid: expect.any(String), resourceVersion: expect.stringMatching(/^\d+$/) });
    expect((await call('POST', '/api/v1/namespaces/crud/services', service('web', { namespace: 'crud' }))).body).toMatchObject({ kind: 'Status', code: 409, reason: 'AlreadyExists' });

    const stale = { ...created.body, metadata: { ...created.body.metadata, resourceVersion: '1' } };
    expect((await call('PUT', '/api/v1/namespaces/crud/services/web', stale)).body).toMatchObject({ code: 409, reason: 'Conflict' });
    const updated = await call('PUT', '/api/v1/namespaces/crud/services/web', { ...created.body, spec: { type: 'NodePort' }, status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } });
    expect(updated.status).toBe(200);
    expect(updated.body.spec.type).toBe('NodePort');
    // Status is the /status subresource's: the main resource ignores it.
    expect(updated.body.status).toBeUndefined();
    expect(Number(updated.body.metadata.resourceVersion)).toBeGreaterThan(Number(created.body.metadata.resourceVersion));

    expect((await call('GET', '/api/v1/namespaces/crud/services/web')).body.spec.type).toBe('NodePort');
    expect((await call('DELETE', '/api/v1/namespaces/crud/services/web')).status).toBe(200);
    expect((await call('GET', '/api/v1/namespaces/crud/services/web')).body).toMatchObject({ kind: 'Status', code: 404, reason: 'NotFound' });
    expect((await call('GET', '/api/v1/widgets')).status).toBe(404);
  });

  it('patches with merge, strategic merge (as merge) and JSON patch; /status only changes status', async () => {
    server.apply(service('p', { namespace: 'patch', vip: '203.0.113.1' }));
    const merge = await call('PATCH', '/api/v1/namespaces/patch/services/p', { metadata: { annotations: { a: 'b', 'cmd.nu/tunnel': null } } }, 'application/merge-patch+json');
    expect(merge.body.metadata.annotations).toEqual({ a: 'b' });
    const smp = await call('PATCH', '/api/v1/namespaces/patch/services/p/status', { status: { loadBalancer: { ingress: [{ ip: '203.0.113.5' }] } }, spec: { type: 'Ignored' } }, 'application/strategic-merge-patch+json');
    expect(smp.body.status.loadBalancer.ingress).toEqual([{ ip: '203.0.113.5' }]);
    expect(smp.body.spec.type).toBe('ClusterIP');
    const jp = await call('PATCH', '/api/v1/namespaces/patch/services/p/status', [{ op: 'replace', path: '/status/loadBalancer/ingress/0/ip', value: '203.0.113.6' }], 'application/json-patch+json');
    expect(jp.body.status.loadBalancer.ingress).toEqual([{ ip: '203.0.113.6' }]);
    expect((await call('PATCH', '/api/v1/namespaces/patch/services/p', [{ op: 'test', path: '/spec/type', value: 'NodePort' }], 'application/json-patch+json')).status).toBe(422);
    expect((await call('PATCH', '/api/v1/namespaces/patch/services/p', {}, 'application/apply-patch+yaml')).status).toBe(415);
    // A patch that changes nothing does not bump the resourceVersion (no watch event).
    const again = await call('PATCH', '/api/v1/namespaces/patch/services/p', { metadata: { annotations: { a: 'b' } } }, 'application/merge-patch+json');
    expect(again.body.metadata.resourceVersion).toBe(jp.body.metadata.resourceVersion);
  });

  it('lists with label and field selectors and a list resourceVersion', async () => {
    server.apply(pod('on-a', 'node-a', '198.51.100.1', { namespace: 'sel' }));
    server.apply(pod('on-b', 'node-b', '198.51.100.2', { namespace: 'sel' }));
    server.apply(node('n-tunnel', { labels: { node: 'tunnel', zone: 'z1' } }));
    server.apply(node('n-plain', { labels: { zone: 'z2' } }));
    const pods = await call('GET', `/api/v1/pods?fieldSelector=${encodeURIComponent('spec.nodeName=node-a')}`);
    expect(pods.body).toMatchObject({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(server.store.resourceVersion) } });
    expect(pods.body.items.map((p: { metadata: { name: string } }) => p.metadata.name)).toEqual(['on-a']);
    const names = async (sel: string) => (await call('GET', `/api/v1/nodes?labelSelector=${encodeURIComponent(sel)}`)).body.items.map((n: { metadata: { name: string } }) => n.metadata.name);
    expect(await names('node=tunnel')).toEqual(['n-tunnel']);
    expect(await names('zone in (z1,z2),node!=tunnel')).toEqual(['n-plain']);
    expect(await names('!node,zone')).toEqual(['n-plain']);
    expect((await call('GET', `/api/v1/nodes?labelSelector=${encodeURIComponent('a in b')}`)).status).toBe(400);
  });

  it('watches: replay from a resourceVersion, selector transitions, bookmarks, timeoutSeconds', async () => {
    const start = server.store.resourceVersion;
    server.apply(pod('w1', 'node-a', '198.51.100.3', { namespace: 'watch' }));
    const lines = await watch(`/api/v1/namespaces/watch/pods?watch=true&resourceVersion=${start}&fieldSelector=spec.nodeName%3Dnode-a&allowWatchBookmarks=true`, 5, () => {
      server.apply(pod('w1', 'node-a', '198.51.100.3', { namespace: 'watch', containerId: 'containerd://2' }));
      server.apply(pod('w1', 'node-b', '198.51.100.3', { namespace: 'watch' })); // leaves the selection
      server.apply(pod('w2', 'node-b', '198.51.100.4', { namespace: 'watch' })); // never in it
      server.apply(pod('w2', 'node-a', '198.51.100.4', { namespace: 'watch' })); // enters it
    });
    expect(lines.map((l) => `${l.type} ${l.object.metadata?.name ?? ''}`)).toEqual(['ADDED w1', 'MODIFIED w1', 'DELETED w1', 'ADDED w2', 'BOOKMARK ']);
    expect(Number(lines[4]!.object.metadata!.resourceVersion)).toBe(server.store.resourceVersion);

    // No resourceVersion: the current objects first, as ADDED.
    const initial = await watch('/api/v1/namespaces/watch/pods?watch=1', 2);
    expect(initial.map((l) => `${l.type} ${l.object.metadata?.name}`)).toEqual(['ADDED w1', 'ADDED w2']);

    const t0 = Date.now();
    expect(await watch('/api/v1/nodes?watch=true&resourceVersion=' + server.store.resourceVersion + '&timeoutSeconds=1', 100)).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });

  it('answers a watch from a compacted resourceVersion with ERROR 410 Expired', async () => {
    const old = server.store.resourceVersion;
    server.apply(service('c', { namespace: 'compact' }));
    server.compact();
    const lines = await watch(`/api/v1/services?watch=true&resourceVersion=${old}`, 2);
    expect(lines).toEqual([{ type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired' }) }]);
    // From the current revision it works.
    const ok = await watch(`/api/v1/services?watch=true&resourceVersion=${server.store.resourceVersion}&timeoutSeconds=1`, 1);
    expect(ok).toEqual([]);
  });

  it('serves the typed client-node APIs: events.k8s.io/v1 create, services/status PUT', async () => {
    const kc = server.kubeConfig();
    const events = kc.makeApiClient(EventsV1Api);
    const created = await events.createNamespacedEvent({
      namespace: 'typed',
      body: { metadata: { generateName: 'web.' }, eventTime: new Date(), reportingController: 'cmd.nu/kube-service-tunnel', reportingInstance: 'node-a', action: 'Announce', reason: 'Announced', type: 'Normal', note: 'VIP announced', regarding: { kind: 'Service', namespace: 'typed', name: 'web' } },
    });
    expect(created.metadata?.name).toMatch(/^web\./);
    expect(server.list('events.k8s.io/v1', 'Event', 'typed').map((e) => e.reason)).toEqual(['Announced']);

    const core = kc.makeApiClient(CoreV1Api);
    const svc = await core.createNamespacedService({ namespace: 'typed', body: { metadata: { name: 'web' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } } });
    svc.status = { loadBalancer: { ingress: [{ ip: '203.0.113.40' }] } };
    const replaced = await core.replaceNamespacedServiceStatus({ name: 'web', namespace: 'typed', body: svc });
    expect(replaced.status?.loadBalancer?.ingress?.map((i) => i.ip)).toEqual(['203.0.113.40']);
    // The resourceVersion it was read at is now stale: 409 Conflict.
    await expect(core.replaceNamespacedServiceStatus({ name: 'web', namespace: 'typed', body: svc })).rejects.toMatchObject({ code: 409 });
  });

  it('seeds from multi-document YAML and keeps its port across stop/start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kst-seed-'));
    try {
      const file = join(dir, 'cluster.yaml');
      await writeFile(
        file,
        ['apiVersion: v1\nkind: Namespace\nmetadata:\n  name: seeded', '---', 'apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s1, namespace: seeded}\n  spec: {type: ClusterIP}', '---', ''].join('\n'),
      );
      const applied = await server.seedFiles([file]);
      expect(applied.map((o) => `${o.kind} ${o.metadata?.name}`)).toEqual(['Namespace seeded', 'Service s1']);
      expect(() => server.seedYaml('apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}', 'bad.yaml')).toThrow(/bad.yaml: document 1 \(Widget w\): .*unsupported/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const url = server.url;
    await server.stop();
    await expect(fetch(`${url}/version`)).rejects.toThrow();
    await server.start();
    expect(server.url).toBe(url);
    expect((await call('GET', '/api/v1/namespaces/seeded/services/s1')).status).toBe(200);
    expect(server.kubeconfigYaml()).toContain(`server: ${url}`);
  });
});
