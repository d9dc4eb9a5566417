// Where the agent's memory is: the process's resident set, and the JavaScript heap of each
// thread (V8 isolate) apart. The BFD worker thread is a second isolate with a heap of its
// own that the main thread's process.memoryUsage() does not count (docs/troubleshooting.md,
// "Memory"). Reported on /status and as metrics, so a leak or a waste shows per thread.
import { Gauge, type Registry } from 'prom-client';
import { metricsRegistry } from './metrics.js';

/** One thread's JavaScript heap, from process.memoryUsage() on that thread. Bytes. */
export interface ThreadMemoryReport {
  /** "main", or the worker's purpose: "bfd". */
  readonly thread: string;
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
  /** C++ objects bound to JavaScript objects (buffers included). */
  readonly externalBytes: number;
  /** ArrayBuffers and Buffers, a part of external. */
  readonly arrayBuffersBytes: number;
}

export interface MemoryReport {
  /** Resident set of the whole process (every thread, the node binary's pages, malloc). */
  readonly rssBytes: number;
  /** The main thread first, then each worker thread that has reported. */
  readonly threads: readonly ThreadMemoryReport[];
}

/** This thread's heap, as process.memoryUsage() sees it (on a worker: the worker's isolate). */
export function threadMemory(thread: string, usage: NodeJS.MemoryUsage = process.memoryUsage()): ThreadMemoryReport {
  return {
    thread,
    heapUsedBytes: usage.heapUsed,
    heapTotalBytes: usage.heapTotal,
    externalBytes: usage.external,
    arrayBuffersBytes: usage.arrayBuffers,
  };
}

/** The process now: its RSS and the main thread's heap, plus what the workers last reported. */
export function memoryReport(workers: readonly ThreadMemoryReport[] = []): MemoryReport {
  const usage = process.memoryUsage();
  return { rssBytes: usage.rss, threads: [threadMemory('main', usage), ...workers] };
}

const KINDS = ['heapUsedBytes', 'heapTotalBytes', 'externalBytes', 'arrayBuffersBytes'] as const;
const KIND_LABEL: Readonly<Record<(typeof KINDS)[number], string>> = {
  heapUsedBytes: 'heap_used',
  heapTotalBytes: 'heap_total',
  externalBytes: 'external',
  arrayBuffersBytes: 'array_buffers',
};

/**
 * `kst_thread_memory_bytes{thread, kind}`: each thread's heap, read at scrape time (the
 * process-wide RSS is prom-client's `kst_process_resident_memory_bytes`). `workers` gives
 * the worker threads' last reports.
 */
export function registerMemoryMetrics(workers: () => readonly ThreadMemoryReport[], registry: Registry = metricsRegistry): void {
  if (registry.getSingleMetric('kst_thread_memory_bytes')) registry.removeSingleMetric('kst_thread_memory_bytes');
  new Gauge({
    name: 'kst_thread_memory_bytes',
    help: 'JavaScript heap of each thread of the agent (main, bfd), by kind: heap_used, heap_total, external, array_buffers',
    labelNames: ['thread', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of memoryReport(workers()).threads) {
        for (const k of KINDS) this.set({ thread: t.thread, kind: KIND_LABEL[k] }, t[k]);
      }
    },
  });
}
