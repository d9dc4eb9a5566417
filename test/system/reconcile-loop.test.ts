// The reconcile-loop primitive with an injected clock: coalescing, set() resolving after
// the pass that includes it, backoff growth and reset, the periodic resync.
import { Backoff, backoffDelay } from '../../src/system/backoff.js';
import { ReconcileLoop, type PassContext } from '../../src/system/reconcile-loop.js';
import { ManualClock, settle } from './manual-clock.js';

interface Result { readonly ok: boolean; readonly error?: string; readonly saw?: number; readonly retryInMs?: number }

function harness(opts: { minGapMs?: number; passMs?: number; resyncMs?: number } = {}) {
  const clock = new ManualClock();
  const passes: { desired: number | undefined; ctx: PassContext; at: number }[] = [];
  let fail: string | undefined;
  let retryInMs: number | undefined;
  const loop = new ReconcileLoop<number, Result>({
    name: 'test',
    clock,
    random: () => 0.5, // jitter factor exactly 1
    backoff: { initialMs: 100, maxMs: 1000 },
    resyncMs: opts.resyncMs ?? 10_000,
    minGapMs: opts.minGapMs ?? 0,
    failed: (error) => ({ ok: false, error }),
    pass: async (desired, ctx) => {
      passes.push({ desired, ctx, at: clock.now() });
      if (opts.passMs) await new Promise<void>((r) => clock.setTimer(r, opts.passMs!));
      if (fail) return { ok: false, error: fail, saw: desired, ...(retryInMs !== undefined ? { retryInMs } : {}) };
      return { ok: true, saw: desired };
    },
  });
  return { clock, loop, passes, setFail: (e: string | undefined, retry?: number) => ((fail = e), (retryInMs = retry)) };
}

describe('backoff', () => {
  it('grows by the factor up to the maximum, with jitter within its spread, and resets', () => {
    const mid = () => 0.5;
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay({ initialMs: 100, maxMs: 1000 }, a, mid))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay({ initialMs: 100, maxMs: 1000 }, 0, () => 0)).toBe(80);
    expect(backoffDelay({ initialMs: 100, maxMs: 1000 }, 0, () => 1)).toBe(120);
    const b = new Backoff({ initialMs: 10, maxMs: 100, jitter: 0 });
    expect([b.next(), b.next(), b.next()]).toEqual([10, 20, 40]);
    b.reset();
    expect(b.next()).toBe(10);
  });
});

