import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LoadBalancerStatusWriter, annotateService, convertService } from '../../src/kube/index.js';
import { LabApiServer } from '../../src/lab/index.js';
import type { IpAddress, ServiceInput } from '../../src/model/types.js';
import { service } from './fixtures.js';

const CLASS = 'cmd.nu/kube-service-tunnel';
const ip = (s: string) => s as IpAddress;

describe('LoadBalancer status and annotation write-back', () => {
  const server = new LabApiServer();
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  /** The Services as the watcher would see them now. */
  const seen = (): ServiceInput[] => server.list('v1', 'Service').map((o) => convertService(o).value!);
  const ingress = (name: string, namespace = 'lb') => (server.find('v1', 'Service', name, namespace)!.status as { loadBalancer?: { ingress?: { ip: string }[] } } | undefined)?.loadBalancer?.ingress?.map((i) => i.ip);
  const statusPatches = () => server.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/status')).length;

  it('patches status.loadBalancer.ingress only when it differs, and clears it on release', async () => {
    const lb = (name: string, cls = CLASS) => ({ ...service(name, { namespace: 'lb', type: 'LoadBalancer' }), spec: { type: 'LoadBalancer', loadBalancerClass: cls, selector: { app: name }, ports: [{ port: 80 }] } });
    server.apply(lb('a'));
    server.apply(lb('b'));
    server.apply(lb('other', 'example.com/other-lb'));
    server.apply({ ...lb('other', 'example.com/other-lb'), status: { loadBalancer: { ingress: [{ ip: '192.0.2.99' }] } } });
    const writer = new LoadBalancerStatusWriter({ kubeConfig: server.kubeConfig(), loadBalancerClass: CLASS });

    const allocation = new Map([
      ['lb/a', [ip('203.0.113.10'), ip('2001:db8::10')]],
      ['lb/b', [ip('203.0.113.11')]],
    ]);
    const first = await writer.set(seen(), allocation);
    expect(first).toEqual({ set: ['lb/a', 'lb/b'], cleared: [], failed: [] });
    expect(ingress('a')).toEqual(['2001:db8::10', '203.0.113.10']);
    expect(ingress('b')).toEqual(['203.0.113.11']);
    // The spec is untouched by a status write.
    expect((server.find('v1', 'Service', 'a', 'lb')!.spec as { loadBalancerClass: string }).loadBalancerClass).toBe(CLASS);

    // Same allocation, statuses as written: no request at all.
    const before = statusPatches();
    expect(await writer.set(seen(), allocation)).toEqual({ set: [], cleared: [], failed: [] });
    expect(statusPatches()).toBe(before);

    // b released: cleared; another class's status never touched.
    expect(await writer.set(seen(), new Map([['lb/a', allocation.get('lb/a')!]]))).toEqual({ set: [], cleared: ['lb/b'], failed: [] });
    expect(ingress('b')).toBeUndefined();
    expect(ingress('other')).toEqual(['192.0.2.99']);
  });

  it('reports a failed write (Service gone) without throwing', async () => {
    const writer = new LoadBalancerStatusWriter({ kubeConfig: server.kubeConfig(), loadBalancerClass: CLASS });
    const ghost = { ...convertService(service('ghost', { namespace: 'lb', type: 'LoadBalancer' })).value!, loadBalancerClass: CLASS };
    const result = await writer.set([ghost], new Map([['lb/ghost', [ip('203.0.113.12')]]]));
    expect(result.set).toEqual([]);
    expect(result.failed).toEqual([{ key: 'lb/ghost', error: expect.stringContaining('404') }]);
  });

  it('sets and removes an annotation, with an optional resourceVersion precondition', async () => {
    server.apply(service('tables', { namespace: 'lb', vip: '203.0.113.20' }));
    const kc = server.kubeConfig();
    const rv = await annotateService(kc, { namespace: 'lb', name: 'tables', key: 'cmd.nu/bucket-table', value: '{"g":1}' });
    const annotations = () => server.find('v1', 'Service', 'tables', 'lb')!.metadata!.annotations;
    expect(annotations()).toEqual({ 'cmd.nu/tunnel': '203.0.113.20', 'cmd.nu/bucket-table': '{"g":1}' });

    await expect(annotateService(kc, { namespace: 'lb', name: 'tables', key: 'cmd.nu/bucket-table', value: '{"g":2}', resourceVersion: String(Number(rv) - 1) })).rejects.toMatchObject({
      code: 409,
      message: expect.stringContaining('Service lb/tables: cannot set annotation cmd.nu/bucket-table: 409'),
    });
    const rv2 = await annotateService(kc, { namespace: 'lb', name: 'tables', key: 'cmd.nu/bucket-table', value: '{"g":2}', resourceVersion: rv });
    expect(Number(rv2)).toBeGreaterThan(Number(rv));
    await annotateService(kc, { namespace: 'lb', name: 'tables', key: 'cmd.nu/bucket-table', value: null });
    expect(annotations()).toEqual({ 'cmd.nu/tunnel': '203.0.113.20' });
  });
});
