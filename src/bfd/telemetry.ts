// What BfdManager needs of a logger and of metrics, as structural types with no imports:
// the BFD worker thread is a V8 isolate of its own, and every module it loads costs memory
// there again. winston, prom-client and the observe area (zod, the HTTP server) cost the
// worker about 20 MB of RSS for four counters and a few log lines (docs/troubleshooting.md,
// "Memory"); the worker uses the light versions in worker-telemetry.ts instead. The agent's
// winston logger and prom-client metrics (metrics.ts) fit these types as they are.

type Labels = Readonly<Record<string, string | number>>;

/** The log methods BfdManager calls; a winston Logger is one. */
export interface BfdLog {
  error(message: string, meta?: object): unknown;
  warn(message: string, meta?: object): unknown;
  info(message: string, meta?: object): unknown;
  debug(message: string, meta?: object): unknown;
  child(meta: Labels): BfdLog;
}

export interface LabelledCounter {
  inc(labels: Labels, value?: number): void;
}

export interface LabelledGauge {
  set(labels: Labels, value: number): void;
  remove(labels: Labels): void;
}

/** Where BfdManager counts; metrics.ts's prom-client BfdMetrics is one. */
export interface BfdMetricSink {
  readonly sessionState: LabelledGauge;
  readonly packets: LabelledCounter;
  readonly dropped: LabelledCounter;
  readonly stateChanges: LabelledCounter;
}

const ignore = (): void => {};

/** Drops every line. */
export const quietLog: BfdLog = { error: ignore, warn: ignore, info: ignore, debug: ignore, child: () => quietLog };

/** Counts nothing. */
export const noMetrics: BfdMetricSink = {
  sessionState: { set: ignore, remove: ignore },
  packets: { inc: ignore },
  dropped: { inc: ignore },
  stateChanges: { inc: ignore },
};
