// The serving-node side's metrics, registered once in the agent's registry.
import { Counter, Gauge, Histogram } from 'prom-client';
import { metricsRegistry } from '../observe/index.js';

function once<T>(name: string, make: () => T): T {
  return (metricsRegistry.getSingleMetric(name) as T | undefined) ?? make();
}

/** Pods by state: ready (VIPs local), pending (retrying), refused (never set up, e.g. hostNetwork). */
export const podnetSetups = once('kst_podnet_setups', () => new Gauge({
  name: 'kst_podnet_setups',
  help: 'Pod namespaces the serving-node side manages, by state.',
  labelNames: ['state'] as const,
  registers: [metricsRegistry],
}));

export const podnetErrors = once('kst_podnet_errors_total', () => new Counter({
  name: 'kst_podnet_errors_total',
  help: 'Failed pod namespace set-ups and clean-ups, by reason.',
  labelNames: ['reason'] as const,
  registers: [metricsRegistry],
}));

export const podnetDiscoverySeconds = once('kst_podnet_discovery_seconds', () => new Histogram({
  name: 'kst_podnet_discovery_seconds',
  help: 'Time to scan candidate network namespaces for pod IPs.',
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [metricsRegistry],
}));

export const podnetOrphanSweeps = once('kst_podnet_orphan_sweeps_total', () => new Counter({
  name: 'kst_podnet_orphan_sweeps_total',
  help: 'Sweeps of pod namespaces no pod wants for objects a previous agent left behind.',
  registers: [metricsRegistry],
}));

export const podnetOrphansRemoved = once('kst_podnet_orphans_removed_total', () => new Counter({
  name: 'kst_podnet_orphans_removed_total',
  help: 'Objects removed by orphan sweeps, by kind (namespace counts the namespaces cleaned).',
  labelNames: ['kind'] as const,
  registers: [metricsRegistry],
}));
