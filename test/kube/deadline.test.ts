// Every API call has a deadline: against a black-holed path (connections accepted,
// nothing answered) a call rejects within it, the request is aborted, the metric counts it,
// and the writers built on these calls give up instead of hanging.
import http from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import type { V1Service } from '@kubernetes/client-node';
import { BucketTableWriter } from '../../src/kube/table-writer.js';
import {
  KubeCallTimeoutError,
  KubeEventSink,
  LoadBalancerStatusWriter,
  callWithDeadline,
  classifyKubeError,
  convertService,
  describeKubeError,
  kubeClient,
  type KubeClient,
} from '../../src/kube/index.js';
import { FaultProxy, LabApiServer } from '../../src/lab/index.js';
import type { IpAddress } from '../../src/model/types.js';
import { metricsRegistry, MemoryEventSink } from '../../src/observe/index.js';

const readWeb = (client: KubeClient, signal: AbortSignal) => client.request<V1Service>({ method: 'GET', path: '/api/v1/namespaces/shop/services/web', signal });

const allocation = new Map([['shop/web', ['203.0.113.10' as IpAddress]]]);

async function timeoutsOf(call: string): Promise<number> {
  const metric = await metricsRegistry.getSingleMetric('kst_kube_request_timeouts_total')!.get();
  return metric.values.find((v) => v.labels.call === call)?.value ?? 0;
}

const service = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'shop', uid: 'u-web' },
  spec: { type: 'LoadBalancer', loadBalancerClass: 'cmd.nu/tunnel', ports: [{ port: 80, protocol: 'TCP' }] },
};

