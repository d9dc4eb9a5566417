// The kernel commands that build the lab's network, derived from the topology. Pure: the
// plan is a value (tested without root), `up` runs it. Every command names its namespace
// explicitly (`ip -n NS`, `ip netns exec NS`), so nothing here can touch the root
// namespace's links, routes or rules.
import type { CommandRunner } from '../system/index.js';
import type { LabHost, LabLink, LabRoute, LabTopology } from './topology.js';

export interface PlanStep {
  readonly file: string;
  readonly args: readonly string[];
  /** Run inside this named namespace (`ip netns exec`). */
  readonly netns?: string;
  /** Run inside the namespace at this path (`nsenter --net=PATH`): a container runtime's pod. */
  readonly netnsPath?: string;
  /** stdin, for `ip -batch -`. */
  readonly input?: string;
}

/**
 * A namespace the plan wires: one of the lab's own (a /run/netns name), or a pod's that a
 * container runtime made, known only by its process (/proc/PID/ns/net), as a CNI plugin
 * knows it.
 */
export type PlanNetns = { readonly netns: string } | { readonly pid: number };

/** `ip ARGS` inside `ns`: `-n NS` for a named namespace, nsenter for a process's. */
function ipIn(ns: PlanNetns, args: readonly string[], input?: string): PlanStep {
  const where = 'netns' in ns ? { file: 'ip', args: ['-n', ns.netns, ...args] } : { file: 'ip', args, netnsPath: netnsPathOf(ns.pid) };
  return input === undefined ? where : { ...where, input };
}

function netnsPathOf(pid: number): string {
  return `/proc/${pid}/ns/net`;
}

export function sysctlsFor(h: LabHost): string[] {
  const s = [
    'net.ipv4.ip_forward=1',
    'net.ipv6.conf.all.forwarding=1',
    // Direct server return and VXLAN decap inside pods make asymmetric paths normal here,
    // as on a real cluster where the CNI relaxes reverse-path filtering.
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.default.rp_filter=0',
  ];
  // Spread flows from one client over both tunnel nodes by ports, not only by addresses.
  if (h.role === 'router') s.push('net.ipv4.fib_multipath_hash_policy=1', 'net.ipv6.fib_multipath_hash_policy=1');
  return s;
}

/** A namespace's own set-up: loopback up, then the host's sysctls (before any other interface exists, so per-interface values inherit the defaults). */
export function namespaceSteps(ns: PlanNetns, h: LabHost): PlanStep[] {
  const sysctl = { file: 'sysctl', args: ['-q', '-w', ...sysctlsFor(h)] };
  return [ipIn(ns, ['link', 'set', 'lo', 'up']), 'netns' in ns ? { ...sysctl, netns: ns.netns } : { ...sysctl, netnsPath: netnsPathOf(ns.pid) }];
}

/**
 * One link: a veth made in `a`'s namespace with its peer straight in `b`'s (named, or a
 * pod's by PID: `ip link add ... peer ... netns PID`), so the pair never exists in the root
 * namespace; then both ends up.
 */
export function vethSteps(l: LabLink, a: string, b: PlanNetns): PlanStep[] {
  const peerNs = 'netns' in b ? b.netns : String(b.pid);
  return [
    { file: 'ip', args: ['-n', a, 'link', 'add', l.a.ifname, 'type', 'veth', 'peer', 'name', l.b.ifname, 'netns', peerNs] },
    ...(l.bridge ? [{ file: 'ip', args: ['-n', a, 'link', 'set', l.a.ifname, 'master', l.bridge] }] : []),
    { file: 'ip', args: ['-n', a, 'link', 'set', l.a.ifname, 'up'] },
    ipIn(b, ['link', 'set', l.b.ifname, 'up']),
  ];
}

/** Addresses and routes (`ip -batch`), or nothing when there are none. */
export function addressSteps(ns: PlanNetns, addresses: LabHost['addresses'], routes: readonly LabRoute[]): PlanStep[] {
  const lines = [
    // IPv6 addresses without duplicate address detection: usable at once, as on a CNI's veths.
    ...addresses.map((a) => `address add ${a.cidr} dev ${a.ifname}${a.cidr.includes(':') ? ' nodad' : ''}`),
    ...routes.map((r) => routeLine(r)),
  ];
  return lines.length ? [ipIn(ns, ['-batch', '-'], `${lines.join('\n')}\n`)] : [];
}

function routeLine(r: LabRoute): string {
  const parts = ['route', 'add', r.dst];
  if (r.via) parts.push('via', r.via);
  if (r.dev) parts.push('dev', r.dev);
  if (r.src) parts.push('src', r.src);
  if (r.onlink) parts.push('onlink');
  return parts.join(' ');
}

export function networkPlan(topo: LabTopology): PlanStep[] {
  const steps: PlanStep[] = [];
  const nsOf = (name: string): string => {
    const h = topo.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`lab topology: link refers to unknown host "${name}"`);
    return h.netns;
  };

  for (const h of topo.hosts) {
    steps.push({ file: 'ip', args: ['netns', 'add', h.netns] });
    steps.push(...namespaceSteps({ netns: h.netns }, h));
  }
  for (const b of topo.bridges) {
    const ns = nsOf(b.host);
    steps.push({ file: 'ip', args: ['-n', ns, 'link', 'add', b.ifname, 'type', 'bridge'] });
    steps.push({ file: 'ip', args: ['-n', ns, 'link', 'set', b.ifname, 'up'] });
  }
  for (const l of topo.links) steps.push(...vethSteps(l, nsOf(l.a.host), { netns: nsOf(l.b.host) }));
  for (const h of topo.hosts) steps.push(...addressSteps({ netns: h.netns }, h.addresses, h.routes));
  return steps;
}

/** Runs the steps in order, each in its namespace with its stdin: `lab up`, and each container pod as it starts. */
export async function runPlan(steps: readonly PlanStep[], run: CommandRunner): Promise<void> {
  for (const { file, args, ...where } of steps) await run(file, args, where);
}

/** One line per step, for golden tests and `--dry-run`. */
export function renderPlan(steps: readonly PlanStep[]): string {
  return steps
    .map((s) => {
      const head = s.netns ? `ip netns exec ${s.netns} ` : s.netnsPath ? `nsenter --net=${s.netnsPath} -- ` : '';
      const body = `${head}${s.file} ${s.args.join(' ')}`;
      return s.input ? `${body} <<EOF\n${s.input}EOF` : body;
    })
    .join('\n');
}
