// Health from progress (pure; docs/architecture.md "Health"). Liveness: every reconcile
// loop has made progress within a few of its resync periods (a stuck loop is a reason to
// restart the agent; an event loop that merely runs is not proof of work). Readiness:
// what this node needs to serve: gobgpd reachable with sessions established, BFD up, the
// cluster feeds in sync and the data plane programmed. Readiness only informs: nothing
// in the data path or BGP changes with it.
import type { LoopHealth } from '../system/index.js';
import type { ReadinessResult } from '../observe/index.js';

/** A loop is stuck when it made no progress for this many resync periods. */
export const STALLED_AFTER_PERIODS = 3;

/** Liveness of one loop at `now`. A loop that was never asked to run is idle, not stuck. */
export function loopLiveness(h: LoopHealth, now: number, periods = STALLED_AFTER_PERIODS): ReadinessResult {
  const limit = periods * h.resyncMs;
  if (h.passStartedAt !== undefined && now - h.passStartedAt > limit) {
    return { ok: false, detail: `${h.name}: a pass has been running for ${seconds(now - h.passStartedAt)} (limit ${seconds(limit)})` };
  }
  if (!h.started || h.lastPassAt === undefined) return { ok: true, detail: `${h.name}: ${h.started ? 'waiting for its first request' : 'not running'}` };
  const progressAt = h.liveness === 'success' ? (h.lastSuccessAt ?? h.startedAt ?? h.lastPassAt) : h.lastPassAt;
  if (now - progressAt > limit) {
    const what = h.liveness === 'success' ? 'succeeded' : 'completed a pass';
    return { ok: false, detail: `${h.name}: has not ${what} for ${seconds(now - progressAt)} (limit ${seconds(limit)})${h.lastError ? `; last error: ${h.lastError}` : ''}` };
  }
  return { ok: true, detail: `${h.name}: ok` };
}

/** Liveness of all loops: the first stuck one is named. */
export function livenessOf(loops: readonly LoopHealth[], now: number, periods = STALLED_AFTER_PERIODS): ReadinessResult {
  const results = loops.map((h) => loopLiveness(h, now, periods));
  const stuck = results.filter((r) => !r.ok);
  if (stuck.length) return { ok: false, detail: stuck.map((r) => r.detail).join('; ') };
  return { ok: true, detail: `${loops.length} loops making progress` };
}

/**
 * gobgpd answered the last pass and, on a node that announces (`announces`: a tunnel node,
 * or a serving node in mpls mode), at least one configured peer is established. A node
 * with nothing to announce needs no session to serve.
 */
export function bgpReadiness(
  lastPass: { readonly ok: boolean; readonly error?: string; readonly unreachable?: boolean } | undefined,
  peers: ReadonlyArray<{ readonly address: string; readonly state: string }>,
  announces = true,
): ReadinessResult {
  if (!lastPass) return { ok: false, detail: 'gobgpd not reached yet' };
  if (lastPass.unreachable) return { ok: false, detail: `gobgpd not reachable: ${lastPass.error ?? 'no answer'}` };
  if (peers.length === 0) return { ok: true, detail: 'no BGP peers configured' };
  if (!announces) return { ok: true, detail: `gobgpd reachable; nothing to announce, so no session is needed (${peers.map((p) => `${p.address} ${p.state}`).join(', ')})` };
  const up = peers.filter((p) => p.state === 'established');
  const down = peers.filter((p) => p.state !== 'established').map((p) => `${p.address} ${p.state}`);
  if (up.length === 0) return { ok: false, detail: `no BGP session established (${down.join(', ')})` };
  return { ok: true, detail: `${up.length}/${peers.length} sessions established${down.length ? `; not: ${down.join(', ')}` : ''}` };
}

/** At least one BFD session Up when any is configured and the node announces (see bgpReadiness). */
export function bfdReadiness(sessions: ReadonlyArray<{ readonly peer: string; readonly state: string }>, announces = true): ReadinessResult {
  if (sessions.length === 0) return { ok: true, detail: 'no BFD sessions' };
  if (!announces) return { ok: true, detail: 'nothing to announce, so no BFD session is needed' };
  const up = sessions.filter((s) => s.state === 'Up');
  const others = sessions.filter((s) => s.state !== 'Up').map((s) => `${s.peer} ${s.state}`);
  if (up.length === 0) return { ok: false, detail: `no BFD session Up (${others.join(', ')})` };
  return { ok: true, detail: `${up.length}/${sessions.length} sessions Up${others.length ? `; not: ${others.join(', ')}` : ''}` };
}

/** The data plane's last pass succeeded (the kernel holds the desired state). */
export function dataplaneReadiness(h: LoopHealth): ReadinessResult {
  if (h.lastPassAt === undefined) return { ok: false, detail: 'not programmed yet' };
  if (h.lastError !== undefined) return { ok: false, detail: `last batch failed (${h.failures} in a row): ${h.lastError}; the kernel keeps its last state` };
  return { ok: true, detail: 'programmed' };
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}
