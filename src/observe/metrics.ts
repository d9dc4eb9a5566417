import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The agent's one Prometheus registry. Each area declares its own metrics next to the
 * code that updates them (metrics are updated where the event happens) and registers
 * them here, all under the `kst_` prefix.
 */
export const metricsRegistry = new Registry();

let defaultsCollected = false;
export function collectProcessMetrics(): void {
  if (defaultsCollected) return;
  defaultsCollected = true;
  collectDefaultMetrics({ register: metricsRegistry, prefix: 'kst_' });
}
