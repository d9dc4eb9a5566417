// The bgp area's Prometheus metrics, registered once in the agent's registry and updated
// where the event happens (speaker passes, peer events, gobgpd errors).
import { Counter, Gauge } from 'prom-client';
import { metricsRegistry } from '../observe/index.js';

const SESSION_STATE_VALUE: Record<string, number> = {
  unknown: 0, idle: 1, connect: 2, active: 3, opensent: 4, openconfirm: 5, established: 6,
};

/** Peer -> when its session became Established (ms epoch), undefined while it is not. */
const establishedSince = new Map<string, number | undefined>();

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
  peerUptime: once('kst_bgp_peer_uptime_seconds', () => new Gauge({
    name: 'kst_bgp_peer_uptime_seconds',
    help: 'Seconds since the BGP session to the peer became Established; 0 while it is not.',
    labelNames: ['peer'] as const,
    registers: [metricsRegistry],
    collect() {
      // Computed at scrape time: a value stored at the event would be stale at once.
      this.reset();
      const now = Date.now();
      for (const [peer, since] of establishedSince) this.set({ peer }, since === undefined ? 0 : Math.max(0, Math.floor((now - since) / 1000)));
    },
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
  /** Records when `peer`'s session became Established (undefined: it is not). */
  setPeerEstablishedAt(peer: string, since: number | undefined): void {
    establishedSince.set(peer, since);
  },
  removePeer(peer: string): void {
    establishedSince.delete(peer);
  },
  sessionStateValue(state: string): number {
    return SESSION_STATE_VALUE[state] ?? 0;
  },
};
