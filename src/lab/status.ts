// `kst lab status`: the running lab as data (for `--json` and scripts) and as a table.
// The topology says what should exist; the state file and the kernel say what does.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand, type CommandRunner } from '../system/index.js';
import { alive } from './daemon.js';
import { labNamespaces } from './down.js';
import { labPaths, readState, runningTopology, torDir } from './state.js';
import { host, type HostRole, type TopologyKind } from './topology.js';

export interface HostStatus {
  readonly name: string;
  readonly role: HostRole;
  readonly netns: string;
  readonly present: boolean;
  readonly addresses: string[];
  readonly node?: string;
  readonly labels?: Record<string, string>;
  readonly podCidr?: string;
}

export interface LabStatus {
  readonly prefix: string;
  /** Every namespace exists and `up` finished. */
  readonly up: boolean;
  readonly startedAt?: string;
  readonly stateDir: string;
  readonly hosts: HostStatus[];
  readonly vips: Array<{ address: string; service: string; ports: number[] }>;
  readonly router: { netns: string; asn: number; address: string; frrVtyDir: string; bgpPeers: Record<string, string>; bfdPeers: Record<string, string> };
  readonly apiServer: { url: string; netns: string; kubeconfig: string };
  readonly agents: { running: boolean; note: string };
  readonly agentConfig: string;
  readonly processes: Array<{ kind: string; host: string; netns: string; pid: number; alive: boolean; logFile?: string; container?: string }>;
  /** Who runs agents and pods: host processes or podman (`kst lab up --runtime podman`). */
  readonly runtime: 'process' | 'podman';
  readonly topology: TopologyKind;
  /** The racks lab: each rack's top-of-rack router and the command that shows its own view. */
  readonly tors?: Array<{ rack: string; name: string; impl: 'frr' | 'bird'; asn: number; netns: string; inspect: string; bgpPeers: Record<string, string>; bfdPeers: Record<string, string> }>;
}

/** The router's BGP (both families) and BFD session states by peer address, from vtysh. */
export async function routerPeers(netns: string, vtyDir: string, run: CommandRunner): Promise<{ bgp: Record<string, string>; bfd: Record<string, string> }> {
  const bgp: Record<string, string> = {};
  const bfd: Record<string, string> = {};
  if (!existsSync(vtyDir)) return { bgp, bfd };
  const vtysh = async (cmd: string): Promise<unknown> => {
    const r = await run('vtysh', ['--vty_socket', vtyDir, '-c', cmd], { netns, timeoutMs: 5000, allowFailure: true });
    try {
      return JSON.parse(r.stdout);
    } catch {
      return undefined;
    }
  };
  for (const family of ['ipv4', 'ipv6']) {
    const summary = (await vtysh(`show bgp ${family} unicast summary json`)) as { peers?: Record<string, { state?: string }> } | undefined;
    for (const [ip, p] of Object.entries(summary?.peers ?? {})) bgp[ip] = p.state ?? 'unknown';
  }
  const peers = (await vtysh('show bfd peers json')) as Array<{ peer?: string; status?: string }> | undefined;
  for (const p of Array.isArray(peers) ? peers : []) if (p.peer) bfd[p.peer] = p.status ?? 'unknown';
  return { bgp, bfd };
}

/**
 * BIRD's BGP and BFD session states by neighbour address, from `birdc show protocols all`
 * (one block per protocol, with its "Neighbor address:") and `birdc show bfd sessions`.
 */
export async function birdPeers(netns: string, socket: string, run: CommandRunner): Promise<{ bgp: Record<string, string>; bfd: Record<string, string> }> {
  const bgp: Record<string, string> = {};
  const bfd: Record<string, string> = {};
  if (!existsSync(socket)) return { bgp, bfd };
  const birdc = async (...cmd: string[]): Promise<string> => (await run('birdc', ['-s', socket, ...cmd], { netns, timeoutMs: 5000, allowFailure: true })).stdout;
  return { bgp: parseBirdProtocols(await birdc('show', 'protocols', 'all')), bfd: parseBirdBfd(await birdc('show', 'bfd', 'sessions')) };
}

