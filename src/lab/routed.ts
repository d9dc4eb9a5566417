// "Up" means a client can reach the VIP: `kst lab up` waits until the router's kernel
// table has every VIP (IPv4 and IPv6) over every tunnel node (ECMP), and otherwise says
// which next hops are still missing and how the router's BGP and BFD sessions stand.
// In the racks lab: each ToR over its own rack's tunnel node, and the spine over both ToRs.
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandRunner } from '../system/index.js';
import { routerPeers, torPeers } from './status.js';
import { host, hostsByRole, primaryIp, primaryIp6, type LabRack, type LabTopology } from './topology.js';

/** One VIP and the next hops one router (by host name; absent: the topology's router) must have for it. */
export interface VipRouteWant {
  readonly vip: string;
  readonly nextHops: readonly string[];
  readonly router?: string;
}

export interface VipRouteGap {
  readonly vip: string;
  readonly missing: readonly string[];
  readonly router?: string;
}

const wantKey = (w: { vip: string; router?: string }): string => (w.router ? `${w.router} ${w.vip}` : w.vip);

/**
 * Every VIP of the topology (both families) over every tunnel node of that family; in the
 * racks lab, at each ToR over its rack's tunnel nodes and at the spine over every ToR.
 */
export function wantedVipRoutes(topo: LabTopology): VipRouteWant[] {
  const both = (v4: string[], v6: string[], router?: string): VipRouteWant[] => topo.vips.flatMap((v) => [
    { vip: v.address, nextHops: v4, ...(router ? { router } : {}) },
    ...(v.address6 && v6.length ? [{ vip: v.address6, nextHops: v6, ...(router ? { router } : {}) }] : []),
  ]);
  if (topo.racks) {
    return [
      ...topo.racks.flatMap((r) => {
        const tunnels = r.nodes.map((n) => host(topo, n)).filter((h) => h.role === 'tunnel-node');
        return both(tunnels.map(primaryIp), tunnels.map(primaryIp6).filter((a): a is string => a !== undefined), r.tor);
      }),
      ...both(topo.racks.map((r) => r.uplink.tor), topo.racks.map((r) => r.uplink.tor6), topo.router.host),
    ];
  }
  const tunnels = hostsByRole(topo, 'tunnel-node');
  return both(tunnels.map(primaryIp), tunnels.map(primaryIp6).filter((a): a is string => a !== undefined));
}

/** The next hops the client's router must have for a VIP (the demo and drill wait for all of them). */
export function routerWantedHops(topo: LabTopology, vip: string): readonly string[] {
  return wantedVipRoutes(topo).find((w) => w.vip === vip && (w.router ?? topo.router.host) === topo.router.host)?.nextHops ?? [];
}

/** The wanted next hops a router does not have yet (pure: `have` is "[router ]vip" -> next hops). */
export function vipRouteGaps(want: readonly VipRouteWant[], have: ReadonlyMap<string, readonly string[]>): VipRouteGap[] {
  return want
    .map((w) => ({ vip: w.vip, missing: w.nextHops.filter((n) => !(have.get(wantKey(w)) ?? []).includes(n)), ...(w.router ? { router: w.router } : {}) }))
    .filter((g) => g.missing.length > 0);
}

/** The next hops of a host route in a router's kernel table (`ip -j route show VIP/32`). */
export async function routerNextHops(run: CommandRunner, netns: string, vip: string): Promise<string[]> {
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
export async function waitVipsRouted(topo: LabTopology, run: CommandRunner, opts: { timeoutMs: number; frrDir: string; intervalMs?: number; torDir?: (rack: LabRack) => string }): Promise<RoutedResult> {
  const netns = host(topo, topo.router.host).netns;
  const want = wantedVipRoutes(topo);
  const t0 = Date.now();
  for (;;) {
    const have = new Map<string, string[]>();
    for (const w of want) have.set(wantKey(w), await routerNextHops(run, host(topo, w.router ?? topo.router.host).netns, w.vip));
    const gaps = vipRouteGaps(want, have);
    const elapsedMs = Date.now() - t0;
    if (gaps.length === 0) return { ok: true, elapsedMs, waitingFor: '' };
    if (elapsedMs >= opts.timeoutMs) {
      const peers = await routerPeers(netns, opts.frrDir, run);
      // In the racks lab a ToR's missing next hop is its tunnel node: ask that ToR (vtysh or birdc).
      for (const r of topo.racks ?? []) {
        if (!opts.torDir || !gaps.some((g) => g.router === r.tor)) continue;
        const p = await torPeers(host(topo, r.tor).netns, opts.torDir(r), r.torImpl, run);
        Object.assign(peers.bgp, p.bgp);
        Object.assign(peers.bfd, p.bfd);
      }
      const missing = [...new Set(gaps.flatMap((g) => g.missing))];
      const sessions = missing.map((m) => `${m}: BGP ${peers.bgp[m] ?? 'not configured'}, BFD ${peers.bfd[m] ?? '-'}`).join('; ');
      return {
        ok: false,
        elapsedMs,
        waitingFor: `after ${(elapsedMs / 1000).toFixed(0)} s the router still lacks ${gaps.map((g) => `${g.router ? `at ${g.router} ` : ''}${g.vip} via ${g.missing.join(', ')}`).join(' and ')} (${topo.racks ? `${topo.router.host} ` : 'router '}sessions: ${sessions})`,
      };
    }
    await sleep(opts.intervalMs ?? 250);
  }
}
