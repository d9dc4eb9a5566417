// The bgp area's Prometheus metrics, registered once in the agent's registry and updated
// where the event happens (speaker passes, peer events, gobgpd errors).
import { Counter, Gauge } from 'prom-client';
import { metricsRegistry } from '../observe/index.js';

const SESSION_STATE_VALUE: Record<string, number> = {
  unknown: 0, idle: 1, connect: 2, active: 3, opensent: 4, openconfirm: 5, established: 6,
};

function once<T>(name: string, make: () => T): T {
  return (metricsRegistry.getSingleMetric(name) as T | undefined) ?? make();
}

export const bgpMetrics = {
  announcements: once('kst_bgp_announcements', () => new Gauge({
    name: 'kst_bgp_announcements',
    help: 'Host routes this node currently announces through gobgpd, by address family.',
    labelNames: ['family'] as const,
    registers: [metricsRegistry],
  })),
  peerState: once('kst_bgp_peer_state', () => new Gauge({
    name: 'kst_bgp_peer_state',
    help: 'BGP session state per peer: 0 unknown, 1 idle, 2 connect, 3 active, 4 opensent, 5 openconfirm, 6 established.',
    labelNames: ['peer'] as const,
    registers: [metricsRegistry],
  })),
  errors: once('kst_bgp_errors_total', () => new Counter({
    name: 'kst_bgp_errors_total',
    help: 'Failed gobgpd operations (and announcements refused before reaching it), by operation.',
    labelNames: ['op'] as const,
    registers: [metricsRegistry],
  })),
  updates: once('kst_bgp_updates_total', () => new Counter({
    name: 'kst_bgp_updates_total',
    help: 'Host routes announced or withdrawn through gobgpd.',
    labelNames: ['kind'] as const,
    registers: [metricsRegistry],
  })),
  sessionStateValue(state: string): number {
    return SESSION_STATE_VALUE[state] ?? 0;
  },
};