/** Pure: neighbour address -> BGP state ("Established", "Active"...) from `show protocols all`. */
export function parseBirdProtocols(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let state: string | undefined;
  for (const line of text.split('\n')) {
    // A protocol's header line: name, protocol, table, up/down, since, info (BGP: its state).
    const head = /^(\S+)\s+BGP\s+\S+\s+(up|down|start|stop)\s+\S+(?:\s+(\S+))?/.exec(line);
    if (head) state = head[3] ?? head[2];
    else if (/^\S/.test(line)) state = undefined;
    const addr = /^\s+Neighbor address:\s+(\S+)/.exec(line);
    if (addr && state) out[addr[1]!] = state;
  }
  return out;
}

/** Pure: peer address -> BFD state ("Up", "Down", "Init") from `show bfd sessions`. */
export function parseBirdBfd(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 3 && /^[0-9a-f.:]+$/i.test(f[0]!) && f[0]!.match(/[.:]/) && /^(Up|Down|Init|AdminDown)$/.test(f[2]!)) out[f[0]!] = f[2]!;
  }
  return out;
}

/** A racks lab ToR's sessions, from its own tool: vtysh (FRR) or birdc (BIRD). */
export async function torPeers(netns: string, dir: string, impl: 'frr' | 'bird', run: CommandRunner): Promise<{ bgp: Record<string, string>; bfd: Record<string, string> }> {
  return impl === 'bird' ? birdPeers(netns, join(dir, 'bird.ctl'), run) : routerPeers(netns, dir, run);
}

export async function labStatus(prefix: string, run: CommandRunner = runCommand): Promise<LabStatus> {
  const paths = labPaths(prefix);
  const topo = runningTopology(prefix, paths);
  const state = readState(paths);
  const present = new Set(await labNamespaces(prefix, run));
  // With --runtime podman a pod's namespace is its container's, named only /proc/PID/ns/net.
  const podProcess = (name: string) => state?.runtime === 'podman' ? state.processes.find((p) => p.kind === 'echo' && p.host === name && p.container) : undefined;
  const hosts: HostStatus[] = topo.hosts.map((h) => ({
    name: h.name, role: h.role,
    ...(podProcess(h.name) ? { netns: podProcess(h.name)!.netns, present: alive(podProcess(h.name)!.pid) } : { netns: h.netns, present: present.has(h.netns) }),
    addresses: h.addresses.map((a) => `${a.cidr} (${a.ifname})`),
    ...(h.node ? { node: h.node } : {}),
    ...(h.labels ? { labels: { ...h.labels } } : {}),
    ...(h.podCidr ? { podCidr: h.podCidr } : {}),
  }));
  const up = Boolean(state?.complete) && hosts.every((h) => h.present);
  const routerNs = host(topo, topo.router.host).netns;
  const peers = up ? await routerPeers(routerNs, paths.frrDir, run) : { bgp: {}, bfd: {} };
  return {
    prefix,
    up,
    ...(state ? { startedAt: state.startedAt } : {}),
    stateDir: paths.dir,
    hosts,
    vips: topo.vips.map((v) => ({ address: v.address, service: `${v.serviceNamespace}/${v.serviceName}`, ports: [...v.ports] })),
    router: { netns: routerNs, asn: topo.router.asn, address: topo.router.address, frrVtyDir: paths.frrDir, bgpPeers: peers.bgp, bfdPeers: peers.bfd },
    apiServer: { url: topo.apiServer.url, netns: host(topo, topo.apiServer.host).netns, kubeconfig: paths.kubeconfig },
    agents: state?.agents ?? { running: false, note: 'lab is not up' },
    agentConfig: paths.agentConfig,
    processes: (state?.processes ?? []).map((p) => ({ ...p, alive: alive(p.pid) })),
    runtime: state?.runtime ?? 'process',
    topology: topo.kind,
    ...(topo.racks ? {
      tors: await Promise.all(topo.racks.map(async (r) => {
        const netns = host(topo, r.tor).netns;
        const dir = torDir(paths, r.tor, r.torImpl);
        const inspect = r.torImpl === 'bird' ? `ip netns exec ${netns} birdc -s ${dir}/bird.ctl show protocols` : `ip netns exec ${netns} vtysh --vty_socket ${dir} -c 'show bgp summary'`;
        const p = up ? await torPeers(netns, dir, r.torImpl, run) : { bgp: {}, bfd: {} };
        return { rack: r.zone, name: r.tor, impl: r.torImpl, asn: r.torAsn, netns, inspect, bgpPeers: p.bgp, bfdPeers: p.bfd };
      })),
    } : {}),
  };
}

