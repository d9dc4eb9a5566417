// `kst lab drill`: the resilience drill of issue 8. While the client streams UDP to the
// VIP, each drill breaks one thing the way production breaks it, then measures:
//   - the traffic gap (longest silence of any flow) and whether flows changed pod,
//   - that the system recovers (the router has the VIP over every tunnel node again),
//   - that the agents restore the kernel exactly: each node's and pod's project-owned
//     kernel state (links and addresses, rules, proto-245 routes, nftables) is
//     byte-for-byte what it was before the drill, so nothing was lost or duplicated.
// Killed processes are restarted after a second, as the kubelet restarts a container.
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand, ROUTE_PROTOCOL, type CommandRunner } from '../system/index.js';
import { alive, startDaemon } from './daemon.js';
import { Podman } from './runtime/podman.js';
import { rollingUpdate } from './runtime/rollout.js';
import { waitFor } from './frr.js';
import { labPaths, readState, runningTopology, writeState, type LabPaths, type LabState } from './state.js';
import { routerWantedHops } from './routed.js';
import { hostsByRole, kubeNodes, type LabTopology } from './topology.js';
import { setCable, StepFailed, stream, streamFigures, vipNextHops, type Ctx, type StreamFigures } from './traffic.js';

export interface DrillResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly figures?: StreamFigures & { readonly recoveredMs: number | null; readonly kernelObjects: number; readonly kernelChanges: number };
}

export interface DrillReport {
  readonly prefix: string;
  readonly drills: DrillResult[];
}

export const DRILL_KEYS = ['gobgpd', 'agent', 'apiserver', 'api-blackhole', 'flap', 'rollout'] as const;
export type DrillKey = (typeof DRILL_KEYS)[number];

export interface DrillOptions {
  readonly prefix: string;
  /** Run only these drills (default: all, in DRILL_KEYS order). */
  readonly only?: readonly DrillKey[];
  readonly progress?: (line: string) => void;
  /** How long the API server stays stopped (the issue: 30 s). */
  readonly apiOutageSeconds?: number;
  readonly run?: CommandRunner;
}

interface Disruption {
  /** Short name for `--only`. */
  readonly key: DrillKey;
  readonly name: string;
  /** Breaks something and repairs it (or lets it be repaired); resolves when done. */
  readonly act: () => Promise<void>;
  /** How long `act` takes, to size the stream around it. */
  readonly durationMs: number;
}

const KILL_RESTART_DELAY_MS = 1000;
const STREAM = { flows: 16, intervalMs: 20 } as const;

/** The project-owned kernel state of one namespace, normalised for comparison. */
async function kernelFingerprint(run: CommandRunner, netns: string): Promise<string[]> {
  const out = async (file: string, args: string[]): Promise<string[]> => {
    const r = await run(file, args, { netns, allowFailure: true });
    return r.stdout.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  };
  const lines = [
    ...(await out('ip', ['-br', 'addr'])).map((l) => `addr ${l}`),
    ...(await out('ip', ['rule'])).map((l) => `rule4 ${l}`),
    ...(await out('ip', ['-6', 'rule'])).map((l) => `rule6 ${l}`),
    ...(await out('ip', ['route', 'show', 'table', 'all', 'proto', String(ROUTE_PROTOCOL)])).map((l) => `route4 ${l}`),
    ...(await out('ip', ['-6', 'route', 'show', 'table', 'all', 'proto', String(ROUTE_PROTOCOL)])).map((l) => `route6 ${l}`),
    // -s: without counters, which move with the traffic; nor the elements of dynamic sets
    // and maps (connection pinning's flow map), which the packet path fills.
    ...withoutDynamicElements(await out('nft', ['-s', 'list', 'ruleset'])).map((l) => `nft ${l.trim()}`),
  ];
  return lines.map((l) => `${netns}: ${l}`);
}

