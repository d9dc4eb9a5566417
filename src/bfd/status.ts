// BFD sessions in the shape of `kst status` (observe's StatusReport.bfdSessions).
import type { BfdSessionReport } from '../observe/index.js';
import type { BfdSessionStatus } from './manager.js';

export function bfdStatusReport(sessions: readonly BfdSessionStatus[]): BfdSessionReport[] {
  return sessions.map((s) => ({
    peer: s.peer,
    state: s.state,
    localDiag: s.localDiag,
    remoteDiag: s.remoteDiag,
    ...(s.uptimeMs !== undefined ? { uptimeSeconds: Math.floor(s.uptimeMs / 1000) } : {}),
    txIntervalMs: s.txIntervalMs,
    rxIntervalMs: s.rxIntervalMs,
    detectTimeMs: s.detectionTimeMs,
    counters: {
      rxPackets: s.counters.rxPackets,
      txPackets: s.counters.txPackets,
      stateChanges: s.counters.stateChanges,
      dropped: Object.fromEntries(Object.entries(s.counters.dropped).filter(([, n]) => n !== undefined)) as Record<string, number>,
    },
  }));
}
