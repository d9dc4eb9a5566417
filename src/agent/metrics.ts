// Agent-level metrics, read at scrape time: VIPs by state, and the kernel's per-VIP
// accounting counters (packets and bytes that reached each VIP on this tunnel node).
import { Counter, Gauge } from 'prom-client';
import type { DesiredState } from '../model/index.js';
import { metricsRegistry, type Logger } from '../observe/index.js';

export interface AgentMetricSources {
  readonly desired: () => DesiredState | undefined;
  /** The kernel's per-VIP counters (nftables), absent where the data plane keeps none. */
  readonly vipCounters?: () => Promise<ReadonlyArray<{ readonly vip: string; readonly packets: number; readonly bytes: number }>>;
  readonly logger: Logger;
}

/** Registers the collectors once per process; `sources` is read at every scrape. */
export function registerAgentMetrics(sources: AgentMetricSources): void {
  if (metricsRegistry.getSingleMetric('kst_vips')) return;
  new Gauge({
    name: 'kst_vips',
    help: 'VIPs this node knows, by state: announced, or not announced (no ready endpoints, maintenance, not a tunnel node).',
    labelNames: ['state'],
    registers: [metricsRegistry],
    collect() {
      const vips = sources.desired()?.vips ?? [];
      const announced = vips.filter((v) => v.announced).length;
      this.set({ state: 'announced' }, announced);
      this.set({ state: 'not_announced' }, vips.length - announced);
    },
  });
  if (!sources.vipCounters) return;
  const read = sources.vipCounters;
  // One kernel read per scrape serves both counters (they are collected one after the other).
  let last: { at: number; rows: Promise<Array<{ vip: string; service: string; packets: number; bytes: number }>> } | undefined;
  const rows = () => {
    if (last && Date.now() - last.at < 1000) return last.rows;
    const service = new Map<string, string>();
    for (const v of sources.desired()?.vips ?? []) service.set(v.vip, `${v.service.namespace}/${v.service.name}`);
    const p = read().then(
      (counters) => counters.map((c) => ({ vip: c.vip, service: service.get(c.vip) ?? '', packets: c.packets, bytes: c.bytes })),
      (err: unknown) => {
        sources.logger.debug(`vip counters unavailable: ${err instanceof Error ? err.message : String(err)}`);
        return [];
      },
    );
    last = { at: Date.now(), rows: p };
    return p;
  };
  // Cumulative kernel counters exposed as counters: the kernel resets them only when the
  // nft table is rebuilt (new bucket count or seed), which Prometheus sees as a reset.
  for (const [name, field, what] of [
    ['kst_vip_packets_total', 'packets', 'Packets'],
    ['kst_vip_bytes_total', 'bytes', 'Bytes'],
  ] as const) {
    new Counter({
      name,
      help: `${what} to the VIP seen by this tunnel node (nftables counter).`,
      labelNames: ['vip', 'service'],
      registers: [metricsRegistry],
      async collect() {
        const current = await rows();
        this.reset();
        for (const r of current) this.inc({ vip: r.vip, service: r.service }, r[field]);
      },
    });
  }
}
