// The memory report (issue 15): each thread's heap as a metric, the /status wire format,
// and the line `kst status` prints.
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { memoryReport, parseStatusReport, registerMemoryMetrics, type ThreadMemoryReport } from '../../src/observe/index.js';
import { renderMemory } from '../../src/cli/commands/status.js';

const bfd: ThreadMemoryReport = { thread: 'bfd', heapUsedBytes: 5 * 2 ** 20, heapTotalBytes: 8 * 2 ** 20, externalBytes: 2 ** 20, arrayBuffersBytes: 1024 };

const gauge = (text: string, thread: string, kind: string): number =>
  Number(new RegExp(`^kst_thread_memory_bytes\\{thread="${thread}",kind="${kind}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);

describe('memory report', () => {
  it("is this process's RSS, its main heap, then the workers' last reports", () => {
    const r = memoryReport([bfd]);
    expect(r.threads.map((t) => t.thread)).toEqual(['main', 'bfd']);
    expect(r.threads[1]).toBe(bfd);
    const main = r.threads[0]!;
    expect(main.heapUsedBytes).toBeGreaterThan(2 ** 20);
    expect(main.heapUsedBytes).toBeLessThanOrEqual(main.heapTotalBytes);
    expect(r.rssBytes).toBeGreaterThan(main.heapUsedBytes);
  });

  it('kst_thread_memory_bytes has every thread and kind, read at scrape time', async () => {
    const registry = new Registry();
    let workers: ThreadMemoryReport[] = [];
    registerMemoryMetrics(() => workers, registry);
    let text = await registry.metrics();
    expect(gauge(text, 'main', 'heap_used')).toBeGreaterThan(2 ** 20);
    expect(gauge(text, 'main', 'heap_total')).toBeGreaterThanOrEqual(gauge(text, 'main', 'heap_used'));
    expect(gauge(text, 'main', 'external')).toBeGreaterThan(0);
    expect(gauge(text, 'main', 'array_buffers')).toBeGreaterThanOrEqual(0);
    expect(text).not.toContain('thread="bfd"');
    workers = [bfd];
    text = await registry.metrics();
    expect(gauge(text, 'bfd', 'heap_used')).toBe(5 * 2 ** 20);
    expect(gauge(text, 'bfd', 'array_buffers')).toBe(1024);
    // A worker that stopped reporting (crashed, stopped) leaves no stale series behind.
    workers = [];
    expect(await registry.metrics()).not.toContain('thread="bfd"');
  });

  it('passes the /status schema; a negative or missing figure does not', () => {
    const report = { vips: [], bgpPeers: [], bfdSessions: [], reconcile: [], memory: memoryReport([bfd]) };
    expect(parseStatusReport(JSON.parse(JSON.stringify(report)))).toEqual(report);
    expect(() => parseStatusReport({ ...report, memory: { rssBytes: -1, threads: [] } })).toThrow(/status: memory\.rssBytes/);
    const { heapUsedBytes: _gone, ...partial } = bfd;
    expect(() => parseStatusReport({ ...report, memory: { rssBytes: 1, threads: [partial] } })).toThrow(/status: memory\.threads\[0\]\.heapUsedBytes/);
  });

  it('renders as one line in megabytes', () => {
    const main = { ...bfd, thread: 'main', heapUsedBytes: 40.25 * 2 ** 20, heapTotalBytes: 48 * 2 ** 20, externalBytes: 3 * 2 ** 20 };
    expect(renderMemory({ rssBytes: 97.5 * 2 ** 20, threads: [main, bfd] })).toBe(
      'memory: RSS 97.5 MB; main heap 40.3 MB of 48.0 MB, external 3.0 MB; bfd heap 5.0 MB of 8.0 MB, external 1.0 MB',
    );
  });
});