describe('deadlines on Kubernetes API calls', () => {
  const server = new LabApiServer();
  let path: FaultProxy;
  beforeAll(async () => {
    await server.start();
    server.apply(service);
  });
  afterAll(() => server.stop());
  beforeEach(async () => {
    const url = new URL(server.url);
    path = new FaultProxy({ target: { host: url.hostname, port: Number(url.port) } });
    await path.start();
  });
  afterEach(() => path.stop());

  it('a call against a black-holed server rejects within its deadline and counts in kst_kube_request_timeouts_total', async () => {
    const api = kubeClient(path.kubeConfig());
    // Through the proxy while it passes: the call works, the deadline does not fire.
    const svc = await callWithDeadline('test.get', (signal) => readWeb(api, signal), { timeoutMs: 2000 });
    expect(svc.metadata?.uid).toBe('u-web');
    const before = await timeoutsOf('test.get');

    path.set({ kind: 'blackhole' });
    const started = Date.now();
    const err = await callWithDeadline('test.get', (signal) => readWeb(api, signal), { timeoutMs: 300 }).catch((e: unknown) => e);
    const took = Date.now() - started;
    expect(err).toBeInstanceOf(KubeCallTimeoutError);
    expect(classifyKubeError(err)).toBe('timeout');
    expect(describeKubeError(err)).toBe('test.get: no answer from the Kubernetes API within 300 ms (request aborted)');
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2000);
    expect(await timeoutsOf('test.get')).toBe(before + 1);
    // The request really reached the black hole (accepted, never answered) and was aborted:
    // its connection is closed by the client, not left hanging.
    await new Promise((r) => setTimeout(r, 100));
    expect(path.wedgedConnections).toBe(0);
  });

  it('the abort signal reaches the request itself (the socket closes at the deadline)', async () => {
    path.set({ kind: 'blackhole' });
    const api = kubeClient(path.kubeConfig());
    const controller = new AbortController();
    const call = readWeb(api, controller.signal).catch((e: unknown) => e);
    for (let i = 0; i < 100 && path.wedgedConnections === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(path.wedgedConnections).toBe(1);
    controller.abort();
    const err = (await call) as Error;
    expect(err.name).toBe('AbortError');
    await new Promise((r) => setTimeout(r, 100));
    expect(path.wedgedConnections).toBe(0);
  });

  it('a cancelled call rejects at once (a component stopping)', async () => {
    path.set({ kind: 'blackhole' });
    const api = kubeClient(path.kubeConfig());
    const stop = new AbortController();
    const call = callWithDeadline('test.cancel', (signal) => readWeb(api, signal), { timeoutMs: 60_000, signal: stop.signal }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    stop.abort();
    expect(classifyKubeError(await call)).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(200);
  });

  it('LoadBalancer status, stored tables and Events give up at their deadlines instead of hanging', async () => {
    path.set({ kind: 'blackhole' });
    const kubeConfig = path.kubeConfig();
    const svc = convertService(service).value!;
    const started = Date.now();
    const lb = new LoadBalancerStatusWriter({ kubeConfig, loadBalancerClass: 'cmd.nu/tunnel', requestTimeoutMs: 300 });
    const result = await lb.set([svc], allocation);
    expect(result.failed.map((f) => f.key)).toEqual(['shop/web']);
    expect(result.failed[0]!.error).toMatch(/service.patchStatus: no answer .* within 300 ms/);

    const sink = new KubeEventSink({ kubeConfig, host: 'node-a', requestTimeoutMs: 300 });
    sink.warning({ kind: 'Service', namespace: 'shop', name: 'web' }, 'Test', 'an event nobody receives');
    await sink.flush();
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('the table writer stops at once while its request hangs', async () => {
    path.set({ kind: 'blackhole' });
    const writer = new BucketTableWriter({ kubeConfig: path.kubeConfig(), annotationKey: 'cmd.nu/tunnel', isLeader: () => true, requestTimeoutMs: 60_000 });
    writer.start();
    const svc = convertService({ ...service, metadata: { ...service.metadata, annotations: { 'cmd.nu/tunnel-tables': 'x' } } }).value!;
    // No VIP any more: the writer removes the stored tables (read, then patch).
    writer.offer({ mode: 'vxlan-lwt', vips: [] } as never, [svc]);
    for (let i = 0; i < 100 && path.wedgedConnections === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(path.wedgedConnections).toBeGreaterThan(0);
    const started = Date.now();
    await writer.stop();
    expect(Date.now() - started).toBeLessThan(500);
    expect(writer.stats().failed).toBe(0);
  });

  it('a rejection is told apart from an outage in the log line', () => {
    const rejected = { code: 400, body: JSON.stringify({ kind: 'Status', code: 400, reason: 'BadRequest', message: 'cannot parse ".410Z" as ".000000"' }) };
    expect(classifyKubeError(rejected)).toBe('rejected');
    expect(describeKubeError(rejected)).toBe('rejected by the API server: 400 BadRequest: cannot parse ".410Z" as ".000000"');
    const forbidden = { code: 403, body: { kind: 'Status', code: 403, reason: 'Forbidden', message: 'leases.coordination.k8s.io is forbidden' } };
    expect(describeKubeError(forbidden)).toMatch(/^rejected by the API server \(missing RBAC permission: see deploy\/base\/rbac.yaml\): 403 Forbidden: /);
    expect(classifyKubeError({ code: 503, body: '' })).toBe('unavailable');
    expect(classifyKubeError(new Error('connect ECONNREFUSED'))).toBe('unavailable');
    expect(classifyKubeError({ code: 409, body: {} })).toBe('conflict');
  });

  it('a status patch the server rejects (422) becomes an Event on the Service with the server\'s message', async () => {
    const message = 'Service "web" is invalid: status.loadBalancer.ingress[0].ip: Invalid value: "203.0.113.999": must be a valid IP address';
    const strict = http.createServer((req, res) => {
      req.resume();
      res.writeHead(422, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Invalid', code: 422, message }));
    });
    await new Promise<void>((r) => strict.listen(0, '127.0.0.1', r));
    try {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromOptions({
        clusters: [{ name: 'c', server: `http://127.0.0.1:${(strict.address() as { port: number }).port}`, skipTLSVerify: true }],
        users: [{ name: 'u' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      const events = new MemoryEventSink();
      const lb = new LoadBalancerStatusWriter({ kubeConfig, loadBalancerClass: 'cmd.nu/tunnel', events });
      const result = await lb.set([convertService(service).value!], allocation);
      expect(result.failed).toEqual([{ key: 'shop/web', error: `422 Invalid: ${message}` }]);
      expect(events.events).toEqual([
        { type: 'Warning', ref: { kind: 'Service', namespace: 'shop', name: 'web', uid: 'u-web' }, reason: 'LoadBalancerStatusRejected', message: `cannot write status.loadBalancer.ingress: rejected by the API server: 422 Invalid: ${message}` },
      ]);
    } finally {
      await new Promise<void>((r) => strict.close(() => r()));
    }
  });

  it('a former leader writes no status: leadership is asked before every patch', async () => {
    const lb = new LoadBalancerStatusWriter({ kubeConfig: server.kubeConfig(), loadBalancerClass: 'cmd.nu/tunnel', isLeader: () => false });
    const before = server.requests.length;
    const result = await lb.set([convertService(service).value!], allocation);
    expect(result).toEqual({ set: [], cleared: [], failed: [] });
    expect(server.requests.length).toBe(before);
  });
});
