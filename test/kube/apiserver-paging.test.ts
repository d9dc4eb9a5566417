// List paging in the lab API server (`limit`/`continue`), as kube-apiserver pages: checked
// with plain HTTP and with client-node, the reference client, paging through.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { LabApiServer } from '../../src/lab/index.js';
import { INCONSISTENT_CONTINUE, decodeContinue } from '../../src/lab/apiserver/paging.js';
import { endpointSlice, service } from './fixtures.js';

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('LabApiServer list paging', () => {
  const server = new LabApiServer();
  const NS = 'paging';
  const names = Array.from({ length: 7 }, (_, i) => `svc-${i}`);
  beforeAll(async () => {
    await server.start();
    for (const n of names) server.apply(service(n, { namespace: NS }));
    // Another namespace: a namespaced list must not page through it.
    server.apply(service('elsewhere', { namespace: 'other' }));
  });
  afterAll(() => server.stop());

  const get = async (path: string): Promise<{ status: number; body: Body }> => {
    const res = await fetch(`${server.url}${path}`);
    return { status: res.status, body: (await res.json()) as Body };
  };
  const namesOf = (body: Body) => (body.items as Body[]).map((o) => o.metadata.name as string);

  it('pages at one resourceVersion: limit, continue, remainingItemCount, and no token on the last page', async () => {
    const first = await get(`/api/v1/namespaces/${NS}/services?limit=3`);
    expect(first.status).toBe(200);
    expect(namesOf(first.body)).toEqual(['svc-0', 'svc-1', 'svc-2']);
    const rv = first.body.metadata.resourceVersion as string;
    expect(first.body.metadata).toMatchObject({ continue: expect.any(String), remainingItemCount: 4 });
    // Opaque, but the real format: base64url JSON naming the list's resourceVersion.
    expect(decodeContinue(first.body.metadata.continue as string)).toMatchObject({ rv: Number(rv) });

    // A change between pages is not in the later pages: one consistent list.
    server.apply({ ...service('svc-5', { namespace: NS }), metadata: { name: 'svc-5', namespace: NS, labels: { changed: 'yes' } } });
    server.remove('v1', 'Service', 'svc-6', NS);
    server.apply(service('svc-9', { namespace: NS }));
    const second = await get(`/api/v1/namespaces/${NS}/services?limit=3&continue=${encodeURIComponent(first.body.metadata.continue as string)}`);
    expect(namesOf(second.body)).toEqual(['svc-3', 'svc-4', 'svc-5']);
    expect(second.body.metadata).toMatchObject({ resourceVersion: rv, remainingItemCount: 1 });
    expect((second.body.items as Body[])[2]!.metadata.labels?.changed).toBeUndefined();
    const last = await get(`/api/v1/namespaces/${NS}/services?limit=3&continue=${encodeURIComponent(second.body.metadata.continue as string)}`);
    expect(namesOf(last.body)).toEqual(['svc-6']);
    expect(last.body.metadata.resourceVersion).toBe(rv);
    expect(last.body.metadata.continue).toBeUndefined();
    expect(last.body.metadata.remainingItemCount).toBeUndefined();

    // Without a limit: everything, now.
    const all = await get(`/api/v1/namespaces/${NS}/services`);
    expect(namesOf(all.body)).toEqual(['svc-0', 'svc-1', 'svc-2', 'svc-3', 'svc-4', 'svc-5', 'svc-9']);
    expect(Number(all.body.metadata.resourceVersion)).toBeGreaterThan(Number(rv));
  });

  it('a continue token whose resourceVersion was compacted: 410 Expired with the real message and a token that continues inconsistently', async () => {
    const first = await get(`/api/v1/namespaces/${NS}/services?limit=2`);
    server.apply({ ...service('svc-0', { namespace: NS }), metadata: { name: 'svc-0', namespace: NS, labels: { round: 'two' } } });
    server.compact();
    const gone = await get(`/api/v1/namespaces/${NS}/services?limit=2&continue=${encodeURIComponent(first.body.metadata.continue as string)}`);
    expect(gone).toMatchObject({ status: 410, body: { kind: 'Status', status: 'Failure', code: 410, reason: 'Expired', message: INCONSISTENT_CONTINUE } });
    expect(INCONSISTENT_CONTINUE).toMatch(/^The provided continue parameter is too old to display a consistent list result\. /);
    const inconsistent = gone.body.metadata.continue as string;
    expect(decodeContinue(inconsistent).rv).toBe(-1);
    // Continuing with it: the rest, from the same key, at the latest state.
    const rest = await get(`/api/v1/namespaces/${NS}/services?limit=100&continue=${encodeURIComponent(inconsistent)}`);
    expect(rest.status).toBe(200);
    expect(namesOf(rest.body)).toEqual(['svc-2', 'svc-3', 'svc-4', 'svc-5', 'svc-9']);
    expect(rest.body.metadata.resourceVersion).toBe(String(server.store.resourceVersion));
  });

  it('treats limit with resourceVersion, resourceVersionMatch and selectors as kube-apiserver does', async () => {
    // resourceVersion=0: the watch cache answers, whole, whatever the limit.
    const cached = await get(`/api/v1/namespaces/${NS}/services?limit=2&resourceVersion=0`);
    expect(namesOf(cached.body)).toHaveLength(7);
    expect(cached.body.metadata.continue).toBeUndefined();
    // resourceVersion=N with limit (no match): exactly N, paged.
    const at = server.store.resourceVersion;
    server.apply(service('svc-10', { namespace: NS }));
    const exact = await get(`/api/v1/namespaces/${NS}/services?limit=100&resourceVersion=${at}`);
    expect(exact.body.metadata.resourceVersion).toBe(String(at));
    expect(namesOf(exact.body)).not.toContain('svc-10');
    // NotOlderThan: the latest state.
    const fresh = await get(`/api/v1/namespaces/${NS}/services?limit=100&resourceVersion=${at}&resourceVersionMatch=NotOlderThan`);
    expect(namesOf(fresh.body)).toContain('svc-10');
    // With a selector: paged, but no remainingItemCount.
    const selected = await get(`/api/v1/services?limit=2&fieldSelector=${encodeURIComponent(`metadata.namespace=${NS}`)}`);
    expect(namesOf(selected.body)).toEqual(['svc-0', 'svc-1']);
    expect(selected.body.metadata.continue).toEqual(expect.any(String));
    expect(selected.body.metadata.remainingItemCount).toBeUndefined();
    // A compacted exact resourceVersion: 410 with the list message.
    server.compact();
    expect(await get(`/api/v1/namespaces/${NS}/services?limit=2&resourceVersion=${at}`)).toMatchObject({
      status: 410,
      body: { reason: 'Expired', message: 'The resourceVersion for the provided list is too old.' },
    });
  });

  it('rejects what kube-apiserver rejects: a forged token, continue with a resourceVersion or resourceVersionMatch, a bad limit', async () => {
    const first = await get(`/api/v1/namespaces/${NS}/services?limit=2`);
    const token = encodeURIComponent(first.body.metadata.continue as string);
    expect(await get(`/api/v1/namespaces/${NS}/services?limit=2&continue=not-a-token`)).toMatchObject({ status: 400, body: { reason: 'BadRequest', message: expect.stringMatching(/^invalid continue token: /) } });
    expect(await get(`/api/v1/namespaces/${NS}/services?limit=2&continue=${token}&resourceVersion=5`)).toMatchObject({
      status: 400,
      body: { message: 'specifying resource version is not allowed when using continue' },
    });
    expect(await get(`/api/v1/namespaces/${NS}/services?limit=2&continue=${token}&resourceVersion=5&resourceVersionMatch=Exact`)).toMatchObject({
      status: 422,
      body: { message: 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided' },
    });
    expect((await get(`/api/v1/namespaces/${NS}/services?limit=ten`)).status).toBe(400);
  });

  it('client-node pages through 1,200 EndpointSlices with limit 500 and continue, and sees the list as of its first page', async () => {
    for (let i = 0; i < 1200; i++) server.apply(endpointSlice(`slice-${String(i).padStart(4, '0')}`, `svc-${i}`, [`198.51.100.${i % 250}`], { namespace: 'many' }));
    const kc = server.kubeConfig();
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const pages: number[] = [];
    const seen: string[] = [];
    let rv: string | undefined;
    let token: string | undefined;
    do {
      const page = await discovery.listNamespacedEndpointSlice({ namespace: 'many', limit: 500, ...(token ? { _continue: token } : {}) });
      pages.push(page.items.length);
      seen.push(...page.items.map((s) => s.metadata!.name!));
      rv ??= page.metadata!.resourceVersion;
      expect(page.metadata!.resourceVersion).toBe(rv);
      token = page.metadata!._continue;
      if (pages.length === 1) server.apply(endpointSlice('slice-9999', 'late', ['198.51.100.251'], { namespace: 'many' }));
    } while (token);
    expect(pages).toEqual([500, 500, 200]);
    expect(new Set(seen).size).toBe(1200);
    expect(seen).not.toContain('slice-9999');
    // The typed core API too, with remainingItemCount.
    const core = kc.makeApiClient(CoreV1Api);
    const one = await core.listNamespacedService({ namespace: NS, limit: 1 });
    expect(one.items).toHaveLength(1);
    expect(one.metadata!.remainingItemCount).toBeGreaterThan(0);
  });
});
