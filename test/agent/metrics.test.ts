import { metricsRegistry, silentLogger } from '../../src/observe/index.js';
import { registerAgentMetrics } from '../../src/agent/metrics.js';
import type { DesiredState, VipPlan } from '../../src/model/index.js';

const vip = (address: string, announced: boolean, name: string): VipPlan =>
  ({ vip: address, family: 4, service: { namespace: 'shop', name, uid: name }, pool: 'p', table: { backends: [], buckets: [], generation: 0 }, sourceRanges: [], announced, announceReason: '' }) as unknown as VipPlan;

describe('agent metrics', () => {
  it('export VIPs by state and the kernel per-VIP counters with the Service, read once per scrape', async () => {
    let reads = 0;
    const desired = { vips: [vip('203.0.113.10', true, 'web'), vip('203.0.113.11', false, 'api')] } as unknown as DesiredState;
    registerAgentMetrics({
      desired: () => desired,
      vipCounters: async () => {
        reads += 1;
        return [{ vip: '203.0.113.10', packets: 42, bytes: 4200 }];
      },
      logger: silentLogger(),
    });
    const text = await metricsRegistry.metrics();
    expect(text).toMatch(/kst_vips\{state="announced"\} 1/);
    expect(text).toMatch(/kst_vips\{state="not_announced"\} 1/);
    expect(text).toMatch(/kst_vip_packets_total\{vip="203.0.113.10",service="shop\/web"\} 42/);
    expect(text).toMatch(/kst_vip_bytes_total\{vip="203.0.113.10",service="shop\/web"\} 4200/);
    expect(reads).toBe(1);
  });
});
