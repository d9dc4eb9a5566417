// "Up" means a client can reach the VIP: `kst lab up` waits until the router's kernel
// table has every VIP (IPv4 and IPv6) over every tunnel node (ECMP), and otherwise says
// which next hops are still missing and how the router's BGP and BFD sessions stand.
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandRunner } from '../system/index.js';
import { routerPeers } from './status.js';
import { host, hostsByRole, primaryIp, primaryIp6, type LabTopology } from './topology.js';

/** One VIP and the next hops the router must have for it. */
export interface VipRouteWant {
  readonly vip: string;
  readonly nextHops: readonly string[];
}

export interface VipRouteGap {
  readonly vip: string;
  readonly missing: readonly string[];
}

/** Every VIP of the topology (both families) over every tunnel node of that family. */
export function wantedVipRoutes(topo: LabTopology): VipRouteWant[] {
  const tunnels = hostsByRole(topo, 'tunnel-node');
  const v4 = tunnels.map(primaryIp);
  const v6 = tunnels.map(primaryIp6).filter((a): a is string => a !== undefined);
  return topo.vips.flatMap((v) => [
    { vip: v.address, nextHops: v4 },
    ...(v.address6 && v6.length ? [{ vip: v.address6, nextHops: v6 }] : []),
  ]);
}

/** The wanted next hops the router does not have yet (pure: `have` is vip -> next hops). */
export function vipRouteGaps(want: readonly VipRouteWant[], have: ReadonlyMap<string, readonly string[]>): VipRouteGap[] {
  return want
    .map((w) => ({ vip: w.vip, missing: w.nextHops.filter((n) => !(have.get(w.vip) ?? []).includes(n)) }))
    .filter((g) => g.missing.length > 0);
}

/** The next hops of a host route in the router's kernel table (`ip -j route show VIP/32`). */
async function routerNextHops(run: CommandRunner, netns: string, vip: string): Promise<string[]> {
  const v6 = vip.includes(':');
  const r = await run('ip', [v6 ? '-6' : '-4', '-j', 'route', 'show', `${vip}/${v6 ? 128 : 32}`], { netns, allowFailure: true });
  let routes: Array<{ gateway?: string; nexthops?: Array<{ gateway?: string }> }>;
  try {
    routes = JSON.parse(r.stdout || '[]');
  } catch {
    return [];
  }
  return routes.flatMap((x) => (x.nexthops ? x.nexthops.map((n) => n.gateway ?? '?') : x.gateway ? [x.gateway] : []));
}

export interface RoutedResult {
  readonly ok: boolean;
  readonly elapsedMs: number;
  /** Empty when ok; else one plain sentence of what is still missing. */
  readonly waitingFor: string;
}

/**
 * Polls the router's kernel table until every VIP is there over every tunnel node, or
 * `timeoutMs` passes; then names the missing next hops and the router's session states.
 */
export async function waitVipsRouted(topo: LabTopology, run: CommandRunner, opts: { timeoutMs: number; frrDir: string; intervalMs?: number }): Promise<RoutedResult> {
  const netns = host(topo, topo.router.host).netns;
  const want = wantedVipRoutes(topo);
  const t0 = Date.now();
  for (;;) {
    const have = new Map<string, string[]>();
    for (const w of want) have.set(w.vip, await routerNextHops(run, netns, w.vip));
    const gaps = vipRouteGaps(want, have);
    const elapsedMs = Date.now() - t0;
    if (gaps.length === 0) return { ok: true, elapsedMs, waitingFor: '' };
    if (elapsedMs >= opts.timeoutMs) {
      const peers = await routerPeers(netns, opts.frrDir, run);
      const missing = [...new Set(gaps.flatMap((g) => g.missing))];
      const sessions = missing.map((m) => `${m}: BGP ${peers.bgp[m] ?? 'not configured'}, BFD ${peers.bfd[m] ?? '-'}`).join('; ');
      return {
        ok: false,
        elapsedMs,
        waitingFor: `after ${(elapsedMs / 1000).toFixed(0)} s the router still lacks ${gaps.map((g) => `${g.vip} via ${g.missing.join(', ')}`).join(' and ')} (router sessions: ${sessions})`,
      };
    }
    await sleep(opts.intervalMs ?? 250);
  }
}