/** The human-readable form of `kst lab status`. */
export function renderStatus(s: LabStatus): string {
  const lines: string[] = [];
  lines.push(`lab "${s.prefix}": ${s.up ? `up since ${s.startedAt ?? '?'}` : 'not up'}   (state: ${s.stateDir})`);
  lines.push('');
  lines.push(`${'HOST'.padEnd(12)} ${'ROLE'.padEnd(13)} ${'NETNS'.padEnd(22)} ${'UP'.padEnd(3)} ADDRESSES`);
  for (const h of s.hosts) {
    lines.push(`${h.name.padEnd(12)} ${h.role.padEnd(13)} ${h.netns.padEnd(22)} ${(h.present ? 'yes' : 'no').padEnd(3)} ${h.addresses.join(', ')}`);
  }
  lines.push('');
  for (const v of s.vips) lines.push(`VIP ${v.address}  service ${v.service}  ports ${v.ports.join(',')}`);
  for (const t of s.tors ?? []) {
    lines.push(`${t.rack}: ${t.name} (${t.impl === 'bird' ? 'BIRD 2' : 'FRR'}, AS ${t.asn}): ${t.inspect}`);
    for (const p of Object.keys({ ...t.bgpPeers, ...t.bfdPeers })) lines.push(`  peer ${p.padEnd(15)} bgp ${t.bgpPeers[p] ?? '-'}  bfd ${t.bfdPeers[p] ?? '-'}`);
  }
  lines.push(`${s.topology === 'racks' ? 'spine' : 'router'}: AS ${s.router.asn} in ${s.router.netns}; vtysh --vty_socket ${s.router.frrVtyDir}  (ip netns exec ${s.router.netns} vtysh ...)`);
  const peers = Object.keys({ ...s.router.bgpPeers, ...s.router.bfdPeers });
  for (const p of peers) lines.push(`  peer ${p.padEnd(15)} bgp ${s.router.bgpPeers[p] ?? '-'}  bfd ${s.router.bfdPeers[p] ?? '-'}`);
  lines.push(`API server: ${s.apiServer.url} (in ${s.apiServer.netns}); kubeconfig ${s.apiServer.kubeconfig}`);
  lines.push(`agents: ${s.agents.note}${s.runtime === 'podman' ? ' (podman containers from deploy/base\'s DaemonSet)' : ''}`);
  if (s.processes.length) {
    lines.push('');
    lines.push(`${'PROCESS'.padEnd(11)} ${'HOST'.padEnd(12)} ${'PID'.padEnd(8)} ALIVE${s.runtime === 'podman' ? '  CONTAINER' : ''}`);
    for (const p of s.processes) lines.push(`${p.kind.padEnd(11)} ${p.host.padEnd(12)} ${String(p.pid).padEnd(8)} ${(p.alive ? 'yes' : 'no').padEnd(5)}${p.container ? `  ${p.container}` : ''}`.trimEnd());
  }
  return lines.join('\n');
}
