import { afterEach, beforeAll, afterAll, describe, expect, it } from '@jest/globals';
import type { KubeConfig } from '@kubernetes/client-node';
import { LeaderElector, leaseIdentity, wireMicroTime } from '../../src/kube/index.js';
import { FaultProxy, LabApiServer, waitFor } from '../../src/lab/index.js';
import { MemoryEventSink } from '../../src/observe/index.js';

/** apimachinery's MicroTime layout, 2006-01-02T15:04:05.000000Z07:00: exactly six fractional digits. */
const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LeaderElector on a coordination.k8s.io/v1 Lease', () => {
  const server = new LabApiServer();
  const electors: LeaderElector[] = [];
  beforeAll(() => server.start());
  afterEach(async () => {
    for (const e of electors.splice(0)) await e.stop({ release: false });
  });
  afterAll(() => server.stop());

  const contender = (name: string, identity: string, log: string[], durations = { leaseDurationMs: 1500, renewDeadlineMs: 1000 }, kubeConfig: KubeConfig = server.kubeConfig()) => {
    const e = new LeaderElector({
      kubeConfig,
      namespace: 'kube-system',
      name,
      identity,
      ...durations,
      retryPeriodMs: 100,
      onStartedLeading: () => log.push(`${identity} started`),
      onStoppedLeading: () => log.push(`${identity} stopped`),
    });
    electors.push(e);
    return e;
  };
  const leaseSpec = (name: string) => server.find('coordination.k8s.io/v1', 'Lease', name, 'kube-system')?.spec as { holderIdentity?: string; acquireTime?: unknown; renewTime?: unknown; leaseTransitions?: number } | undefined;
  const holder = (name: string) => leaseSpec(name)?.holderIdentity;

  it('of two contenders exactly one leads; the other takes over when it stops renewing', async () => {
    const log: string[] = [];
    const a = contender('crash', 'node-a', log);
    const b = contender('crash', 'node-b', log);
    a.start();
    b.start();
    await waitFor(() => a.isLeader || b.isLeader, 5000);
    // Several renew periods: never two leaders, the Lease names the one that leads.
    for (let i = 0; i < 10; i++) {
      expect(Number(a.isLeader) + Number(b.isLeader)).toBeLessThanOrEqual(1);
      await new Promise((r) => setTimeout(r, 50));
    }
    const [first, second] = a.isLeader ? [a, b] : [b, a];
    const firstId = first === a ? 'node-a' : 'node-b';
    const secondId = first === a ? 'node-b' : 'node-a';
    expect(holder('crash')).toBe(firstId);
    expect(second.leader).toBe(firstId);

    // The leader dies without releasing: the other waits out the lease duration, then leads.
    const stoppedAt = Date.now();
    await first.stop({ release: false });
    await waitFor(() => second.isLeader, 5000, 20);
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(1000);
    expect(holder('crash')).toBe(secondId);
    expect(log).toEqual([`${firstId} started`, `${firstId} stopped`, `${secondId} started`]);
    const spec = server.find('coordination.k8s.io/v1', 'Lease', 'crash', 'kube-system')!.spec as { leaseTransitions: number };
    expect(spec.leaseTransitions).toBe(1);
  });

  it('a released lease is taken over without waiting for expiry', async () => {
    const log: string[] = [];
    // A long lease: waiting for expiry would take 20 s, a release is taken over at once.
    const long = { leaseDurationMs: 20_000, renewDeadlineMs: 10_000 };
    const a = contender('release', 'node-a', log, long);
    a.start();
    await waitFor(() => a.isLeader, 5000, 20);
    const b = contender('release', 'node-b', log, long);
    b.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(b.isLeader).toBe(false);
    const releasedAt = Date.now();
    await a.stop();
    // Waits longer than the bound it asserts, so a slow machine fails on the bound, with a
    // figure, and an expiry takeover (20 s) still cannot pass.
    await waitFor(() => b.isLeader, 15_000, 20);
    expect(Date.now() - releasedAt).toBeLessThan(10_000);
  });

  it('a leader that cannot reach the API steps down within the renew deadline', async () => {
    const log: string[] = [];
    const a = contender('outage', 'node-a', log);
    a.start();
    await waitFor(() => a.isLeader, 5000, 20);
    await server.stop();
    try {
      await waitFor(() => !a.isLeader, 5000, 20);
      // isLeader turns false on the clock; the step-down timer's callback follows it.
      await waitFor(() => log.length >= 2, 2000, 20);
      expect(log).toEqual(['node-a started', 'node-a stopped']);
    } finally {
      await server.start();
    }
    // And it leads again once the API is back (its own lease, nobody else contending).
    await waitFor(() => a.isLeader, 5000, 20);
  });

  it('writes acquireTime and renewTime as MicroTime with exactly six fractional digits', async () => {
    // Another holder's expired record (a real server stores only six-digit MicroTimes: it
    // rejects three digits with 400, as test/kube/apiserver.test.ts shows).
    server.apply({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'format', namespace: 'kube-system' },
      spec: { holderIdentity: 'old-agent', leaseDurationSeconds: 1, acquireTime: '2026-01-01T00:00:09.410000Z', renewTime: '2026-01-01T00:00:09.410000Z', leaseTransitions: 0 },
    });
    const a = contender('format', 'node-a', []);
    a.start();
    await waitFor(() => a.isLeader, 5000, 20);
    const taken = leaseSpec('format')!;
    expect(taken.holderIdentity).toBe('node-a');
    expect(taken.acquireTime).toMatch(MICRO_TIME);
    expect(taken.renewTime).toMatch(MICRO_TIME);
    // Renewed: renewTime moves on with six digits, acquireTime is kept as written.
    await waitFor(() => leaseSpec('format')!.renewTime !== taken.renewTime, 5000, 20);
    expect(leaseSpec('format')!.renewTime).toMatch(MICRO_TIME);
    expect(leaseSpec('format')!.acquireTime).toBe(taken.acquireTime);
    // The request bodies themselves (what a strict server parses), not only what is stored.
    const writes = server.requests.filter((r) => r.path.endsWith('/leases/format') && r.method === 'PUT');
    expect(writes.length).toBeGreaterThan(0);
  });

  it('rewrites a MicroTime read back with the wrong precision, keeps a good one', () => {
    expect(JSON.stringify({ t: wireMicroTime('2026-01-01T00:00:09.410Z', 0) })).toBe('{"t":"2026-01-01T00:00:09.410000Z"}');
    expect(wireMicroTime('2026-01-01T00:00:09.410123Z', 0)).toBe('2026-01-01T00:00:09.410123Z');
    expect(JSON.stringify(wireMicroTime(new Date(Date.UTC(2026, 0, 1, 0, 0, 9, 410)), 0))).toBe('"2026-01-01T00:00:09.410000Z"');
    expect(JSON.stringify(wireMicroTime('not-a-time', Date.UTC(2026, 0, 1)))).toBe('"2026-01-01T00:00:00.000000Z"');
  });

  it('identities are unique per process, also on one node', () => {
    expect(leaseIdentity({ POD_NAME: 'kst-abcde', POD_UID: '0b7c-11' }, 'node-a')).toBe('kst-abcde_0b7c-11');
    const x = leaseIdentity({}, 'node-a');
    const y = leaseIdentity({}, 'node-a');
    expect(x).toMatch(/^node-a_[0-9a-f]{8}$/);
    expect(x).not.toBe(y);
  });

  describe('with the leader\'s API path black-holed (requests accepted, never answered)', () => {
    const proxies: FaultProxy[] = [];
    const proxy = async () => {
      const url = new URL(server.url);
      const p = new FaultProxy({ target: { host: url.hostname, port: Number(url.port) } });
      await p.start();
      proxies.push(p);
      return p;
    };
    afterEach(async () => {
      for (const p of proxies.splice(0)) await p.stop();
    });
    const durations = { leaseDurationMs: 3000, renewDeadlineMs: 2000 };

    it('the leader stops leading within renewDeadline by its own timer, and stop() does not wait for the hung request', async () => {
      const path = await proxy();
      const log: string[] = [];
      const a = contender('hang', 'node-a', log, durations, path.kubeConfig());
      a.start();
      await waitFor(() => a.isLeader, 5000, 20);
      const blackedOutAt = Date.now();
      path.set({ kind: 'blackhole' });
      await waitFor(() => !a.isLeader, 10_000, 10);
      const leadFor = Date.now() - blackedOutAt;
      // Order of magnitude: about renewDeadline (2 s) after the last good renew, never leaseDuration or more.
      expect(leadFor).toBeLessThan(durations.renewDeadlineMs + 1000);
      // isLeader turns false on the clock; the step-down timer's callback follows it.
      await waitFor(() => log.length >= 2, 2000, 10);
      expect(log).toEqual(['node-a started', 'node-a stopped']);
      // A Lease request hangs right now; stop() aborts it instead of waiting.
      await waitFor(() => path.wedgedConnections > 0, 5000, 10);
      const stopping = Date.now();
      await a.stop();
      expect(Date.now() - stopping).toBeLessThan(1000);
    });

    it('two contenders with distinct identities on one node never both lead, across the black-out and the heal', async () => {
      const path = await proxy();
      const log: string[] = [];
      const env = (pod: string) => ({ POD_NAME: pod, POD_UID: `uid-${pod}` });
      const idA = leaseIdentity(env('kst-aaaaa'), 'node-1');
      const idB = leaseIdentity(env('kst-bbbbb'), 'node-1');
      const a = contender('overlap', idA, log, durations, path.kubeConfig());
      a.start();
      await waitFor(() => a.isLeader, 5000, 20);
      const b = contender('overlap', idB, log, durations);
      b.start();

      const samples: Array<{ t: number; a: boolean; b: boolean }> = [];
      const sample = async (ms: number) => {
        for (const end = Date.now() + ms; Date.now() < end; await sleep(10)) samples.push({ t: Date.now(), a: a.isLeader, b: b.isLeader });
      };
      await sample(500);
      const blackedOutAt = Date.now();
      path.set({ kind: 'blackhole' });
      await sample(durations.leaseDurationMs + durations.renewDeadlineMs + 1500);
      path.heal();
      await sample(2000);

      expect(samples.filter((s) => s.a && s.b)).toEqual([]);
      const takeover = samples.find((s) => s.t >= blackedOutAt && s.b);
      expect(takeover).toBeDefined();
      // The other takes over after the old leader stopped, within leaseDuration + renewDeadline.
      expect(takeover!.t - blackedOutAt).toBeLessThan(durations.leaseDurationMs + durations.renewDeadlineMs + 500);
      expect(samples.at(-1)).toMatchObject({ a: false, b: true });
      expect(holder('overlap')).toBe(idB);
      expect(log).toEqual([`${idA} started`, `${idA} stopped`, `${idB} started`]);
    });
  });

  it('a Lease request the server rejects is reported as a rejection, not an outage, and an Event', async () => {
    // A server that answers every request like kube-apiserver answers a bad MicroTime.
    const http = await import('node:http');
    const message = 'Lease.coordination.k8s.io "rejected" is invalid: spec.renewTime: Invalid value: "2026-01-01T00:00:09.410Z": parsing time "2026-01-01T00:00:09.410Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse ".410Z" as ".000000"';
    let requests = 0;
    const strict = http.createServer((req, res) => {
      requests++;
      req.resume();
      // No Lease yet (404), and the create is refused (400).
      const status = req.method === 'GET' ? { code: 404, reason: 'NotFound', message: 'leases.coordination.k8s.io "rejected" not found' } : { code: 400, reason: 'BadRequest', message };
      res.writeHead(status.code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', ...status }));
    });
    await new Promise<void>((r) => strict.listen(0, '127.0.0.1', r));
    try {
      const { KubeConfig } = await import('@kubernetes/client-node');
      const kc = new KubeConfig();
      const url = `http://127.0.0.1:${(strict.address() as { port: number }).port}`;
      kc.loadFromOptions({ clusters: [{ name: 'c', server: url, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
      const events = new MemoryEventSink();
      const e = new LeaderElector({ kubeConfig: kc, namespace: 'kube-system', name: 'rejected', identity: 'node-a', retryPeriodMs: 50, leaseDurationMs: 1500, renewDeadlineMs: 1000, events, eventRef: { kind: 'Node', name: 'node-a' } });
      electors.push(e);
      e.start();
      await waitFor(() => requests >= 5, 5000, 10);
      expect(e.isLeader).toBe(false);
      // One Event for a persistent rejection, carrying the server's own words.
      expect(events.events).toEqual([
        { type: 'Warning', ref: { kind: 'Node', name: 'node-a' }, reason: 'LeaseRejected', message: expect.stringContaining('rejected by the API server: 400 BadRequest: ') as unknown as string },
      ]);
      expect(events.events[0]!.message).toContain('cannot parse ".410Z" as ".000000"');
    } finally {
      await new Promise<void>((r) => strict.close(() => r()));
    }
  });
});
