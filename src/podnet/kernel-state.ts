// Reads what is in a pod's network namespace: links with their addresses (one
// `ip -d -j addr show`), the project's MPLS routes and the kernel settings it cares about.
// Parsing is separate from running so it can be tested on recorded output.
import { ROUTE_PROTOCOL, ROUTE_PROTOCOL_NAME, type CommandRunner, type RunOptions, type RunResult } from '../system/index.js';
import { LO_LABEL } from './modes/mode.js';
import type { KernelAddress, KernelLink, KernelMplsRoute, PodKernelState } from './objects.js';

/** Where a pod namespace is reachable for commands; `path` works for named and unnamed ones. */
export interface NetnsHandle {
  readonly path: string;
  readonly inode: number;
}

const NAMED = /^\/(?:var\/)?run\/netns\/([^/]+)$/;

/**
 * Runs `ip` inside the namespace: `ip -n NAME` for a named one (one program instead of
 * nsenter + ip: it matters where process start-up is dear), nsenter for /proc/PID/ns/net.
 */
export function runIp(run: CommandRunner, ns: NetnsHandle, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const name = NAMED.exec(ns.path)?.[1];
  return name ? run('ip', ['-n', name, ...args], opts) : run('ip', args, { ...opts, netnsPath: ns.path });
}

interface IpAddrJson {
  ifname?: unknown;
  flags?: unknown;
  address?: unknown;
  linkinfo?: { info_kind?: unknown; info_data?: unknown };
  addr_info?: Array<{ family?: unknown; local?: unknown; prefixlen?: unknown; scope?: unknown; label?: unknown }>;
}

/** `ip -j` output as JSON (empty output: no objects); throws naming the command and the offending text. */
function parseIpJson(text: string, command: string): unknown {
  try {
    return JSON.parse(text || '[]');
  } catch {
    throw new Error(`${command}: not JSON: ${text.slice(0, 200)}`);
  }
}

/** Parses `ip -d -j addr show`. Throws with the offending text when it is not that. */
export function parseIpAddrJson(text: string): KernelLink[] {
  const raw = parseIpJson(text, 'ip -j addr');
  if (!Array.isArray(raw)) throw new Error('ip -j addr: expected an array');
  return (raw as IpAddrJson[]).flatMap((l): KernelLink[] => {
    if (typeof l.ifname !== 'string') return [];
    const flags = Array.isArray(l.flags) ? (l.flags as unknown[]) : [];
    const addresses = (l.addr_info ?? []).flatMap((a): KernelAddress[] => {
      if (typeof a.local !== 'string' || typeof a.prefixlen !== 'number') return [];
      return [{
        address: a.local,
        prefixLen: a.prefixlen,
        family: a.family === 'inet6' ? 6 : 4,
        scope: typeof a.scope === 'string' ? a.scope : 'global',
        ...(typeof a.label === 'string' ? { label: a.label } : {}),
      }];
    });
    const info = l.linkinfo?.info_data;
    return [{
      name: l.ifname,
      up: flags.includes('UP'),
      noarp: flags.includes('NOARP'),
      ...(typeof l.linkinfo?.info_kind === 'string' ? { kind: l.linkinfo.info_kind } : {}),
      ...(typeof l.address === 'string' ? { mac: l.address } : {}),
      info: info && typeof info === 'object' ? (info as Record<string, unknown>) : {},
      addresses,
    }];
  });
}

/** Parses `ip -j -f mpls route show`, keeping only the project's routes. */
export function parseMplsRoutes(text: string): KernelMplsRoute[] {
  const raw = parseIpJson(text, 'ip -j -f mpls route');
  if (!Array.isArray(raw)) return [];
  return (raw as Array<{ dst?: unknown; dev?: unknown; protocol?: unknown }>).flatMap((r): KernelMplsRoute[] => {
    const protocol = String(r.protocol ?? '');
    if (protocol !== String(ROUTE_PROTOCOL) && protocol !== ROUTE_PROTOCOL_NAME) return [];
    const label = Number(r.dst);
    if (!Number.isInteger(label)) return [];
    return [{ label, protocol, ...(typeof r.dev === 'string' ? { dev: r.dev } : {}) }];
  });
}

/** Parses `grep -H . FILE...` output: "/proc/sys/PATH:VALUE" lines. */
export function parseSysctlLines(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\/proc\/sys\/([^:]+):(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!.trim());
  }
  return out;
}

export async function readSysctls(run: CommandRunner, ns: NetnsHandle, paths: readonly string[]): Promise<Map<string, string>> {
  if (paths.length === 0) return new Map();
  // grep -H names each file, so a missing one (a device not created yet) cannot shift values.
  const res = await run('grep', ['-H', '-s', '.', ...paths.map((p) => `/proc/sys/${p}`)], { netnsPath: ns.path, allowFailure: true });
  if (res.code > 2 || res.stderr.includes('nsenter')) throw new Error(`reading settings in ${ns.path}: ${res.stderr.trim()}`);
  return parseSysctlLines(res.stdout);
}

export async function readLinks(run: CommandRunner, ns: NetnsHandle): Promise<KernelLink[]> {
  const res = await runIp(run, ns, ['-d', '-j', 'addr', 'show']);
  return parseIpAddrJson(res.stdout);
}

/** The project's MPLS routes; none when the kernel has no MPLS (the command fails). */
export async function readMplsRoutes(run: CommandRunner, ns: NetnsHandle): Promise<KernelMplsRoute[]> {
  const res = await runIp(run, ns, ['-j', '-f', 'mpls', 'route', 'show'], { allowFailure: true });
  return res.code === 0 ? parseMplsRoutes(res.stdout) : [];
}

export async function readPodKernelState(
  run: CommandRunner,
  ns: NetnsHandle,
  opts: { sysctlPaths: readonly string[]; mpls: boolean },
): Promise<PodKernelState> {
  const [links, sysctls] = await Promise.all([readLinks(run, ns), readSysctls(run, ns, opts.sysctlPaths)]);
  // MPLS routes are read where MPLS mode is wanted or has left traces (a VIP labelled
  // lo:kst is only ever made by it), so a mode change away from MPLS removes its route.
  const traces = links.some((l) => l.name === 'lo' && l.addresses.some((a) => a.label === LO_LABEL));
  const mplsRoutes = opts.mpls || traces ? await readMplsRoutes(run, ns) : [];
  return { links, mplsRoutes, sysctls };
}
