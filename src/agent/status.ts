// The agent's answer to `kst status`: VIPs, BGP peers, BFD sessions, last reconciles.
import type { BgpSpeaker } from '../bgp/index.js';
import { bfdStatusReport, type BfdManager } from '../bfd/index.js';
import type { StatusReport, VipReport } from '../observe/index.js';
import type { Agent } from './agent.js';

export interface StatusSources {
  readonly nodeName: string;
  readonly agent: Agent;
  readonly speaker?: BgpSpeaker;
  readonly bfd?: BfdManager;
}

export function buildStatusReport(src: StatusSources): StatusReport {
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
  return {
    node: src.nodeName,
    vips,
    bgpPeers: (src.speaker?.peerStates() ?? []).map((p) => ({ address: p.address, asn: p.asn, state: p.state })),
    bfdSessions: bfdStatusReport(src.bfd?.status() ?? []),
    reconcile: src.agent.reconcileReports(),
  };
}
