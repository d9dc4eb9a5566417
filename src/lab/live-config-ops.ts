// The lab side of a live configuration change (issue 14): rewrite the agents' config file
// as an editor does (write, rename over), with a new community on the lab pool and any of
// the router's sessions the running file lacks, then wait until the router sees both; the
// agents must be the same processes afterwards (no restart).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { agentConfig } from './agent-config.js';
import { alive } from './daemon.js';
import { readState, type LabPaths } from './state.js';
import { routerPeers } from './status.js';
import { hostsByRole } from './topology.js';
import { routerNs, StepFailed, type Ctx } from './traffic.js';

type RawConfig = { pools?: Array<{ communities?: string[] }>; bgp?: { peers?: Array<{ address: string }> } };

export interface LiveConfigChange {
  /** The community added to the lab pool. */
  readonly community: string;
  /** Router addresses added to bgp.peers (the default lab's sessions the file lacked). */
  readonly addedPeers: readonly string[];
  /** From the rename until the router had the community on every path of the VIP. */
  readonly communityMs: number;
  /** From the rename until every session of the router was Established (the added ones too). */
  readonly routerSawItMs: number;
  /**
   * Router sessions Established before the change that went down meanwhile (their uptime is
   * shorter than the time since the change). The change does not concern them; on a loaded
   * machine a 300 ms BFD detection can still drop one.
   */
  readonly resetSessions: readonly string[];
  /** Agent processes on the tunnel nodes, the same before and after. */
  readonly agentPids: readonly number[];
}

/** The agents' PIDs on the tunnel nodes, by node. */
function agentPids(ctx: Ctx, paths: LabPaths): Map<string, number> {
  const tunnels = new Set(hostsByRole(ctx.topo, 'tunnel-node').map((n) => n.name));
  return new Map((readState(paths)?.processes ?? []).filter((p) => p.kind === 'agent' && tunnels.has(p.host)).map((p) => [p.host, p.pid]));
}

/** The next community not in the list yet (64512:7001, 64512:7002, ...). */
function freshCommunity(have: readonly string[]): string {
  for (let n = 7001; ; n++) if (!have.includes(`64512:${n}`)) return `64512:${n}`;
}

/** The router's Established sessions and their uptime (ms), both families. */
async function sessionUptimes(ctx: Ctx, paths: LabPaths): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const family of ['ipv4', 'ipv6']) {
    const r = await ctx.run('vtysh', ['--vty_socket', paths.frrDir, '-c', `show bgp ${family} unicast summary json`], { netns: routerNs(ctx), allowFailure: true, timeoutMs: 5000 });
    try {
      const peers = (JSON.parse(r.stdout) as { peers?: Record<string, { state?: string; peerUptimeMsec?: number }> }).peers ?? {};
      for (const [ip, p] of Object.entries(peers)) if (p.state === 'Established' && p.peerUptimeMsec !== undefined) out.set(ip, p.peerUptimeMsec);
    } catch {
      // no answer: nothing known for this family
    }
  }
  return out;
}

export async function changeConfigLive(ctx: Ctx, paths: LabPaths, timeoutMs = 30000): Promise<LiveConfigChange> {
  const before = agentPids(ctx, paths);
  const upBefore = await sessionUptimes(ctx, paths);
  const raw = parse(readFileSync(paths.agentConfig, 'utf8')) as RawConfig;
  const pool = raw.pools?.[0];
  if (!pool) throw new StepFailed('the lab config has no pool');
  const community = freshCommunity(pool.communities ?? []);
  pool.communities = [...(pool.communities ?? []), community];
  const wantedPeers = (agentConfig(ctx.topo) as RawConfig).bgp?.peers ?? [];
  raw.bgp ??= {};
  const have = new Set((raw.bgp.peers ?? []).map((p) => p.address));
  const added = wantedPeers.filter((p) => !have.has(p.address));
  raw.bgp.peers = [...(raw.bgp.peers ?? []), ...added];

  const tmp = `${paths.agentConfig}.tmp`;
  writeFileSync(tmp, stringify(raw));
  const t0 = Date.now();
  renameSync(tmp, paths.agentConfig);

  const tunnels = hostsByRole(ctx.topo, 'tunnel-node');
  let communityMs: number | undefined;
  const seen = async (): Promise<string | undefined> => {
    const r = await ctx.run('vtysh', ['--vty_socket', paths.frrDir, '-c', `show bgp ipv4 unicast ${ctx.vip}/32 json`], { netns: routerNs(ctx), allowFailure: true, timeoutMs: 5000 });
    let routes: Array<{ community?: { string?: string } }> = [];
    try {
      routes = (JSON.parse(r.stdout) as { paths?: typeof routes }).paths ?? [];
    } catch {
      return 'no answer from vtysh';
    }
    const withIt = routes.filter((p) => (p.community?.string ?? '').split(' ').includes(community)).length;
    if (withIt < tunnels.length) return `${withIt} of ${tunnels.length} paths for ${ctx.vip} carry ${community}`;
    communityMs ??= Date.now() - t0;
    const { bgp } = await routerPeers(routerNs(ctx), paths.frrDir, ctx.run);
    const down = Object.entries(bgp).filter(([, s]) => s !== 'Established');
    return down.length ? `router sessions not Established: ${down.map(([a, s]) => `${a} ${s}`).join(', ')}` : undefined;
  };
  let last: string | undefined = 'not checked';
  while (Date.now() - t0 < timeoutMs && (last = await seen()) !== undefined) await sleep(100);
  if (last !== undefined) throw new StepFailed(`the router did not see the live config change within ${timeoutMs} ms: ${last}`);
  const routerSawItMs = Date.now() - t0;
  const upAfter = await sessionUptimes(ctx, paths);
  const resetSessions = [...upBefore.keys()].filter((ip) => (upAfter.get(ip) ?? 0) < Date.now() - t0);

  const after = agentPids(ctx, paths);
  for (const [node, pid] of before) {
    if (after.get(node) !== pid || !alive(pid)) throw new StepFailed(`the agent on ${node} restarted (pid ${pid} -> ${after.get(node) ?? 'none'}); a live change must not restart it`);
  }
  return { community, addedPeers: added.map((p) => p.address), communityMs: communityMs ?? routerSawItMs, routerSawItMs, resetSessions, agentPids: [...before.values()] };
}