describe('ReconcileLoop', () => {
  it('runs nothing before start; the first pass after start is full and sees the latest desired state', async () => {
    const h = harness();
    const first = h.loop.set(1);
    const second = h.loop.set(2);
    await settle();
    expect(h.passes).toHaveLength(0);
    h.loop.start();
    expect(await first).toMatchObject({ ok: true, saw: 2 });
    expect(await second).toMatchObject({ ok: true, saw: 2 });
    expect(h.passes.map((p) => [p.desired, p.ctx.full, p.ctx.reason])).toEqual([[2, true, 'resync']]);
  });

  it('coalesces requests made while a pass runs into one more pass; each set() resolves after the pass that includes it', async () => {
    const h = harness({ passMs: 50 });
    h.loop.start();
    const a = h.loop.set(1);
    await h.clock.advance(10);
    const b = h.loop.set(2);
    const c = h.loop.set(3);
    let bDone: Result | undefined;
    void b.then((r) => (bDone = r));
    await h.clock.advance(40); // pass 1 ends
    expect(await a).toMatchObject({ saw: 1 });
    expect(bDone).toBeUndefined(); // 2 was not part of pass 1
    await h.clock.advance(50);
    expect(await b).toMatchObject({ saw: 3 });
    expect(await c).toMatchObject({ saw: 3 });
    expect(h.passes.map((p) => p.desired)).toEqual([1, 3]);
  });

  it('holds a burst for minGapMs after a pass, then applies it as one pass', async () => {
    const h = harness({ minGapMs: 100 });
    h.loop.start();
    await h.loop.set(1);
    for (let i = 2; i <= 6; i++) void h.loop.set(i);
    await h.clock.advance(99);
    expect(h.passes).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.passes.map((p) => p.desired)).toEqual([1, 6]);
  });

  it('retries a failed pass with backoff that grows, then resets after a success; a change does not wait for the retry', async () => {
    const h = harness();
    h.loop.start();
    h.setFail('kernel said no');
    expect(await h.loop.set(1)).toMatchObject({ ok: false, error: 'kernel said no' });
    expect(h.loop.health()).toMatchObject({ failures: 1, lastError: 'kernel said no' });
    await h.clock.advance(1000);
    // Retries 100, 200 and 400 ms apart (jitter pinned to the middle), each a 'retry' pass.
    expect(h.passes.map((p) => [p.at, p.ctx.reason])).toEqual([[0, 'resync'], [100, 'retry'], [300, 'retry'], [700, 'retry']]);
    // A change runs at once, not at the pending retry (1500).
    const changed = h.loop.set(2);
    await settle();
    expect(h.passes.at(-1)).toMatchObject({ desired: 2, at: 1000, ctx: { reason: 'change', failures: 4 } });
    expect(await changed).toMatchObject({ ok: false });
    h.setFail(undefined);
    await h.clock.advance(1000);
    expect(h.passes.at(-1)).toMatchObject({ at: 2000, ctx: { reason: 'retry' } });
    expect(h.loop.health()).toMatchObject({ failures: 0, lastSuccessAt: 2000 });
    expect(h.loop.health().lastError).toBeUndefined();
    // Reset: the next failure waits the initial delay again.
    h.setFail('again');
    await h.loop.set(3);
    const n = h.passes.length;
    await h.clock.advance(100);
    expect(h.passes).toHaveLength(n + 1);
  });

  it('a pass may name its own retry delay (per-item backoff) instead of the loop\'s', async () => {
    const h = harness();
    h.loop.start();
    h.setFail('pod not ready', 5000);
    await h.loop.set(1);
    await h.clock.advance(4999);
    expect(h.passes).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.passes).toHaveLength(2);
  });

  it('resyncs periodically with a full pass, on its own timer that changes do not postpone', async () => {
    const h = harness({ resyncMs: 1000 });
    h.loop.start();
    await h.loop.set(1);
    for (let t = 0; t < 10; t++) {
      await h.clock.advance(300);
      await h.loop.set(t);
    }
    const full = h.passes.filter((p) => p.ctx.full).map((p) => p.at);
    expect(full).toEqual([0, 1000, 2000, 3000]);
    expect(h.passes.filter((p) => p.ctx.full).slice(1).every((p) => p.ctx.reason === 'resync')).toBe(true);
  });

  it('a pass that throws is a failed result, not a rejection; a throwing listener does not stop the loop', async () => {
    const clock = new ManualClock();
    const listenerErrors: unknown[] = [];
    const loop = new ReconcileLoop<number, Result>({
      name: 'throws', clock, backoff: { initialMs: 100, maxMs: 100 }, resyncMs: 1000,
      failed: (error) => ({ ok: false, error }),
      pass: async () => { throw new Error('boom'); },
      onListenerError: (e) => listenerErrors.push(e),
    });
    loop.onResult(() => { throw new Error('listener bug'); });
    loop.start();
    expect(await loop.set(1)).toEqual({ ok: false, error: 'boom' });
    expect(listenerErrors).toHaveLength(1);
    await loop.stop();
  });

  it('stop() waits for the running pass, cancels the timers and answers waiting requests', async () => {
    const h = harness({ passMs: 50 });
    h.loop.start();
    const a = h.loop.set(1);
    const b = h.loop.set(2); // queued behind pass 1
    const stopping = h.loop.stop();
    await h.clock.advance(50);
    await stopping;
    expect(await a).toMatchObject({ ok: true, saw: 1 });
    expect(await b).toEqual({ ok: false, error: 'stopped: not applied' });
    expect(h.clock.pending()).toEqual([]);
  });
});

describe('ReconcileLoop.settled', () => {
  it('joins the running pass when nothing was asked since it started, else waits for the next', async () => {
    const h = harness({ passMs: 50 });
    h.loop.start();
    void h.loop.set(1); // starts at once
    const joined = h.loop.settled();
    await h.clock.advance(50);
    expect(await joined).toMatchObject({ saw: 1 });
    expect(h.passes).toHaveLength(1);
    void h.loop.set(2); // runs now
    void h.loop.set(3); // queued
    const next = h.loop.settled();
    await h.clock.advance(100);
    expect(await next).toMatchObject({ saw: 3 });
    const fresh = h.loop.settled(); // idle: a new pass
    await h.clock.advance(50);
    expect(await fresh).toMatchObject({ saw: 3 });
    expect(h.passes).toHaveLength(4);
  });
});
