// The lab API server's wire protocol, checked with plain HTTP (what any client sees).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinationV1Api, CoreV1Api, EventsV1Api, V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import { annotateService } from '../../src/kube/index.js';
import { parseGoTime, RFC3339, RFC3339_MICRO } from '../../src/lab/apiserver/go-time.js';
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
      body: { metadata: { generateName: 'web-' }, eventTime: new V1MicroTime(), reportingController: 'cmd.nu/kube-service-tunnel', reportingInstance: 'node-a', action: 'Announce', reason: 'Announced', type: 'Normal', note: 'VIP announced', regarding: { kind: 'Service', namespace: 'typed', name: 'web' } },
    });
    expect(created.metadata?.name).toMatch(/^web-/);
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

  it('serves stored objects as stored: copies out and in never change them; load() validates, versions and notifies watches', async () => {
    const applied = server.apply(service('kept', { namespace: 'copies', vip: '192.0.2.7' }));
    applied.metadata!.annotations!['cmd.nu/tunnel'] = '192.0.2.99';
    server.find('v1', 'Service', 'kept', 'copies')!.spec = { type: 'NodePort' };
    const read = await call('GET', '/api/v1/namespaces/copies/services/kept');
    expect(read.body).toMatchObject({ metadata: { annotations: { 'cmd.nu/tunnel': '192.0.2.7' } }, spec: { type: 'ClusterIP' } });

    const { lines, close, opened } = openWatch(server, `/api/v1/namespaces/copies/services?watch=true&resourceVersion=${server.store.resourceVersion}`);
    expect(await opened).toBe(200);
    const rv = server.store.resourceVersion;
    server.load(Array.from({ length: 300 }, (_, i) => service(`bulk-${String(i).padStart(3, '0')}`, { namespace: 'copies' })));
    expect(server.store.resourceVersion).toBe(rv + 300);
    expect(() => server.load([service('Not_A_Name', { namespace: 'copies' })])).toThrow(/422|is invalid/);
    const list = await call('GET', '/api/v1/namespaces/copies/services');
    // etcd's key order (bytewise), every object with its own resourceVersion.
    expect(list.body.items.map((o: { metadata: { name: string } }) => o.metadata.name)).toEqual(['bulk-000', ...Array.from({ length: 299 }, (_, i) => `bulk-${String(i + 1).padStart(3, '0')}`), 'kept']);
    expect(new Set(list.body.items.map((o: { metadata: { resourceVersion: string } }) => o.metadata.resourceVersion)).size).toBe(301);
    for (let i = 0; i < 100 && lines.length < 300; i++) await sleep(20);
    close();
    expect(lines.filter((l) => l.type === 'ADDED')).toHaveLength(300);
  });
});

/** Plain HTTP against a server: status code and JSON body. */
function caller(server: LabApiServer) {
  return async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
    const res = await fetch(`${server.url}${path}`, { method, headers: { 'Content-Type': contentType }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
}

/** Collects a watch stream's lines until aborted; `lines` fills while it runs. */
function openWatch(server: LabApiServer, path: string): { lines: WatchLine[]; close: () => void; opened: Promise<number> } {
  const controller = new AbortController();
  const lines: WatchLine[] = [];
  const opened = fetch(`${server.url}${path}`, { signal: controller.signal }).then((res) => {
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of res.body!) {
          buffer += decoder.decode(chunk as Uint8Array, { stream: true });
          let nl;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            lines.push(JSON.parse(buffer.slice(0, nl)) as WatchLine);
            buffer = buffer.slice(nl + 1);
          }
        }
      } catch {
        // aborted
      }
    })();
    return res.status;
  });
  return { lines, close: () => controller.abort(), opened };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Go's time layouts, as kube-apiserver parses Time and MicroTime", () => {
  it('MicroTime needs exactly six fractional digits; Time takes any fraction', () => {
    expect(() => parseGoTime(RFC3339_MICRO, '2026-12-07T09:00:09.410Z')).toThrow('parsing time "2026-12-07T09:00:09.410Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse ".410Z" as ".000000"');
    expect(() => parseGoTime(RFC3339_MICRO, '2026-12-07T09:00:09Z')).toThrow('cannot parse "Z" as ".000000"');
    expect(() => parseGoTime(RFC3339_MICRO, '2026-12-07T09:00:09.4100000Z')).toThrow('cannot parse "0Z" as "Z07:00"');
    expect(parseGoTime(RFC3339_MICRO, '2026-12-07T09:00:09.410123+02:00')).toEqual({ ms: Date.UTC(2026, 11, 7, 7, 0, 9, 410), nanos: 123000 });
    expect(parseGoTime(RFC3339, '2026-12-07T09:00:09.4Z').ms).toBe(Date.UTC(2026, 11, 7, 9, 0, 9, 400));
    expect(() => parseGoTime(RFC3339, 'not-a-time')).toThrow('parsing time "not-a-time" as "2006-01-02T15:04:05Z07:00": cannot parse "not-a-time" as "2006"');
    expect(() => parseGoTime(RFC3339, '2026-02-30T00:00:00Z')).toThrow('parsing time "2026-02-30T00:00:00Z": day out of range');
    expect(() => parseGoTime(RFC3339, '2026-12-07T09:00:09Zjunk')).toThrow('extra text: "junk"');
  });
});

