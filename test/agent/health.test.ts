// Health from progress: liveness from the loops' last progress (with the real loop and an
// injected clock), readiness from gobgpd, the sessions, BFD and the data plane.
import { bfdReadiness, bgpReadiness, dataplaneReadiness, livenessOf, loopLiveness } from '../../src/agent/health.js';
import { ReconcileLoop } from '../../src/system/index.js';
import { ManualClock } from '../system/manual-clock.js';

function loop(clock: ManualClock, ok: () => boolean, liveness: 'success' | 'progress' = 'success', passMs = 0) {
  return new ReconcileLoop<number, { ok: boolean; error?: string }>({
    name: 'dataplane', clock, liveness, resyncMs: 1000, backoff: { initialMs: 100, maxMs: 400 },
    failed: (error) => ({ ok: false, error }),
    pass: async () => {
      if (passMs) await new Promise<void>((r) => clock.setTimer(r, passMs));
      return ok() ? { ok: true } : { ok: false, error: 'kernel said no' };
    },
  });
}

describe('liveness from progress', () => {
  it('a loop never asked to run is idle, not stuck', () => {
    const clock = new ManualClock();
    const l = loop(clock, () => true);
    l.start();
    expect(loopLiveness(l.health(), clock.now() + 1e9).ok).toBe(true);
  });

  it('fails when a loop has not succeeded for three resync periods, names it with its last error, and recovers', async () => {
    const clock = new ManualClock();
    let ok = true;
    const l = loop(clock, () => ok);
    l.start();
    await l.set(1);
    await clock.advance(2500);
    expect(livenessOf([l.health()], clock.now()).ok).toBe(true); // resyncs keep succeeding
    ok = false;
    await clock.advance(2000); // retries fail; the last success was at t=2000
    expect(livenessOf([l.health()], clock.now()).ok).toBe(true);
    await clock.advance(1100);
    const stuck = livenessOf([l.health()], clock.now());
    expect(stuck).toEqual({ ok: false, detail: expect.stringMatching(/^dataplane: has not succeeded for 4 s \(limit 3 s\); last error: kernel said no$/) });
    ok = true;
    await clock.advance(500); // the next retry succeeds
    expect(livenessOf([l.health()], clock.now()).ok).toBe(true);
    await l.stop();
  });

  it("a 'progress' loop (podnet: per-pod failures) stays alive while its passes complete, even failing", async () => {
    const clock = new ManualClock();
    const l = loop(clock, () => false, 'progress');
    l.start();
    await l.set(1);
    await clock.advance(10_000);
    expect(loopLiveness(l.health(), clock.now()).ok).toBe(true);
    await l.stop();
  });

  it('fails when a pass hangs', async () => {
    const clock = new ManualClock();
    const l = loop(clock, () => true, 'progress', 60_000);
    l.start();
    void l.set(1);
    await clock.advance(3001);
    expect(loopLiveness(l.health(), clock.now())).toEqual({ ok: false, detail: 'dataplane: a pass has been running for 3 s (limit 3 s)' });
  });
});

describe('readiness', () => {
  it('bgp: gobgpd reachable and at least one session established', () => {
    expect(bgpReadiness(undefined, []).ok).toBe(false);
    expect(bgpReadiness({ ok: false, error: 'gobgpd GetBgp failed: no connection (UNAVAILABLE)', unreachable: true }, [])).toEqual({ ok: false, detail: 'gobgpd not reachable: gobgpd GetBgp failed: no connection (UNAVAILABLE)' });
    const peers = [{ address: '192.0.2.1', state: 'established' }, { address: '192.0.2.5', state: 'active' }];
    expect(bgpReadiness({ ok: true }, peers)).toEqual({ ok: true, detail: '1/2 sessions established; not: 192.0.2.5 active' });
    expect(bgpReadiness({ ok: true }, [{ address: '192.0.2.5', state: 'idle' }]).ok).toBe(false);
    // A node with nothing to announce (a worker in vxlan mode) needs no session.
    expect(bgpReadiness({ ok: true }, [{ address: '192.0.2.5', state: 'idle' }], false).ok).toBe(true);
    expect(bfdReadiness([{ peer: '192.0.2.5', state: 'Down' }], false).ok).toBe(true);
    // A pass with a refused path (gobgpd answered) does not make the node unready.
    expect(bgpReadiness({ ok: false, error: 'announcing VIP 203.0.113.9: refused' }, peers).ok).toBe(true);
  });

  it('bfd: at least one session Up when sessions are configured', () => {
    expect(bfdReadiness([]).ok).toBe(true);
    expect(bfdReadiness([{ peer: '192.0.2.1', state: 'Down' }])).toEqual({ ok: false, detail: 'no BFD session Up (192.0.2.1 Down)' });
    expect(bfdReadiness([{ peer: '192.0.2.1', state: 'Up' }, { peer: '192.0.2.5', state: 'AdminDown' }]).ok).toBe(true);
  });

  it('dataplane: ready once programmed, not while its last batch failed', async () => {
    const clock = new ManualClock();
    let ok = true;
    const l = loop(clock, () => ok);
    l.start();
    expect(dataplaneReadiness(l.health())).toEqual({ ok: false, detail: 'not programmed yet' });
    await l.set(1);
    expect(dataplaneReadiness(l.health()).ok).toBe(true);
    ok = false;
    await l.set(2);
    expect(dataplaneReadiness(l.health())).toEqual({ ok: false, detail: 'last batch failed (1 in a row): kernel said no; the kernel keeps its last state' });
    await l.stop();
  });
});
