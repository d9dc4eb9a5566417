// The agent's answer to `kst status`: flow-hash backend, VIPs, BGP peers, BFD sessions,
// last reconciles.
import { canonicalIp, type BgpSpeaker } from '../bgp/index.js';
import { bfdStatusReport, type BfdSessionRunner } from '../bfd/index.js';
import type { ClusterWatcherStatus } from '../kube/index.js';
import type { BgpPeerReport, ConfigReport, FlowHashReport, KernelReport, KubeReport, MemoryReport, ReadinessResult, ReconcileReport, StatusReport, VipReport } from '../observe/index.js';
import type { LoopHealth } from '../system/index.js';
import type { Agent } from './agent.js';

export interface StatusSources {
  readonly nodeName: string;
  readonly agent: Agent;
  readonly speaker?: BgpSpeaker;
  readonly bfd?: Pick<BfdSessionRunner, 'status'>;
  /** The flow-hash backend chosen at start, and why. */
  readonly flowHash?: FlowHashReport;
  /** What the kernel probe found at start and what the configuration needs that it lacks. */
  readonly kernel?: KernelReport;
  /** The Kubernetes feeds and the Lease, read at report time. */
  readonly kube?: () => KubeReport;
  /** The reconcile loops (dataplane, podnet, bgp, ...): their last pass is "last reconcile". */
  readonly loops?: () => readonly LoopHealth[];
  /** The running configuration's generation and last reload (live-config.ts). */
  readonly config?: () => ConfigReport;
  /** The process's RSS and each thread's heap, read at report time (observe/memory.ts). */
  readonly memory?: () => MemoryReport;
}

/** One row of "Last reconcile" per loop that has run a pass. */
export function reconcileReports(loops: readonly LoopHealth[]): ReconcileReport[] {
  return loops.flatMap((h) =>
    h.lastPassStartedAt === undefined
      ? []
      : [{
          area: h.name,
          lastResult: h.lastError === undefined ? ('ok' as const) : ('error' as const),
          ...(h.lastError !== undefined ? { lastError: h.lastError } : {}),
          lastRunAt: new Date(h.lastPassStartedAt).toISOString(),
          durationMs: h.lastPassDurationMs ?? 0,
        }],
  );
}

/** The watcher's feeds and this agent's Lease for the status report. */
export function kubeReport(status: ClusterWatcherStatus, leader: { readonly leading: boolean; readonly holder?: string }): KubeReport {
  return {
    leader: leader.leading,
    ...(leader.holder ? { leaseHolder: leader.holder } : {}),
    feeds: status.feeds.map((f) => ({
      feed: f.name,
      ...(f.lastEventAgeSeconds !== undefined ? { lastEventAgeSeconds: f.lastEventAgeSeconds } : {}),
      stale: f.stale,
      failing: f.failing,
      ...(f.resourceVersion ? { resourceVersion: f.resourceVersion } : {}),
      ...(f.lastListAt ? { lastListAt: f.lastListAt.toISOString() } : {}),
      ...(f.lastError ? { lastError: f.lastError } : {}),
    })),
  };
}

/** BFD address -> state; a bad address in BFD's config must not break the report. */
function bfdStates(sessions: ReadonlyArray<{ readonly peer: string; readonly state: string }>): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of sessions) {
    let key = s.peer;
    try {
      key = canonicalIp(s.peer);
    } catch {
      // keep it as written
    }
    out.set(key, s.state);
  }
  return out;
}

/**
 * Async because the BGP rows are read from gobgpd afresh (bounded; the last known state
 * when it does not answer).
 */
export async function buildStatusReport(src: StatusSources): Promise<StatusReport> {
  const desired = src.agent.current();
  const vips: VipReport[] = (desired?.vips ?? []).map((v) => {
    const perEndpoint: Record<string, number> = {};
    for (const b of v.table.backends) perEndpoint[b.address] = 0;
    for (const i of v.table.buckets) {
      const b = v.table.backends[i];
      if (b) perEndpoint[b.address] = (perEndpoint[b.address] ?? 0) + 1;
    }
    return {
      vip: v.vip,
      service: `${v.service.namespace}/${v.service.name}`,
      pool: v.pool,
      endpoints: v.table.backends.map((b) => (b.draining ? `${b.address} (draining)` : b.address)),
      bucketsPerEndpoint: perEndpoint,
      announced: v.announced,
      reason: v.announceReason,
    };
  });
  const bfd = src.bfd?.status() ?? [];
  const bfdByPeer = bfdStates(bfd);
  const peers: BgpPeerReport[] = (await src.speaker?.peerReport()) ?? [];
  return {
    node: src.nodeName,
    ...(src.flowHash ? { flowHash: src.flowHash } : {}),
    ...(src.kernel ? { kernel: src.kernel } : {}),
    vips,
    bgpPeers: peers.map((p) => {
      const bfdState = bfdByPeer.get(p.address);
      return bfdState ? { ...p, bfdState } : p;
    }),
    bfdSessions: bfdStatusReport(bfd),
    reconcile: reconcileReports(src.loops?.() ?? []),
    ...(src.kube ? { kube: src.kube() } : {}),
    ...(src.config ? { config: src.config() } : {}),
    ...(src.memory ? { memory: src.memory() } : {}),
  };
}

/**
 * Readiness from the Kubernetes feeds: not ready before the first snapshot, nor while a
 * feed is stale. Readiness only informs (the pod is no Service backend): the last snapshot
 * stays in force and nothing in the data path or BGP changes.
 */
export function kubeReadiness(status: ClusterWatcherStatus): ReadinessResult {
  if (!status.ready) return { ok: false, detail: status.lastError?.message ?? 'waiting for the first list' };
  const stale = status.feeds.filter((f) => f.stale);
  if (stale.length > 0) return { ok: false, detail: `stale: ${stale.map((f) => `${f.name} (${Math.round(f.lastEventAgeSeconds ?? 0)} s)`).join(', ')}; the last known state stays in force` };
  return { ok: true, detail: 'synced' };
}