/**
 * `nft list` output without the elements of sets and maps flagged dynamic: those are
 * written by the packet path (`update @map { ... }`), not by the agent, and change with
 * every new flow. The set's declaration stays, so a lost or duplicated map still shows.
 */
export function withoutDynamicElements(lines: readonly string[]): string[] {
  const out: string[] = [];
  let dynamic = false;
  let skipping = false;
  for (const line of lines) {
    const t = line.trim();
    if (skipping) {
      if (t.endsWith('}')) skipping = false;
      continue;
    }
    if (/^(set|map) \S+ \{$/.test(t)) dynamic = false;
    else if (/^flags .*\bdynamic\b/.test(t)) dynamic = true;
    else if (dynamic && t.startsWith('elements = {')) {
      skipping = !t.endsWith('}');
      continue;
    }
    out.push(line);
  }
  return out;
}

async function fingerprint(ctx: Ctx): Promise<string[]> {
  const hosts = ctx.topo.hosts.filter((h) => h.role === 'tunnel-node' || h.role === 'serving-node' || h.role === 'pod');
  return (await Promise.all(hosts.map((h) => kernelFingerprint(ctx.run, h.netns)))).flat().sort();
}

function diff(before: readonly string[], after: readonly string[]): string[] {
  const count = (xs: readonly string[]): Map<string, number> => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());
  const b = count(before);
  const a = count(after);
  const out: string[] = [];
  for (const [line, n] of a) if (n > (b.get(line) ?? 0)) out.push(`+ ${line}`);
  for (const [line, n] of b) if (n > (a.get(line) ?? 0)) out.push(`- ${line}`);
  return out;
}

/** `kill -9` a lab process (gobgpd, agent) and start it again 1 s later with the same command line, as the kubelet would. */
export async function killAndRestart(paths: LabPaths, kind: string, hostName: string): Promise<void> {
  const state = readState(paths);
  const p = state?.processes.find((x) => x.kind === kind && x.host === hostName);
  if (!state || !p) throw new StepFailed(`no ${kind} process on ${hostName} in the lab state`);
  if (!p.container && (!p.argv || !p.logFile)) throw new StepFailed(`the lab state does not say how ${kind} on ${hostName} was started`);
  if (!alive(p.pid)) throw new StepFailed(`${kind} on ${hostName} (pid ${p.pid}) was not running before the drill`);
  process.kill(p.pid, 'SIGKILL');
  await waitFor(() => !alive(p.pid), 5000);
  await sleep(KILL_RESTART_DELAY_MS);
  // With --runtime podman the kubelet's restart is the container's: same pod, same spec.
  const pid = p.container ? await new Podman().restart(p.container) : startDaemon({ netns: p.netns, argv: p.argv!, logFile: p.logFile!, ...(p.env ? { env: p.env } : {}) });
  const next: LabState = { ...state, processes: state.processes.map((x) => (x === p ? { ...x, pid } : x)) };
  writeState(paths, next);
}

async function pauseApiServer(paths: LabPaths, seconds: number): Promise<void> {
  const p = readState(paths)?.processes.find((x) => x.kind === 'apiserver');
  if (!p || !alive(p.pid)) throw new StepFailed('the API server is not running');
  // Frozen, not gone: connections stay open and requests hang, as with a wedged control plane.
  process.kill(p.pid, 'SIGSTOP');
  try {
    await sleep(seconds * 1000);
  } finally {
    process.kill(p.pid, 'SIGCONT');
  }
}

/** The drill's own nftables table: not the agent's (`kst`), so the agent never sees or removes it. */
const BLACKHOLE_TABLE = 'kstlab_drill_blackhole';

/**
 * One node's path to the API server black-holed for `seconds`: packets to and from the API
 * server's port are dropped inside that node's namespace, so its open watches go silent and
 * new requests are accepted by nobody and never answered, as behind a wedged load balancer.
 * The other nodes, the API server and the data path are untouched.
 */
