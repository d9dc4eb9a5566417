// Data-plane metrics, registered once in the agent's registry and updated where the
// event happens (the reconcile loop).
import { Counter, Histogram } from 'prom-client';
import { metricsRegistry } from '../observe/index.js';

function existing<T>(name: string): T | undefined {
  return metricsRegistry.getSingleMetric(name) as T | undefined;
}

export const reconcileDuration =
  existing<Histogram<'kind'>>('kst_dataplane_reconcile_duration_seconds') ??
  new Histogram({
    name: 'kst_dataplane_reconcile_duration_seconds',
    help: 'Time from starting a data-plane reconcile to the kernel being updated.',
    labelNames: ['kind'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [metricsRegistry],
  });

export const reconcileErrors =
  existing<Counter>('kst_dataplane_reconcile_errors_total') ??
  new Counter({
    name: 'kst_dataplane_reconcile_errors_total',
    help: 'Data-plane reconciles that failed (the last good state keeps serving; retried with backoff).',
    registers: [metricsRegistry],
  });

export const kernelOperations =
  existing<Counter>('kst_dataplane_kernel_operations_total') ??
  new Counter({
    name: 'kst_dataplane_kernel_operations_total',
    help: 'Kernel objects (routes, rules, links, nft objects) created, changed or deleted by the data plane.',
    registers: [metricsRegistry],
  });
