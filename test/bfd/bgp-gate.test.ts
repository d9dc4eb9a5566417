// The BGP -> BFD gate of BfdBgpBinding (issue 15): a gated session answers only while the
// BGP session it protects is Established (after a settle delay), or while BFD itself holds
// that BGP peer down. Two real BfdManagers over loopback; the BGP side is the binding's input.
import { describe, expect, it } from '@jest/globals';
import { BfdBgpBinding, BfdManager, gatedSessionRuns, type BfdStateEvent } from '../../src/bfd/index.js';
import { waitFor } from '../../src/lab/index.js';
import { connect, loopbackPair, RecordingPeers, sessionFrom, stateOf, stoppedAfterEach } from '../support/bfd-loopback.js';

const addrs = loopbackPair(63);
const { a: A, b: B } = addrs;
const OPEN_DELAY_MS = 150;

const track = stoppedAfterEach();
const manager = (): BfdManager => track(new BfdManager({ retryMs: 200 }));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `a` is the agent's side (gated towards B), `b` the router's. */
type Timed = BfdStateEvent & { at: number };

async function gatedPair(opts: { holdDownMs?: number } = {}): Promise<{ a: BfdManager; b: BfdManager; binding: BfdBgpBinding; peers: RecordingPeers; events: Timed[] }> {
  const a = manager();
  const b = manager();
  const peers = new RecordingPeers();
  const binding = track(new BfdBgpBinding(a, peers, undefined, { holdDownMs: opts.holdDownMs ?? 0, gatedPeers: [B], openDelayMs: OPEN_DELAY_MS }));
  const events: Timed[] = [];
  a.on('state', (e) => events.push({ ...e, at: Date.now() }));
  binding.start();
  await connect(a, b, addrs, { waitUp: false });
  return { a, b, binding, peers, events };
}

describe('gatedSessionRuns', () => {
  it('runs only when not drained and BGP is Established or BFD holds the BGP peer down', () => {
    const rows = [false, true].flatMap((drained) => [false, true].flatMap((bgpEstablished) => [false, true].map((heldByBfd) => ({ drained, bgpEstablished, heldByBfd }))));
    expect(rows.filter(gatedSessionRuns)).toEqual([
      { drained: false, bgpEstablished: false, heldByBfd: true },
      { drained: false, bgpEstablished: true, heldByBfd: false },
      { drained: false, bgpEstablished: true, heldByBfd: true },
    ]);
  });
});

describe('BfdBgpBinding gate over loopback', () => {
  it('holds the session AdminDown until BGP is Established, then comes Up only after the settle delay', async () => {
    const { a, b, binding, peers, events } = await gatedPair();
    // The router's side keeps sending; ours answers AdminDown, so the router never sees Up.
    await sleep(1500);
    expect(stateOf(a, B)).toBe('AdminDown');
    expect(stateOf(b, A)).toBe('Down');
    expect(b.status()[0]!.remoteState).toBe('AdminDown');
    binding.bgpSessionState(B, 'opensent');
    binding.bgpSessionState(B, 'established');
    const establishedAt = Date.now();
    await waitFor(() => stateOf(a, B) === 'Up' && stateOf(b, A) === 'Up', 8000, 5);
    const ups = events.filter((e) => e.to === 'Up');
    expect(ups).toHaveLength(1);
    // Not before the delay (FRR re-registers its session on Established); an order-of-magnitude upper bound.
    const upAfter = ups[0]!.at - establishedAt;
    expect(upAfter).toBeGreaterThanOrEqual(OPEN_DELAY_MS - 5);
    expect(upAfter).toBeLessThan(5000);
    // BGP leaves Established (e.g. gobgpd restarted: 'unknown'): AdminDown at once, BGP untouched.
    binding.bgpSessionState(B, 'unknown');
    await waitFor(() => stateOf(a, B) === 'AdminDown' && stateOf(b, A) === 'Down', 3000, 5);
    await binding.settled();
    expect(peers.calls).toEqual([]);
  });

  it('a BGP session that leaves Established within the settle delay never opens the gate', async () => {
    const { a, binding } = await gatedPair();
    binding.bgpSessionState(B, 'established');
    await sleep(OPEN_DELAY_MS / 3);
    binding.bgpSessionState(B, 'idle');
    await sleep(OPEN_DELAY_MS * 3);
    expect(stateOf(a, B)).toBe('AdminDown');
  });

  it('drain and restore compose with the gate: restore does not open a session whose BGP is down', async () => {
    const { a, b, binding } = await gatedPair();
    binding.bgpSessionState(B, 'established');
    await waitFor(() => stateOf(a, B) === 'Up' && stateOf(b, A) === 'Up', 8000, 10);
    await binding.drain(async () => undefined);
    expect(stateOf(a, B)).toBe('AdminDown');
    binding.bgpSessionState(B, 'active');
    binding.restore();
    await sleep(OPEN_DELAY_MS * 2);
    expect(stateOf(a, B)).toBe('AdminDown');
    binding.bgpSessionState(B, 'established');
    await waitFor(() => stateOf(a, B) === 'Up', 8000, 10);
  });

  it('a path failure: the BGP peer is disabled, BFD keeps running to see the path back, re-enables it, then waits for BGP again', async () => {
    const { a, b, binding, peers } = await gatedPair();
    binding.bgpSessionState(B, 'established');
    await waitFor(() => stateOf(a, B) === 'Up' && stateOf(b, A) === 'Up', 8000, 10);
    await b.stop();
    await waitFor(() => stateOf(a, B) === 'Down', 3000, 5);
    await binding.settled();
    expect(peers.calls).toEqual([`disable ${B} (BFD down: control-detection-time-expired)`]);
    // gobgpd reports the disabled peer Idle: the gate stays open, held by BFD.
    binding.bgpSessionState(B, 'idle');
    await sleep(200);
    expect(stateOf(a, B)).toBe('Down');
    const b2 = manager();
    await b2.setSessions([sessionFrom(addrs, 'b')]);
    await waitFor(() => peers.calls.length === 2, 8000, 10);
    await binding.settled();
    expect(peers.calls[1]).toBe(`enable ${B}`);
    // Re-enabled, BGP not Established yet: AdminDown until it is (as at start).
    await waitFor(() => stateOf(a, B) === 'AdminDown', 3000, 5);
    binding.bgpSessionState(B, 'established');
    await waitFor(() => stateOf(a, B) === 'Up' && stateOf(b2, A) === 'Up', 8000, 10);
  });

  it('without gated peers, drain and restore act on every session as before', async () => {
    const a = manager();
    const b = manager();
    const binding = track(new BfdBgpBinding(a, new RecordingPeers(), undefined, { holdDownMs: 0 }));
    binding.start();
    await connect(a, b, addrs);
    binding.setDrained(true);
    expect(stateOf(a, B)).toBe('AdminDown');
    binding.setDrained(false);
    await waitFor(() => stateOf(a, B) === 'Up', 8000, 10);
  });
});