async function blackholeApiPath(ctx: Ctx, netns: string, api: LabTopology['apiServer'], seconds: number): Promise<void> {
  const script = [
    `table inet ${BLACKHOLE_TABLE} {`,
    '  chain out {',
    '    type filter hook output priority 0; policy accept;',
    `    ip daddr ${api.address} tcp dport ${api.port} drop`,
    '  }',
    '  chain in {',
    '    type filter hook input priority 0; policy accept;',
    `    ip saddr ${api.address} tcp sport ${api.port} drop`,
    '  }',
    '}',
    '',
  ].join('\n');
  await ctx.run('nft', ['-f', '-'], { netns, input: script });
  try {
    await sleep(seconds * 1000);
  } finally {
    await ctx.run('nft', ['delete', 'table', 'inet', BLACKHOLE_TABLE], { netns, allowFailure: true });
  }
}

function disruptions(topo: LabTopology, ctx: Ctx, paths: LabPaths, apiOutageSeconds: number, runtime: LabState['runtime']): Disruption[] {
  const [t1, t2] = hostsByRole(topo, 'tunnel-node');
  if (!t1 || !t2) throw new Error('lab topology: the drill needs two tunnel nodes');
  const flapMs = 2000;
  return [
    { key: 'gobgpd', name: `kill -9 gobgpd on ${t1.name}`, durationMs: 2000, act: () => killAndRestart(paths, 'gobgpd', t1.name) },
    { key: 'agent', name: `kill -9 the agent on ${t1.name}`, durationMs: 2000, act: () => killAndRestart(paths, 'agent', t1.name) },
    { key: 'apiserver', name: `API server stopped ${apiOutageSeconds} s`, durationMs: apiOutageSeconds * 1000, act: () => pauseApiServer(paths, apiOutageSeconds) },
    {
      key: 'api-blackhole', name: `${t1.name}'s API path black-holed ${apiOutageSeconds} s`, durationMs: apiOutageSeconds * 1000,
      act: () => blackholeApiPath(ctx, t1.netns, topo.apiServer, apiOutageSeconds),
    },
    {
      key: 'flap', name: `${t2.name} link flaps (${flapMs / 1000} s)`, durationMs: flapMs,
      act: async () => {
        await setCable(ctx, t2.name, 'down');
        await sleep(flapMs);
        await setCable(ctx, t2.name, 'up');
      },
    },
    // Container mode only: the DaemonSet's RollingUpdate, one node at a time (runtime/rollout.ts).
    // The stream covers it whole: a node's replacement took 43-56 s at load 25-30 (preStop 15 s included).
    ...(runtime === 'podman' ? [{
      key: 'rollout' as const, name: 'rolling image update, node by node', durationMs: kubeNodes(topo).length * 60_000,
      act: async () => void (await rollingUpdate(topo, paths, () => undefined, { run: ctx.run })),
    }] : []),
  ];
}

