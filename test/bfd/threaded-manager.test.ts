// ThreadedBfdManager over loopback in this process: the sessions on worker threads, the
// status, events, logs and metrics on this (main) thread; a blocked main thread; a crash.
import { afterEach, describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import winston from 'winston';
import { BfdManager, ThreadedBfdManager, type BfdSessionRunner, type BfdStateEvent } from '../../src/bfd/index.js';
import { waitFor } from '../../src/lab/index.js';
import { metricsRegistry } from '../../src/observe/index.js';
import { connect, loopbackPair, stateOf } from '../support/bfd-loopback.js';

const addrs = loopbackPair(62);
const { a: A, b: B } = addrs;

const runners: BfdSessionRunner[] = [];
afterEach(async () => {
  for (const r of runners.splice(0)) await r.stop();
});

function threaded(logger?: winston.Logger): ThreadedBfdManager {
  const m = new ThreadedBfdManager({ retryMs: 200, snapshotIntervalMs: 100, ...(logger ? { logger } : {}) });
  runners.push(m);
  return m;
}

async function pair<T extends BfdSessionRunner>(make: () => T): Promise<{ a: T; b: T }> {
  const a = make();
  const b = make();
  await connect(a, b, addrs);
  return { a, b };
}

function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

const metric = async (re: RegExp): Promise<number> => Number((await metricsRegistry.metrics()).match(re)?.[1] ?? NaN);
const rxMetric = new RegExp(`kst_bfd_packets_total\\{peer="${B.replace(/\./g, '\\.')}",direction="rx"\\} (\\d+)`);

describe('ThreadedBfdManager over loopback', () => {
  it('comes Up; status, state events, worker logs and kst_bfd_* metrics reach the main thread', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({ objectMode: true, write: (info: Record<string, unknown>, _e, done) => (lines.push(info), done()) });
    const logger = winston.createLogger({ level: 'info', transports: [new winston.transports.Stream({ stream: sink })] });
    const a = threaded(logger);
    const events: BfdStateEvent[] = [];
    a.on('state', (e) => events.push(e));
    const b = threaded();
    await connect(a, b, addrs, { waitUp: false });
    await waitFor(() => stateOf(a, B) === 'Up', 8000, 20);
    expect(events.at(-1)).toMatchObject({ peer: B, local: A, to: 'Up' });
    await new Promise((r) => setTimeout(r, 300));
    await a.refresh();
    expect(a.status()[0]).toMatchObject({ peer: B, state: 'Up', txIntervalMs: 30, detectionTimeMs: 90 });
    expect(a.status()[0]!.counters.rxPackets).toBeGreaterThan(3);
    const text = await metricsRegistry.metrics();
    expect(text).toContain(`kst_bfd_session_state{peer="${B}"} 3`);
    expect(await metric(rxMetric)).toBeGreaterThan(3);
    expect(text).toContain(`kst_bfd_state_changes_total{peer="${B}",state="Up"}`);
    expect(lines.some((l) => l.message === 'BFD session Init -> Up' && l.peer === B && l.component === 'bfd')).toBe(true);
  });

  it("reports the worker's own heap, apart from the main thread's (issue 15)", async () => {
    const a = threaded();
    expect(a.memory()).toBeUndefined(); // nothing reported yet
    await a.refresh();
    const m = a.memory();
    expect(m?.heapUsedBytes).toBeGreaterThan(2 ** 20);
    expect(m!.heapUsedBytes).toBeLessThanOrEqual(m!.heapTotalBytes);
    expect(m!.externalBytes).toBeGreaterThan(0);
    // The worker's isolate, not this process's main heap (jest's is several times larger).
    expect(m!.heapUsedBytes).toBeLessThan(process.memoryUsage().heapUsed);
    // It loads no logger, metrics or schema library (bfd/telemetry.ts): about 5 MB; with
    // winston, prom-client and the observe area it was 13.6 MB.
    expect(m!.heapUsedBytes).toBeLessThan(10 * 2 ** 20);
    await a.stop();
    expect(a.memory()).toBeUndefined();
  });

  it('a busy main thread (1 s, 30 x 3 ms sessions) does not fail sessions on worker threads; it fails in-thread ones', async () => {
    const t = await pair(threaded);
    const changes = t.a.status()[0]!.counters.stateChanges;
    const events: BfdStateEvent[] = [];
    t.a.on('state', (e) => events.push(e));
    busy(1000);
    await new Promise((r) => setTimeout(r, 200));
    await t.a.refresh();
    expect(events).toEqual([]);
    expect(t.a.status()[0]).toMatchObject({ state: 'Up', counters: { stateChanges: changes } });
    // The contrast: the same block on this thread's timers costs BfdManager's sessions.
    await t.a.stop();
    await t.b.stop();
    const p = await pair(() => {
      const m = new BfdManager({ retryMs: 200 });
      runners.push(m);
      return m;
    });
    const inThread: BfdStateEvent[] = [];
    p.a.on('state', (e) => inThread.push(e));
    busy(1000);
    await new Promise((r) => setTimeout(r, 50));
    expect(inThread[0]).toMatchObject({ from: 'Up', to: 'Down' });
  });

  it('a crashed worker: logged, an error event, restarted with the last sessions and admin state; metrics keep counting', async () => {
    const { a, b } = await pair(threaded);
    await a.adminDown();
    await waitFor(() => stateOf(b, A) === 'Down', 3000, 10);
    await a.adminUp();
    await a.adminDown(B);
    await a.refresh();
    const rxBefore = await metric(rxMetric);
    const discriminator = a.status()[0]!.localDiscriminator;
    const errors: Error[] = [];
    a.on('error', (e) => errors.push(e));
    a.simulateCrash();
    await waitFor(() => errors.length > 0, 5000, 10);
    expect(errors[0]!.message).toMatch(/simulated crash/);
    // Restarted (a new session, so a new discriminator) with the peer still held AdminDown.
    await waitFor(() => a.status()[0] !== undefined && a.status()[0]!.localDiscriminator !== discriminator, 5000, 10);
    await new Promise((r) => setTimeout(r, 300));
    expect(stateOf(a, B)).toBe('AdminDown');
    expect(b.status()[0]).toMatchObject({ state: 'Down', remoteState: 'AdminDown' });
    // Released, it comes Up.
    await a.adminUp(B);
    await waitFor(() => stateOf(a, B) === 'Up' && stateOf(b, A) === 'Up', 8000, 20);
    await a.refresh();
    expect(await metric(rxMetric)).toBeGreaterThan(rxBefore);
  });

  it('stop({adminDown}) tells the peer AdminDown and ends the worker', async () => {
    const { a, b } = await pair(threaded);
    await a.stop({ adminDown: true });
    await waitFor(() => stateOf(b, A) === 'Down', 3000, 10);
    expect(b.status()[0]!.remoteDiag).toBe('administratively-down');
    expect(a.status()).toEqual([]);
    await expect(a.setSessions([])).rejects.toThrow(/stopped/);
    expect(await metricsRegistry.metrics()).not.toContain(`kst_bfd_session_state{peer="${B}"}`);
  });
});