describe('LabApiServer is as strict as kube-apiserver', () => {
  const server = new LabApiServer({ bookmarkIntervalMs: 50, tooLargeWaitMs: 400 });
  const call = caller(server);
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  const lease = (name: string, renewTime: Date, resourceVersion?: string): V1Lease => ({
    metadata: { name, namespace: 'strict', ...(resourceVersion ? { resourceVersion } : {}) },
    spec: { holderIdentity: 'node-a', leaseDurationSeconds: 15, acquireTime: renewTime, renewTime },
  });

  it('rejects a Lease renewTime with 3 fractional digits (400), accepts 6 (client-node, as the agent writes)', async () => {
    const api = server.kubeConfig().makeApiClient(CoordinationV1Api);
    const at = new Date(Date.UTC(2026, 11, 7, 9, 0, 9, 410));
    const rejected = await api.createNamespacedLease({ namespace: 'strict', body: lease('three-digits', at) }).catch((e: { code: number; body: string }) => e);
    expect(rejected).toMatchObject({ code: 400 });
    expect(JSON.parse((rejected as { body: string }).body)).toMatchObject({
      kind: 'Status', status: 'Failure', reason: 'BadRequest', code: 400,
      message: 'Lease in version "v1" cannot be handled as a Lease: parsing time "2026-12-07T09:00:09.410Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse ".410Z" as ".000000"',
    });
    expect(server.find('coordination.k8s.io/v1', 'Lease', 'three-digits', 'strict')).toBeUndefined();

    const created = await api.createNamespacedLease({ namespace: 'strict', body: lease('six-digits', new V1MicroTime(at.getTime())) });
    expect(created.metadata?.resourceVersion).toMatch(/^\d+$/);
    expect((server.find('coordination.k8s.io/v1', 'Lease', 'six-digits', 'strict')!.spec as { renewTime: string }).renewTime).toBe('2026-12-07T09:00:09.410000Z');
  });

  it('parses Time fields like Go: fractions accepted and stored as whole seconds in UTC; garbage is 400', async () => {
    const ok = await call('POST', '/api/v1/namespaces/strict/events', {
      metadata: { name: 'web.1' }, involvedObject: { kind: 'Service', namespace: 'strict', name: 'web' }, reason: 'Announced', message: 'm', type: 'Normal',
      firstTimestamp: '2026-12-07T10:00:09.410Z', lastTimestamp: '2026-12-07T12:00:09+02:00',
    });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ firstTimestamp: '2026-12-07T10:00:09Z', lastTimestamp: '2026-12-07T10:00:09Z' });
    const bad = await call('POST', '/api/v1/namespaces/strict/events', { metadata: { name: 'web.2' }, involvedObject: { kind: 'Service', namespace: 'strict', name: 'web' }, lastTimestamp: 'not-a-time' });
    expect(bad).toMatchObject({ status: 400, body: { reason: 'BadRequest', message: expect.stringContaining('cannot parse "not-a-time" as "2006"') } });
    // A core Event about a namespaced object lives in that object's namespace.
    const elsewhere = await call('POST', '/api/v1/namespaces/other/events', { metadata: { name: 'web.3' }, involvedObject: { kind: 'Service', namespace: 'strict', name: 'web' } });
    expect(elsewhere).toMatchObject({ status: 422, body: { details: { causes: [{ field: 'involvedObject.namespace', message: 'Invalid value: "strict": does not match event.namespace' }] } } });
  });

  it('validates annotation keys and the 256 KiB total (422 Invalid with causes)', async () => {
    const badKey = await call('POST', '/api/v1/namespaces/strict/services', { metadata: { name: 'ann', annotations: { 'cmd.nu/tunnel!': 'x' } }, spec: {} });
    expect(badKey.status).toBe(422);
    expect(badKey.body).toMatchObject({ kind: 'Status', reason: 'Invalid', code: 422, details: { name: 'ann', kind: 'Service', causes: [{ reason: 'FieldValueInvalid', field: 'metadata.annotations' }] } });
    expect(badKey.body.message).toBe(
      `Service "ann" is invalid: metadata.annotations: Invalid value: "cmd.nu/tunnel!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
    );
    // Annotation keys are checked lower-cased: upper case is fine there.
    expect((await call('POST', '/api/v1/namespaces/strict/services', { metadata: { name: 'ann-upper', annotations: { 'Example.com/Key': 'x' } }, spec: {} })).status).toBe(201);

    const key = 'cmd.nu/table';
    const atLimit = { [key]: 'x'.repeat(256 * 1024 - key.length) };
    expect((await call('POST', '/api/v1/namespaces/strict/services', { metadata: { name: 'ann-limit', annotations: atLimit }, spec: {} })).status).toBe(201);
    const over = await call('PATCH', '/api/v1/namespaces/strict/services/ann-limit', { metadata: { annotations: { [key]: `${atLimit[key]}y` } } }, 'application/merge-patch+json');
    expect(over).toMatchObject({ status: 422, body: { message: 'Service "ann-limit" is invalid: metadata.annotations: Too long: must have at most 262144 bytes', details: { causes: [{ reason: 'FieldValueTooLong' }] } } });
    // What the agent sees when a stored table would not fit (its own write path, client-node).
    await expect(annotateService(server.kubeConfig(), { namespace: 'strict', name: 'ann-limit', key: 'cmd.nu/other', value: 'z' })).rejects.toMatchObject({
      code: 422,
      message: expect.stringMatching(/^Service strict\/ann-limit: cannot set annotation cmd.nu\/other: .*422.*Too long: must have at most 262144 bytes/) as unknown as string,
    });
  });

  it('validates label keys and values, and names per kind', async () => {
    const label = await call('POST', '/api/v1/namespaces/strict/configmaps', { metadata: { name: 'labels', labels: { app: 'web server', '-bad': 'x' } } });
    expect(label.status).toBe(422);
    // (The real server's order follows Go's map iteration: random.)
    expect(label.body.details.causes.map((c: { message: string }) => c.message.slice(0, 36)).sort()).toEqual(['Invalid value: "-bad": name part mus', 'Invalid value: "web server": a valid']);
    expect(label.body.message).toMatch(/^ConfigMap "labels" is invalid: \[metadata\.labels: .*, metadata\.labels: .*\]$/);

    // Services are DNS-1035 labels; ConfigMaps DNS subdomains; Namespaces DNS-1123 labels.
    const svc = await call('POST', '/api/v1/namespaces/strict/services', { metadata: { name: '1web' }, spec: {} });
    expect(svc.body.message).toBe(
      `Service "1web" is invalid: metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
    );
    expect((await call('POST', '/api/v1/namespaces/strict/configmaps', { metadata: { name: '1web.example' } })).status).toBe(201);
    expect((await call('POST', '/api/v1/namespaces', { metadata: { name: 'a.b' } })).status).toBe(422);
    expect((await call('POST', '/apis/coordination.k8s.io/v1/namespaces/strict/leases', { metadata: { name: 'Node_A' }, spec: {} })).status).toBe(422);
    expect((await call('POST', '/apis/coordination.k8s.io/v1/namespaces/Bad/leases', { metadata: { name: 'ok' }, spec: {} })).body.details.causes).toEqual([
      expect.objectContaining({ field: 'metadata.namespace' }),
    ]);
    // The seeding control checks the same rules.
    expect(() => server.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'Web', namespace: 'strict' }, spec: {} })).toThrow(/metadata\.name: Invalid value: "Web"/);
  });

  it('answers a stale resourceVersion with 409; a Lease PUT without one with 422; a Service PUT without one is unconditional', async () => {
    const api = server.kubeConfig().makeApiClient(CoordinationV1Api);
    const first = await api.createNamespacedLease({ namespace: 'strict', body: lease('rv', new V1MicroTime()) });
    const renewed = await api.replaceNamespacedLease({ name: 'rv', namespace: 'strict', body: { ...first, spec: { ...first.spec, renewTime: new V1MicroTime() } } });
    expect(Number(renewed.metadata!.resourceVersion)).toBeGreaterThan(Number(first.metadata!.resourceVersion));
    const stale = await api.replaceNamespacedLease({ name: 'rv', namespace: 'strict', body: { ...first, spec: { ...first.spec, holderIdentity: 'node-b' } } }).catch((e: { code: number; body: string }) => e);
    expect(stale).toMatchObject({ code: 409 });
    expect(JSON.parse((stale as { body: string }).body)).toMatchObject({
      reason: 'Conflict',
      message: 'Operation cannot be fulfilled on leases.coordination.k8s.io "rv": the object has been modified; please apply your changes to the latest version and try again',
      details: { name: 'rv', group: 'coordination.k8s.io', kind: 'leases' },
    });
    const { resourceVersion: _rv, ...noRv } = renewed.metadata!;
    const missing = await call('PUT', '/apis/coordination.k8s.io/v1/namespaces/strict/leases/rv', { ...renewed, metadata: noRv });
    expect(missing).toMatchObject({ status: 422, body: { message: 'leases.coordination.k8s.io "rv" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update' } });
    // A PATCH works on the current version: no resourceVersion needed, one given is a precondition.
    const patched = await call('PATCH', '/apis/coordination.k8s.io/v1/namespaces/strict/leases/rv', { spec: { holderIdentity: 'node-c' } }, 'application/merge-patch+json');
    expect(patched.status).toBe(200);
    expect((await call('PATCH', '/apis/coordination.k8s.io/v1/namespaces/strict/leases/rv', { metadata: { resourceVersion: first.metadata!.resourceVersion }, spec: { holderIdentity: 'node-d' } }, 'application/merge-patch+json')).status).toBe(409);

    // Leases may be created by PUT (AllowCreateOnUpdate); Services may not.
    expect((await call('PUT', '/apis/coordination.k8s.io/v1/namespaces/strict/leases/by-put', { metadata: { name: 'by-put' }, spec: {} })).status).toBe(201);
    expect((await call('PUT', '/api/v1/namespaces/strict/services/by-put', { metadata: { name: 'by-put' }, spec: {} })).status).toBe(404);
    server.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'uncond', namespace: 'strict' }, spec: { type: 'ClusterIP' } });
    expect((await call('PUT', '/api/v1/namespaces/strict/services/uncond', { metadata: { name: 'uncond' }, spec: { type: 'NodePort' } })).status).toBe(200);
  });

  it('a list at a resourceVersion the server has not reached waits, then 504 Too large resource version', async () => {
    const current = server.store.resourceVersion;
    const t0 = Date.now();
    const future = await call('GET', `/api/v1/namespaces/strict/services?resourceVersion=${current + 5}`);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    expect(future).toMatchObject({
      status: 504,
      body: {
        kind: 'Status', status: 'Failure', reason: 'Timeout', code: 504, message: `Timeout: Too large resource version: ${current + 5}, current: ${current}`,
        details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 },
      },
    });
    // Exact: etcd refuses a future revision at once.
    const exact = await call('GET', `/api/v1/namespaces/strict/services?resourceVersion=${current + 5}&resourceVersionMatch=Exact`);
    expect(exact).toMatchObject({ status: 504, body: { details: { causes: [{ reason: 'ResourceVersionTooLarge' }] } } });
    // GET of one object at a future resourceVersion: the same wait and 504.
    expect((await call('GET', `/api/v1/namespaces/strict/services/uncond?resourceVersion=${current + 5}`)).status).toBe(504);
    expect(await call('GET', `/api/v1/namespaces/strict/services?resourceVersionMatch=Exact`)).toMatchObject({
      status: 422,
      body: { message: 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided' },
    });
    // Reached while waiting: answered with the list.
    const waiting = call('GET', `/api/v1/namespaces/strict/configmaps?resourceVersion=${current + 1}`);
    await sleep(50);
    server.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'late', namespace: 'strict' } });
    expect(await waiting).toMatchObject({ status: 200, body: { metadata: { resourceVersion: String(current + 1) } } });
  });

  it('a watch from a resourceVersion the server has not reached stays silent (no bookmarks) until changes pass it', async () => {
    const current = server.store.resourceVersion;
    const w = openWatch(server, `/api/v1/namespaces/strict/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion=${current + 2}`);
    try {
      expect(await w.opened).toBe(200);
      server.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'w1', namespace: 'strict' } }); // current + 1: not after N
      await sleep(300);
      expect(w.lines).toEqual([]);
      server.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'w2', namespace: 'strict' } }); // current + 2
      server.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'w3', namespace: 'strict' } }); // current + 3: delivered
      await sleep(200);
      expect(w.lines[0]).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'w3' } } });
      expect(w.lines.slice(1).every((l) => l.type === 'BOOKMARK')).toBe(true);
    } finally {
      w.close();
    }
  });
});