async function runDrill(ctx: Ctx, d: Disruption, progress: (line: string) => void): Promise<DrillResult> {
  // Each drill starts from a whole system: the VIP over every tunnel node (racks: every ToR).
  const want = routerWantedHops(ctx.topo, ctx.vip).length;
  const whole = await waitFor(async () => (await vipNextHops(ctx)).length >= want, 45000, 250).then(() => true, () => false);
  if (!whole) throw new StepFailed(`the router did not have ${ctx.vip} over all ${want} tunnel nodes within 45 s before the drill (see \`kst lab status\`)`);
  const before = await fingerprint(ctx);
  const leadMs = 1000;
  const tailMs = 6000;
  const streaming = stream(ctx, { ...STREAM, durationMs: leadMs + d.durationMs + tailMs });
  await sleep(leadMs);
  progress(`  ${d.name} ...`);
  try {
    await d.act();
  } catch (err) {
    await streaming.catch(() => undefined);
    throw err;
  }
  const f = streamFigures(await streaming);
  const t0 = Date.now();
  const recovered = await waitFor(async () => (await vipNextHops(ctx)).length >= want, 45000, 250).then(() => true, () => false);
  const recoveredMs = recovered ? Date.now() - t0 : null;
  // One coalescing window and a reconcile after recovery before reading the kernel back.
  await sleep(2000);
  const after = await fingerprint(ctx);
  const changes = diff(before, after);
  const figures = { ...f, recoveredMs, kernelObjects: after.length, kernelChanges: changes.length };
  const problems: string[] = [];
  if (f.gapMs > d.durationMs + tailMs - 1000) problems.push(`traffic did not come back (gap ${f.gapMs} ms)`);
  if (f.flowsChangedPod) problems.push(`${f.flowsChangedPod} flows changed pod`);
  if (!recovered) problems.push('the VIP was not back on every tunnel node within 45 s');
  if (changes.length) problems.push(`kernel state differs from before (${changes.length} lines): ${changes.slice(0, 4).join(' | ')}`);
  const summary = `gap ${f.gapMs} ms, ${f.flowsInterrupted}/${f.flows} flows interrupted, ${f.flowsChangedPod} changed pod, ${f.packetsLost} packets lost; ` +
    `${recovered ? `all tunnel nodes back ${((recoveredMs ?? 0) / 1000).toFixed(1)} s after` : 'not recovered'}; kernel ${changes.length ? `${changes.length} lines changed` : `identical (${after.length} lines)`}`;
  return { name: d.name, ok: problems.length === 0, detail: problems.length ? `${problems.join('; ')} (${summary})` : summary, figures };
}

export async function labDrill(opts: DrillOptions): Promise<DrillReport> {
  const progress = opts.progress ?? (() => undefined);
  const topo = runningTopology(opts.prefix);
  const paths = labPaths(opts.prefix);
  const state = readState(paths);
  if (!state?.complete) throw new Error(`lab "${opts.prefix}" is not up: run \`kst lab up\` first`);
  if (!state.agents.running) throw new Error(`the drill needs the agents, and they are not running: ${state.agents.note}`);
  const vip = topo.vips[0]!.address;
  const ctx: Ctx = { topo, run: opts.run ?? runCommand, vip, target: `${vip}:${topo.echoPort}` };
  const drills: DrillResult[] = [];
  for (const d of disruptions(topo, ctx, paths, opts.apiOutageSeconds ?? 30, state.runtime).filter((x) => !opts.only || opts.only.includes(x.key))) {
    progress(`drill: ${d.name}`);
    try {
      const r = await runDrill(ctx, d, progress);
      drills.push(r);
      progress(`  ${r.ok ? 'ok' : 'FAILED'}: ${r.detail}`);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      drills.push({ name: d.name, ok: false, detail });
      progress(`  FAILED: ${detail}`);
    }
  }
  return { prefix: opts.prefix, drills };
}

export function renderDrill(r: DrillReport): string {
  const w = Math.max(...r.drills.map((d) => d.name.length));
  const lines = [`resilience drill of lab "${r.prefix}"`, '', `${'DRILL'.padEnd(w)}  RESULT  GAP ms  INTERRUPTED  CHANGED POD  KERNEL`];
  for (const d of r.drills) {
    const f = d.figures;
    lines.push(`${d.name.padEnd(w)}  ${(d.ok ? 'ok' : 'FAILED').padEnd(6)}  ${String(f?.gapMs ?? '-').padStart(6)}  ${String(f ? `${f.flowsInterrupted}/${f.flows}` : '-').padStart(11)}  ${String(f?.flowsChangedPod ?? '-').padStart(11)}  ${f ? (f.kernelChanges ? `${f.kernelChanges} changed` : 'identical') : '-'}`);
  }
  const failed = r.drills.filter((d) => !d.ok);
  for (const d of failed) lines.push('', `${d.name}: ${d.detail}`);
  lines.push('', `${r.drills.length - failed.length}/${r.drills.length} drills passed`);
  return lines.join('\n');
}
