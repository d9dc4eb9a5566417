// The graceful-restart drills' operations on a running lab (issue 14): kill and restart a
// tunnel node's gobgpd, its agent, or both, as the kubelet would restart the containers,
// and watch the router's FIB meanwhile. What counts (fibGapMs): the longest stretch in
// which the router had no next hop for the VIP, or lacked the next hop of a node being
// restarted. Processes are signalled by the PIDs in the lab state, never by name.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, startDaemon } from './daemon.js';
import { Podman } from './runtime/podman.js';
import { waitFor } from './frr.js';
import { readState, writeState, type LabPaths, type LabProcess } from './state.js';
import { host, hostsByRole, primaryIp } from './topology.js';
import { probe, routerNs, StepFailed, vipNextHops, type Ctx } from './traffic.js';

const POLL_MS = 20;

export interface FibGaps {
  /** Longest time the VIP had no next hop at all. */
  readonly vipGapMs: number;
  /** Longest time a watched node's next hop was missing. */
  readonly nodeGapMs: number;
  /** max of the two: the figure. */
  readonly fibGapMs: number;
  readonly samples: number;
  /** The longest time between two FIB reads: the gaps' resolution (the machine's load sets it). */
  readonly maxSampleIntervalMs: number;
}

/**
 * Reads the router's FIB for the VIP every ~20 ms until stopped, through one long-lived
 * `ip -j -batch -` in the router's namespace (line-buffered by stdbuf: one JSON line per
 * query). Spawning `ip` per read took 250-400 ms per sample on the loaded machine, too
 * coarse for a 1 s bound. Polling, not `ip monitor route`: zebra installs routes with
 * nexthop groups (nhid), and a node leaving the group changes no route, only the group.
 */
export class FibWatch {
  private stopped = false;
  private readonly ip: ChildProcess;
  private readonly lines: Interface;
  private readonly waiting: Array<(line: string) => void> = [];
  private readonly done: Promise<void>;
  private samples = 0;
  private vipGap = 0;
  private nodeGap = 0;
  private maxInterval = 0;

