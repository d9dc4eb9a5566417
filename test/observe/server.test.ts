// The agent's HTTP endpoint on a real socket: /metrics, /healthz, /readyz, /status.
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Counter, Registry } from 'prom-client';
import { ObserveServer, parseListenAddress, type ObserveServerOptions } from '../../src/observe/index.js';
import { sampleReport } from './fixtures.js';

const running: ObserveServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

async function start(opts: Partial<ObserveServerOptions> = {}): Promise<{ server: ObserveServer; base: string }> {
  const server = new ObserveServer({ listen: '127.0.0.1:0', registry: new Registry(), ...opts });
  running.push(server);
  const { port } = await server.start();
  return { server, base: `http://127.0.0.1:${port}` };
}

async function get(url: string, init?: RequestInit): Promise<{ status: number; type: string; body: string; json: () => unknown }> {
  const res = await fetch(url, init);
  const body = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', body, json: () => JSON.parse(body) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('ObserveServer', () => {
  it('serves the registry on /metrics in Prometheus text format', async () => {
    const registry = new Registry();
    const vips = new Counter({ name: 'kst_test_vips_programmed_total', help: 'test', registers: [registry] });
    vips.inc(3);
    const { base } = await start({ registry });
    const r = await get(`${base}/metrics`);
    expect(r.status).toBe(200);
    expect(r.type).toContain('text/plain');
    expect(r.body).toContain('kst_test_vips_programmed_total 3');
  });

  it('/healthz is ok while the event loop runs and fails right after it was blocked', async () => {
    const { base } = await start({ maxEventLoopLagMs: 500, lagSampleMs: 20 });
    // "Eventually": a loaded test machine may delay a sample by itself.
    const healthy = async (): Promise<void> => {
      const deadline = Date.now() + 20_000;
      while ((await get(`${base}/healthz`)).status !== 200) {
        if (Date.now() > deadline) throw new Error('/healthz never became ok');
        await sleep(50);
      }
    };
    await healthy();

    const until = Date.now() + 1500;
    while (Date.now() < until) {
      // block the event loop, as a runaway computation would
    }
    const blocked = await get(`${base}/healthz`);
    expect(blocked.status).toBe(503);
    expect(blocked.json()).toMatchObject({ status: 'event loop blocked' });
    expect((blocked.json() as { eventLoopLagMs: number }).eventLoopLagMs).toBeGreaterThan(500);

    await healthy();
  });

  it('/healthz fails while a liveness check (a loop making no progress) fails, naming it', async () => {
    const { server, base } = await start();
    let progressing = true;
    server.addLivenessCheck('loops', () => (progressing ? { ok: true, detail: '4 loops making progress' } : { ok: false, detail: 'dataplane: has not succeeded for 95 s (limit 90 s)' }));
    expect((await get(`${base}/healthz`)).status).toBe(200);
    progressing = false;
    const r = await get(`${base}/healthz`);
    expect(r.status).toBe(503);
    expect(r.json()).toMatchObject({ status: 'not making progress: dataplane: has not succeeded for 95 s (limit 90 s)', checks: [{ name: 'loops', ok: false }] });
  });

  it('/readyz is ready when every registered check passes, and says which one does not', async () => {
    const { server, base } = await start({ callbackTimeoutMs: 100 });
    expect((await get(`${base}/readyz`)).json()).toEqual({ ready: true, checks: [] });

    let gobgpd = false;
    server.addReadinessCheck('gobgpd', () => ({ ok: gobgpd, detail: gobgpd ? 'connected' : 'not connected' }));
    server.addReadinessCheck('dataplane', async () => ({ ok: true }));
    let r = await get(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(r.json()).toEqual({
      ready: false,
      checks: [{ name: 'gobgpd', ok: false, detail: 'not connected' }, { name: 'dataplane', ok: true }],
    });

    gobgpd = true;
    r = await get(`${base}/readyz`);
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ ready: true });

    server.addReadinessCheck('informers', () => {
      throw new Error('Service informer not synced');
    });
    server.addReadinessCheck('hung', () => new Promise(() => undefined));
    r = await get(`${base}/readyz`);
    expect(r.status).toBe(503);
    const checks = (r.json() as { checks: { name: string; ok: boolean; detail?: string }[] }).checks;
    expect(checks.find((c) => c.name === 'informers')).toEqual({ name: 'informers', ok: false, detail: 'Service informer not synced' });
    expect(checks.find((c) => c.name === 'hung')?.detail).toMatch(/readiness check hung did not answer within 100 ms/);

    server.removeReadinessCheck('informers');
    server.removeReadinessCheck('hung');
    expect((await get(`${base}/readyz`)).status).toBe(200);
  });

  it('/status is 503 until a provider is set, then the provider\'s report with generatedAt', async () => {
    const { server, base } = await start();
    let r = await get(`${base}/status`);
    expect(r.status).toBe(503);
    expect(r.json()).toEqual({ error: 'status not available yet: the agent is starting' });

    const { generatedAt: _dropped, ...withoutTime } = sampleReport;
    server.setStatusProvider(() => withoutTime);
    r = await get(`${base}/status`);
    expect(r.status).toBe(200);
    expect(r.type).toBe('application/json');
    const body = r.json() as Record<string, unknown>;
    expect(body).toMatchObject(withoutTime);
    expect(Number.isNaN(Date.parse(String(body.generatedAt)))).toBe(false);

    server.setStatusProvider(() => {
      throw new Error('model not computed yet');
    });
    r = await get(`${base}/status`);
    expect(r.status).toBe(500);
    expect(r.json()).toEqual({ error: 'status provider failed: model not computed yet' });
  });

  it('answers unknown paths with 404, other methods with 405, HEAD without a body', async () => {
    const { base } = await start();
    const nf = await get(`${base}/nope`);
    expect(nf.status).toBe(404);
    expect(nf.body).toContain('/metrics');
    const post = await get(`${base}/status`, { method: 'POST' });
    expect(post.status).toBe(405);
    const head = await get(`${base}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('reports a busy port naming api.listen, and frees its port on stop', async () => {
    const { server, base } = await start();
    const port = Number(new URL(base).port);
    const clash = new ObserveServer({ listen: `127.0.0.1:${port}`, registry: new Registry() });
    await expect(clash.start()).rejects.toThrow(new RegExp(`api.listen 127.0.0.1:${port}: .*EADDRINUSE`));

    await server.stop();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    // the port can be bound again
    const probe = createServer();
    await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(port, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  it('listens on IPv6 loopback', async () => {
    const server = new ObserveServer({ listen: '[::1]:0', registry: new Registry() });
    running.push(server);
    const { host, port } = await server.start();
    expect(host).toBe('::1');
    expect((await get(`http://[::1]:${port}/healthz`)).status).toBe(200);
  });
});

describe('parseListenAddress', () => {
  it('reads HOST:PORT, [IPv6]:PORT and :PORT', () => {
    expect(parseListenAddress('127.0.0.1:9742')).toEqual({ host: '127.0.0.1', port: 9742 });
    expect(parseListenAddress('[::1]:9742')).toEqual({ host: '::1', port: 9742 });
    expect(parseListenAddress(':9742')).toEqual({ host: '::', port: 9742 });
    expect(parseListenAddress('node-1.example:80')).toEqual({ host: 'node-1.example', port: 80 });
  });

  it('rejects anything else with the field name and the value', () => {
    for (const bad of ['9742', '127.0.0.1', '127.0.0.1:99999', '::1:9742', 'host:port']) {
      expect(() => parseListenAddress(bad)).toThrow(`api.listen: expected HOST:PORT, [IPv6]:PORT or :PORT, got ${JSON.stringify(bad)}`);
    }
    expect(() => new ObserveServer({ listen: 'nonsense' })).toThrow(/api.listen/);
  });
});
