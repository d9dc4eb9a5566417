// The conversation between ThreadedBfdManager (main thread) and worker.ts (BFD thread).
// Plain data only: everything crosses the thread boundary by structured clone.
import type { DropReason } from './codec.js';
import type { BfdSessionSpec, BfdSessionStatus, BfdStateEvent } from './manager.js';

export interface WorkerOptions {
  /** How often the worker reports counters and metrics between events. */
  readonly snapshotIntervalMs: number;
  /** BfdManager's retry of sessions whose sockets could not be opened. */
  readonly retryMs?: number;
}

export type WorkerCommand =
  | { readonly op: 'set'; readonly sessions: readonly BfdSessionSpec[] }
  | { readonly op: 'adminDown'; readonly peer?: string }
  | { readonly op: 'adminUp'; readonly peer?: string }
  | { readonly op: 'snapshot' }
  | { readonly op: 'stop'; readonly adminDown: boolean }
  /** Test hook: an uncaught exception on the BFD thread. */
  | { readonly op: 'crash' };

export type ToWorker = WorkerCommand & { readonly id: number };

/** One metric of the worker's registry: `kst_bfd_*` name and its label sets. */
export interface MetricValues {
  readonly name: string;
  readonly values: ReadonlyArray<{ readonly labels: Readonly<Record<string, string | number>>; readonly value: number }>;
}

export interface WorkerSnapshot {
  readonly sessions: BfdSessionStatus[];
  readonly unmatched: Readonly<Partial<Record<DropReason, number>>>;
  /** Absent when only the sessions are reported (state events, synchronously). */
  readonly metrics?: readonly MetricValues[];
  /** The worker's own heap (its isolate), with the metrics; bytes. */
  readonly memory?: WorkerMemory;
}

/** process.memoryUsage() on the worker: the heap figures are its isolate's, not the process's. */
export interface WorkerMemory {
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
  readonly externalBytes: number;
  readonly arrayBuffersBytes: number;
}

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'reply'; readonly id: number; readonly error?: string; readonly snapshot: WorkerSnapshot }
  | { readonly type: 'state'; readonly event: BfdStateEvent; readonly snapshot: WorkerSnapshot }
  | { readonly type: 'snapshot'; readonly snapshot: WorkerSnapshot }
  | { readonly type: 'log'; readonly level: string; readonly message: string; readonly meta: Record<string, unknown> }
  | { readonly type: 'error'; readonly message: string };
