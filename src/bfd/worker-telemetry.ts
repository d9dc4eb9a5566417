// The BFD worker's logger and metrics without winston or prom-client (telemetry.ts says
// why): log lines and metric values go to the main thread, whose logger and registry are
// the agent's. The metric values have the shape of prom-client's getMetricsAsJSON, which
// ThreadedBfdManager mirrors into the agent's registry.
import type { BfdLog, BfdMetricSink, LabelledCounter, LabelledGauge } from './telemetry.js';
import type { MetricValues } from './worker-messages.js';

type Labels = Readonly<Record<string, string | number>>;

/** A logger that hands every line, with its context, to `send`; the main thread's logger filters levels. */
export function forwardingLog(send: (level: string, message: string, meta: Record<string, unknown>) => void, context: Labels = {}): BfdLog {
  // JSON drops anything that cannot cross threads (functions, symbols).
  const at = (level: string) => (message: string, meta?: object) => send(level, message, JSON.parse(JSON.stringify({ ...context, ...meta })) as Record<string, unknown>);
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: (meta) => forwardingLog(send, { ...context, ...meta }) };
}

/** One metric: its series by label set (label order as first used, as prom-client keeps it). */
class Series implements LabelledCounter, LabelledGauge {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string) {}
  inc(labels: Labels, value = 1): void {
    const key = JSON.stringify(labels);
    const s = this.values.get(key);
    if (s) s.value += value;
    else this.values.set(key, { labels: { ...labels }, value });
  }
  set(labels: Labels, value: number): void {
    this.values.set(JSON.stringify(labels), { labels: { ...labels }, value });
  }
  remove(labels: Labels): void {
    this.values.delete(JSON.stringify(labels));
  }
  snapshot(): MetricValues {
    return { name: this.name, values: [...this.values.values()].map((s) => ({ labels: { ...s.labels }, value: s.value })) };
  }
}

/** The kst_bfd_* metrics as plain values, and their current values for the main thread. */
export function recordingMetrics(): { readonly sink: BfdMetricSink; values(): MetricValues[] } {
  const all = {
    sessionState: new Series('kst_bfd_session_state'),
    packets: new Series('kst_bfd_packets_total'),
    dropped: new Series('kst_bfd_dropped_total'),
    stateChanges: new Series('kst_bfd_state_changes_total'),
  };
  return { sink: all, values: () => Object.values(all).map((s) => s.snapshot()) };
}
