// Traffic and observation helpers shared by `kst lab demo` and `kst lab drill`: the probe
// runs inside a lab namespace (the root namespace is not connected to the lab) and prints
// JSON; the router's FIB shows which tunnel nodes carry a VIP.
import type { CommandRunner } from '../system/index.js';
import { distFile } from './paths.js';
import type { FlowsReport, StreamReport } from './probe.js';
import { host, type LabTopology } from './topology.js';

/** A step's claim did not hold; the message says why, for the summary table. */
export class StepFailed extends Error {}

export interface Ctx {
  readonly topo: LabTopology;
  readonly run: CommandRunner;
  readonly vip: string;
  readonly target: string;
}

export async function probe<T>(ctx: Ctx, netns: string, args: string[], input?: string, timeoutMs = 60000): Promise<T> {
  const r = await ctx.run(process.execPath, [distFile('src/lab/probe.js'), ...args], { netns, timeoutMs, allowFailure: true, ...(input ? { input } : {}) });
  if (r.code !== 0) throw new StepFailed(`probe ${args[0]} in ${netns} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  return JSON.parse(r.stdout) as T;
}

export const clientNs = (ctx: Ctx): string => host(ctx.topo, 'client').netns;
export const routerNs = (ctx: Ctx): string => host(ctx.topo, ctx.topo.router.host).netns;

/** The router's interface towards a host (its bridge port). */
export function routerPortOf(ctx: Ctx, hostName: string): string {
  const link = ctx.topo.links.find((l) => l.a.host === ctx.topo.router.host && l.b.host === hostName);
  if (!link) throw new StepFailed(`the router has no link to ${hostName}`);
  return link.a.ifname;
}

/**
 * The cable between a host and the router it hangs off (the lab's router, or in the racks
 * lab its rack's ToR), pulled or plugged at the router's end: the host's kernel keeps its
 * routes, and the router notices only through BFD, as when a real cable fails.
 */
export async function setCable(ctx: Ctx, hostName: string, state: 'up' | 'down'): Promise<string> {
  const link = ctx.topo.links.find((l) => l.b.host === hostName && ['router', 'tor-router'].includes(host(ctx.topo, l.a.host).role));
  if (!link) throw new StepFailed(`no router has a link to ${hostName}`);
  await ctx.run('ip', ['-n', host(ctx.topo, link.a.host).netns, 'link', 'set', link.a.ifname, state]);
  return link.a.host;
}

export async function flows(ctx: Ctx, count: number, proto: 'tcp' | 'udp' = 'tcp', target = ctx.target): Promise<FlowsReport> {
  return probe<FlowsReport>(ctx, clientNs(ctx), ['flows', '--target', target, '--count', String(count), '--proto', proto, '--timeout', '2000']);
}

/** The router's next hops for a VIP (default: the context's; IPv6 ones by their /128). */
export async function vipNextHops(ctx: Ctx, vip = ctx.vip): Promise<string[]> {
  const v6 = vip.includes(':');
  const r = await ctx.run('ip', [v6 ? '-6' : '-4', '-j', 'route', 'show', `${vip}/${v6 ? 128 : 32}`], { netns: routerNs(ctx), allowFailure: true });
  const routes = JSON.parse(r.stdout || '[]') as Array<{ gateway?: string; nexthops?: Array<{ gateway?: string }> }>;
  return routes.flatMap((x) => (x.nexthops ? x.nexthops.map((n) => n.gateway ?? '?') : x.gateway ? [x.gateway] : []));
}

export const perPodText = (p: Record<string, number>): string => Object.entries(p).sort().map(([k, v]) => `${k}=${v}`).join(' ') || 'none';

/** Starts a UDP stream of `nFlows` flows from the client; resolves when it ends. */
export function stream(ctx: Ctx, opts: { flows: number; intervalMs: number; durationMs: number; sourcePort?: number }): Promise<StreamReport> {
  const args = ['stream', '--target', ctx.target, '--flows', String(opts.flows), '--interval', String(opts.intervalMs), '--duration', String(opts.durationMs)];
  if (opts.sourcePort !== undefined) args.push('--source-port', String(opts.sourcePort));
  return probe<StreamReport>(ctx, clientNs(ctx), args, undefined, Math.max(60000, opts.durationMs + 30000));
}

export interface StreamFigures {
  /** Longest time any flow went without an answer. */
  readonly gapMs: number;
  readonly flows: number;
  readonly flowsInterrupted: number;
  readonly flowsChangedPod: number;
  readonly packetsLost: number;
}

export function streamFigures(r: StreamReport): StreamFigures {
  return {
    gapMs: Math.max(0, ...r.flows.map((f) => f.maxGapMs)),
    flows: r.flows.length,
    flowsInterrupted: r.flows.filter((f) => f.maxGapMs > 10 * r.intervalMs).length,
    flowsChangedPod: r.flows.filter((f) => f.pods.length > 1).length,
    packetsLost: r.flows.reduce((a, f) => a + Math.max(0, f.sent - f.received), 0),
  };
}
