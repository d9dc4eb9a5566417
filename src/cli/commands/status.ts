// `kst status`: asks a running agent (its api.listen endpoint) for GET /status and prints
// its flow-hash backend, the VIPs, BGP peers, BFD sessions, Kubernetes feeds and last reconcile runs as
// tables, or the JSON.
import { parseListenAddress, parseStatusReport, type KernelReport, type MemoryReport, type StatusReport } from '../../observe/index.js';
import type { Command } from '../command.js';
import { parseCommandArgs } from '../args.js';
import { renderBgpPeers } from '../bgp-peers.js';
import { ago, duration, oneLine, table } from '../table.js';

export { duration };

const DEFAULT_ADDRESS = '127.0.0.1:9742';

const USAGE = `usage: kst status [--address HOST:PORT] [--json] [--timeout MS]

  --address HOST:PORT   the agent's api.listen (default ${DEFAULT_ADDRESS}, or env KST_API_ADDRESS)
  --json                print the agent's JSON report instead of tables
  --timeout MS          give up after this long (default 5000)`;

/** http://HOST:PORT/status; an agent listening on all addresses is asked on loopback. */
export function statusUrl(address: string): string {
  const { host, port } = parseListenAddress(address);
  const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${target.includes(':') ? `[${target}]` : target}:${port}/status`;
}

/** Fetches and checks the agent's report; errors say which address and what failed. */
export async function fetchStatus(address: string, timeoutMs = 5000): Promise<StatusReport> {
  const url = statusUrl(address);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    // Duck-typed: fetch's errors may come from another realm (jest), where instanceof fails.
    const e = err as { name?: string; message?: string; cause?: { message?: string } } | undefined;
    const why = e?.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e?.cause?.message ?? e?.message ?? String(err));
    throw new Error(`cannot reach the agent at ${url}: ${why} (is \`kst agent\` running? see --address)`, { cause: err });
  }
  const text = await res.text();
  if (!res.ok) {
    let detail = text.trim();
    try {
      detail = String((JSON.parse(text) as { error?: unknown }).error ?? detail);
    } catch {
      // not JSON: show the body as it is
    }
    throw new Error(`${url} answered ${res.status}: ${detail}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${url} did not return JSON: ${text.slice(0, 200)}`);
  }
  return parseStatusReport(body);
}