  constructor(private readonly ctx: Ctx, private readonly watched: readonly string[]) {
    this.ip = spawn('stdbuf', ['-oL', 'ip', '-n', routerNs(ctx), '-j', '-batch', '-'], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.ip.on('error', () => undefined);
    this.lines = createInterface({ input: this.ip.stdout! });
    this.lines.on('line', (l) => this.waiting.shift()?.(l));
    this.done = this.loop();
  }

  /** The VIP's next hops now; undefined when the read failed or took over 5 s. */
  private async read(): Promise<string[] | undefined> {
    if (this.ip.exitCode !== null || !this.ip.stdin!.writable) return vipNextHops(this.ctx).catch(() => undefined);
    const v6 = this.ctx.vip.includes(':');
    const answer = new Promise<string>((resolve) => this.waiting.push(resolve));
    this.ip.stdin!.write(`route show ${this.ctx.vip}/${v6 ? 128 : 32}\n`);
    const timeout = new AbortController();
    const line = await Promise.race([answer, sleep(5000, undefined, { signal: timeout.signal }).catch(() => undefined)]).finally(() => timeout.abort());
    if (line === undefined) return undefined;
    try {
      const routes = JSON.parse(line) as Array<{ gateway?: string; nexthops?: Array<{ gateway?: string }> }>;
      return routes.flatMap((x) => (x.nexthops ? x.nexthops.map((n) => n.gateway ?? '?') : x.gateway ? [x.gateway] : []));
    } catch {
      return undefined;
    }
  }

  private async loop(): Promise<void> {
    let vipMissing: number | undefined;
    const missing = new Map<string, number>();
    const close = (since: number | undefined, now: number): number => (since === undefined ? 0 : now - since);
    let last = Date.now();
    while (!this.stopped) {
      const hops = await this.read();
      const now = Date.now();
      if (this.samples > 0) this.maxInterval = Math.max(this.maxInterval, now - last);
      last = now;
      if (hops) {
        this.samples += 1;
        if (hops.length === 0) vipMissing ??= now;
        else {
          this.vipGap = Math.max(this.vipGap, close(vipMissing, now));
          vipMissing = undefined;
        }
        for (const w of this.watched) {
          if (!hops.includes(w)) {
            if (!missing.has(w)) missing.set(w, now);
          } else if (missing.has(w)) {
            this.nodeGap = Math.max(this.nodeGap, now - missing.get(w)!);
            missing.delete(w);
          }
        }
      }
      await sleep(POLL_MS);
    }
    this.vipGap = Math.max(this.vipGap, close(vipMissing, last));
    for (const since of missing.values()) this.nodeGap = Math.max(this.nodeGap, last - since);
  }

  async stop(): Promise<FibGaps> {
    this.stopped = true;
    await this.done;
    this.ip.stdin!.end();
    this.lines.close();
    if (this.ip.exitCode === null) this.ip.kill('SIGTERM');
    return { vipGapMs: this.vipGap, nodeGapMs: this.nodeGap, fibGapMs: Math.max(this.vipGap, this.nodeGap), samples: this.samples, maxSampleIntervalMs: this.maxInterval };
  }
}

export const tunnelNodeHops = (ctx: Ctx, names?: readonly string[]): string[] =>
  hostsByRole(ctx.topo, 'tunnel-node').filter((n) => !names || names.includes(n.name)).map(primaryIp);

function procOf(paths: LabPaths, name: string, kind: 'agent' | 'gobgpd'): LabProcess {
  const p = readState(paths)?.processes.find((x) => x.kind === kind && x.host === name);
  if (!p?.argv && !p?.container) throw new StepFailed(`${name}: no ${kind} with a known command line or container in the lab state`);
  return p;
}

/** SIGKILLs (or signals) a lab process by the PID in the state; waits until it is gone. */
export async function signalProcess(p: LabProcess, signal: NodeJS.Signals, timeoutMs = 20000): Promise<void> {
  if (!alive(p.pid)) throw new StepFailed(`${p.host}: ${p.kind} (pid ${p.pid}) is not running`);
  process.kill(p.pid, signal);
  await waitFor(() => !alive(p.pid), timeoutMs, 50).catch(() => { throw new StepFailed(`${p.host}: ${p.kind} did not exit within ${timeoutMs / 1000} s of ${signal}`); });
}

/**
 * Starts a lab process again as `lab up` did (same argv, env, log), or with `--runtime
 * podman` its container, as the kubelet restarts one (`podman start`); records its PID.
 */
export async function restartProcess(paths: LabPaths, p: LabProcess): Promise<void> {
  if (!readState(paths)) throw new StepFailed('no lab state');
  const pid = p.container ? await new Podman().restart(p.container)
    : startDaemon({ netns: p.netns, argv: p.argv!, logFile: p.logFile ?? join(paths.logDir, `${p.kind}-${p.host}.log`), ...(p.env ? { env: p.env } : {}) });
  // Read after the (slow) container start: another restart may have written meanwhile.
  const state = readState(paths)!;
  writeState(paths, { ...state, processes: state.processes.map((x) => (x.kind === p.kind && x.host === p.host ? { ...x, pid } : x)) });
}

/** An agent's start to ready (Kubernetes synced) took 18-33 s on the loaded 2-core machine; the routers' restart time (120 s) covers it. */
const READY_TIMEOUT_MS = 60000;

async function agentReady(ctx: Ctx, netns: string): Promise<boolean> {
  const r = await probe<{ status: number }>(ctx, netns, ['http', '--method', 'GET', '--url', 'http://127.0.0.1:9742/readyz', '--timeout', '1000']).catch(() => undefined);
  return r?.status === 200;
}

/**
 * The router has the VIP from every tunnel node again as fresh (not stale) paths: the
 * restarted gobgpds re-established and sent their End-of-RIB.
 */
export async function refreshed(ctx: Ctx, paths: LabPaths, timeoutMs = 60000): Promise<void> {
  const want = hostsByRole(ctx.topo, 'tunnel-node').length;
  let last = '';
  await waitFor(async () => {
    const r = await ctx.run('vtysh', ['--vty_socket', paths.frrDir, '-c', `show bgp ipv4 unicast ${ctx.vip}/32 json`], { netns: routerNs(ctx), allowFailure: true });
    const route = JSON.parse(r.stdout || '{}') as { paths?: Array<{ stale?: boolean; nexthops?: Array<{ ip?: string }> }> };
    const fresh = (route.paths ?? []).filter((p) => !p.stale).length;
    last = `${fresh} fresh of ${(route.paths ?? []).length} paths`;
    return fresh >= want && (await vipNextHops(ctx)).length >= want;
  }, timeoutMs, 250).catch(() => { throw new StepFailed(`the router did not have fresh paths for ${ctx.vip} from all ${want} tunnel nodes within ${timeoutMs / 1000} s (${last})`); });
}

/** gobgpd on one tunnel node crashes (SIGKILL) and the kubelet restarts it after `downMs`. */
export async function crashGobgpd(ctx: Ctx, paths: LabPaths, name: string, downMs: number): Promise<void> {
  const g = procOf(paths, name, 'gobgpd');
  await signalProcess(g, 'SIGKILL');
  await sleep(downMs);
  await restartProcess(paths, g);
}

/**
 * An upgrade of one node's pod: the agent stops for a restart in place (SIGUSR2: nothing
 * withdrawn, no BFD AdminDown) and gobgpd dies without a NOTIFICATION (SIGKILL: gobgpd 3.10
 * sends Cease on SIGTERM and SIGINT alike, which ends graceful restart at the router);
 * both start again and the agent becomes ready.
 */
export async function upgradeNode(ctx: Ctx, paths: LabPaths, name: string): Promise<number> {
  const t0 = Date.now();
  const a = procOf(paths, name, 'agent');
  const g = procOf(paths, name, 'gobgpd');
  await Promise.all([signalProcess(a, 'SIGUSR2'), signalProcess(g, 'SIGKILL')]);
  await restartProcess(paths, g);
  await restartProcess(paths, a);
  await waitFor(() => agentReady(ctx, host(ctx.topo, name).netns), READY_TIMEOUT_MS, 250).catch(() => { throw new StepFailed(`${name}: the restarted agent was not ready within ${READY_TIMEOUT_MS / 1000} s`); });
  return Date.now() - t0;
}

/** Agent and gobgpd of every tunnel node SIGKILLed at the same moment, then all started again. */
export async function restartAllNodes(ctx: Ctx, paths: LabPaths): Promise<void> {
  const nodes = hostsByRole(ctx.topo, 'tunnel-node').map((n) => n.name);
  const procs = nodes.flatMap((n) => [procOf(paths, n, 'agent'), procOf(paths, n, 'gobgpd')]);
  for (const p of procs) if (!alive(p.pid)) throw new StepFailed(`${p.host}: ${p.kind} is not running`);
  for (const p of procs) process.kill(p.pid, 'SIGKILL');
  await waitFor(() => procs.every((p) => !alive(p.pid)), 5000, 20);
  for (const p of procs.filter((x) => x.kind === 'gobgpd')) await restartProcess(paths, p);
  for (const p of procs.filter((x) => x.kind === 'agent')) await restartProcess(paths, p);
  for (const n of nodes) {
    await waitFor(() => agentReady(ctx, host(ctx.topo, n).netns), READY_TIMEOUT_MS, 250).catch(() => { throw new StepFailed(`${n}: the restarted agent was not ready within ${READY_TIMEOUT_MS / 1000} s`); });
  }
}
