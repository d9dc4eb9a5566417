// BFD metrics, updated where the events happen (session state changes, packets in and out,
// drops). Created once per process in the shared registry, so several managers (tests,
// the lab) share them with distinct `peer` labels.
import { Counter, Gauge, type Registry } from 'prom-client';
import { metricsRegistry } from '../observe/index.js';

export interface BfdMetrics {
  readonly sessionState: Gauge<'peer'>;
  readonly packets: Counter<'peer' | 'direction'>;
  readonly dropped: Counter<'reason'>;
  readonly stateChanges: Counter<'peer' | 'state'>;
}

const cache = new WeakMap<Registry, BfdMetrics>();

export function bfdMetrics(registry: Registry = metricsRegistry): BfdMetrics {
  const existing = cache.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const m: BfdMetrics = {
    sessionState: new Gauge({
      name: 'kst_bfd_session_state',
      help: 'BFD session state per peer (RFC 5880 codes: 0 AdminDown, 1 Down, 2 Init, 3 Up).',
      labelNames: ['peer'],
      registers,
    }),
    packets: new Counter({
      name: 'kst_bfd_packets_total',
      help: 'BFD control packets per peer, direction rx (accepted) or tx.',
      labelNames: ['peer', 'direction'],
      registers,
    }),
    dropped: new Counter({
      name: 'kst_bfd_dropped_total',
      help: 'Received BFD control packets dropped, by reason (RFC 5880 6.8.6 validation, demultiplexing).',
      labelNames: ['reason'],
      registers,
    }),
    stateChanges: new Counter({
      name: 'kst_bfd_state_changes_total',
      help: 'BFD session state changes per peer and new state.',
      labelNames: ['peer', 'state'],
      registers,
    }),
  };
  cache.set(registry, m);
  return m;
}