export const command: Command = {
  summary: "show a running agent's VIPs, BGP peers, BFD sessions and last reconcile",
  async run(args) {
    const parsed = parseCommandArgs('status', args, {
          address: { type: 'string' },
          json: { type: 'boolean' },
          timeout: { type: 'string' },
          help: { type: 'boolean', short: 'h' },
        }, USAGE);
    if ('exit' in parsed) return parsed.exit;
    const { values } = parsed;
    const timeoutMs = values.timeout === undefined ? 5000 : Number(values.timeout);
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      console.error(`kst status: --timeout must be a positive number of milliseconds, got ${JSON.stringify(values.timeout)}`);
      return 2;
    }
    const address = values.address ?? (process.env.KST_API_ADDRESS || DEFAULT_ADDRESS);
    try {
      const report = await fetchStatus(address, timeoutMs);
      process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report));
      return 0;
    } catch (err) {
      console.error(`kst status: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  },
};

// ---------- rendering (pure; golden-tested in test/observe) ----------

const ROLE_WORDS: Readonly<Record<string, string>> = { tunnel: 'as a tunnel node', serving: 'for VIPs in pods' };

/** The kernel probe's findings at start and, first, what the configuration needs that is missing. */
export function renderKernel(kernel: KernelReport): string[] {
  const by = (state: string) => kernel.features.filter((f) => f.state === state).map((f) => f.feature);
  const parts = [['present', by('present')], ['absent', by('absent')], ['could not probe', by('unknown')]].filter(([, l]) => l!.length > 0).map(([w, l]) => `${w as string} ${(l as string[]).join(' ')}`);
  const out = [`kernel: ${parts.join('; ') || 'nothing probed'}`];
  if (kernel.missing.length === 0) out.push("kernel: the configuration's needs are met");
  else {
    out.push(`kernel: MISSING what the configuration needs (${kernel.missing.length}):`);
    for (const m of kernel.missing) out.push(`  ${ROLE_WORDS[m.role] ?? m.role}: ${oneLine(m.message)}`);
  }
  return out;
}

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MB`;

/** One line: the process's RSS, then each thread's heap (used of total) and external memory. */
export function renderMemory(memory: MemoryReport): string {
  const threads = memory.threads.map((t) => `${t.thread} heap ${mb(t.heapUsedBytes)} of ${mb(t.heapTotalBytes)}, external ${mb(t.externalBytes)}`);
  return `memory: RSS ${mb(memory.rssBytes)}${threads.length ? `; ${threads.join('; ')}` : ''}`;
}

/** The report as readable tables; `now` gives "12s ago" for the reconcile runs. */
export function renderStatus(report: StatusReport, now: Date = new Date()): string {
  const out: string[] = [];
  const head = [report.node ? `node ${report.node}` : 'agent', report.generatedAt ? `report of ${report.generatedAt}` : ''];
  out.push(head.filter(Boolean).join(', '));
  if (report.flowHash) out.push(`flow hash: ${report.flowHash.backend} (${oneLine(report.flowHash.reason)})`);
  if (report.kernel) out.push(...renderKernel(report.kernel));
  if (report.config) {
    const c = report.config;
    out.push(`config: generation ${c.generation}, hash ${c.hash}${c.file ? `, from ${c.file}` : ''}`);
    if (c.lastReload) out.push(`config: last reload ${c.lastReload.result} (${ago(c.lastReload.at, now)}): ${oneLine(c.lastReload.message)}`);
  }
  if (report.memory) out.push(renderMemory(report.memory));
  out.push('');

  out.push(`VIPs (${report.vips.length})`);
  out.push(...table(
    ['VIP', 'SERVICE', 'POOL', 'ENDPOINTS', 'ANNOUNCED', 'BUCKETS PER ENDPOINT', 'REASON'],
    report.vips.map((v) => [
      v.vip,
      v.service,
      v.pool ?? '-',
      String(v.endpoints.length),
      v.announced ? 'yes' : 'no',
      Object.entries(v.bucketsPerEndpoint).map(([addr, n]) => `${addr}=${n}`).join(' ') || '-',
      oneLine(v.reason),
    ]),
  ), '');

  out.push(`BGP peers (${report.bgpPeers.length})`);
  out.push(...renderBgpPeers(report.bgpPeers, now), '');

  out.push(`BFD sessions (${report.bfdSessions.length})`);
  out.push(...table(
    ['PEER', 'STATE', 'DIAG LOCAL/REMOTE', 'UPTIME', 'TX/RX MS', 'DETECT MS', 'PACKETS TX/RX', 'CHANGES', 'DROPPED'],
    report.bfdSessions.map((s) => [
      s.peer,
      s.state,
      `${s.localDiag}/${s.remoteDiag}`,
      duration(s.uptimeSeconds),
      `${s.txIntervalMs}/${s.rxIntervalMs}`,
      String(s.detectTimeMs),
      `${s.counters.txPackets}/${s.counters.rxPackets}`,
      String(s.counters.stateChanges),
      Object.entries(s.counters.dropped ?? {}).filter(([, n]) => n).map(([why, n]) => `${why}=${n}`).join(' ') || '-',
    ]),
  ), '');

  if (report.kube) {
    const k = report.kube;
    out.push(`Kubernetes (this agent ${k.leader ? 'leads' : 'does not lead'}${k.leaseHolder && !k.leader ? `; leader: ${k.leaseHolder}` : ''})`);
    out.push(...table(
      ['FEED', 'LAST EVENT', 'STATE', 'RESOURCE VERSION', 'LAST LIST', 'ERROR'],
      k.feeds.map((f) => [
        f.feed,
        f.lastEventAgeSeconds === undefined ? '-' : `${duration(f.lastEventAgeSeconds)} ago`,
        f.stale ? 'STALE' : f.failing ? 'failing' : 'live',
        f.resourceVersion ?? '-',
        f.lastListAt ? ago(f.lastListAt, now) : '-',
        oneLine(f.lastError),
      ]),
    ), '');
  }

  out.push('Last reconcile');
  out.push(...table(
    ['AREA', 'RESULT', 'LAST RUN', 'DURATION', 'ERROR'],
    report.reconcile.map((r) => [r.area, r.lastResult, `${r.lastRunAt} (${ago(r.lastRunAt, now)})`, `${Math.round(r.durationMs)} ms`, oneLine(r.lastError)]),
  ));
  return `${out.join('\n')}\n`;
}