describe('LabApiServer resourceVersions across restarts', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kst-h6-state-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a server started again on the same state file keeps objects and resourceVersions; the counter never goes back', async () => {
    const stateFile = join(dir, 'same.jsonl');
    const first = new LabApiServer({ stateFile });
    await first.start();
    const call1 = caller(first);
    const svc = await call1('POST', '/api/v1/namespaces/restart/services', { metadata: { name: 'web' }, spec: {} });
    await call1('POST', '/api/v1/namespaces/restart/services', { metadata: { name: 'gone' }, spec: {} });
    await call1('DELETE', '/api/v1/namespaces/restart/services/gone');
    const before = first.store.resourceVersion;
    await first.stop(); // or a crash: every change was journaled before it was answered

    const second = new LabApiServer({ stateFile });
    await second.start();
    try {
      const call2 = caller(second);
      expect(second.restored).toBe(true);
      expect(second.store.resourceVersion).toBe(before);
      expect((await call2('GET', '/api/v1/namespaces/restart/services/web')).body.metadata.resourceVersion).toBe(svc.body.metadata.resourceVersion);
      expect((await call2('GET', '/api/v1/namespaces/restart/services/gone')).status).toBe(404);
      const next = await call2('POST', '/api/v1/namespaces/restart/configmaps', { metadata: { name: 'after' } });
      expect(Number(next.body.metadata.resourceVersion)).toBe(before + 1);
      // Like a new watch cache: resuming from before the restart is 410, from now is fine.
      const resumed = openWatch(second, `/api/v1/namespaces/restart/services?watch=true&resourceVersion=${Number(svc.body.metadata.resourceVersion)}`);
      await resumed.opened;
      await sleep(100);
      resumed.close();
      expect(resumed.lines).toEqual([{ type: 'ERROR', object: expect.objectContaining({ code: 410, reason: 'Expired' }) }]);
    } finally {
      await second.stop();
    }
  });

  it('survives a crash: no stop(), a torn last line', async () => {
    const stateFile = join(dir, 'crash.jsonl');
    const crashed = new LabApiServer({ stateFile });
    crashed.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kept', namespace: 'crash' } });
    const rv = crashed.store.resourceVersion;
    await writeFile(stateFile, '{"revision":99999,"resource":"/v1/configmaps","put":{"metad', { flag: 'a' });
    const next = new LabApiServer({ stateFile });
    expect(next.store.resourceVersion).toBe(rv);
    expect(next.find('v1', 'ConfigMap', 'kept', 'crash')?.metadata?.resourceVersion).toBe(String(rv));
  });

  it('a REPLACED server (simulateReplacedServer / replacedAtResourceVersion) hands out lower resourceVersions', async () => {
    const stateFile = join(dir, 'replaced.jsonl');
    const server = new LabApiServer({ stateFile });
    await server.start();
    try {
      for (let i = 0; i < 5; i++) server.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `c${i}`, namespace: 'replaced' } });
      const seen = server.store.resourceVersion;
      const w = openWatch(server, `/api/v1/namespaces/replaced/configmaps?watch=true&resourceVersion=${seen}`);
      await w.opened;
      server.simulateReplacedServer(10);
      expect(server.store.resourceVersion).toBe(15); // five objects renumbered 11..15
      expect(server.list('v1', 'ConfigMap', 'replaced').map((c) => c.metadata?.resourceVersion)).toEqual(['11', '12', '13', '14', '15']);
      // The client resuming at its old resourceVersion hears nothing about a new change.
      const resumed = openWatch(server, `/api/v1/namespaces/replaced/configmaps?watch=true&resourceVersion=${seen}`);
      expect(await resumed.opened).toBe(200);
      server.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'new', namespace: 'replaced' } });
      await sleep(200);
      resumed.close();
      w.close();
      expect(resumed.lines).toEqual([]);
    } finally {
      await server.stop();
    }
    // The same from the command-line option, on the stored state.
    const again = new LabApiServer({ stateFile, replacedAtResourceVersion: 2 });
    expect(again.store.resourceVersion).toBe(8);
    expect(() => new LabApiServer({ stateFile, replacedAtResourceVersion: 50 })).toThrow(/cannot rewind resourceVersions to 50/);
  });
});
