// The kernel commands that build the lab's network, derived from the topology. Pure: the
// plan is a value (tested without root), `up` runs it. Every command names its namespace
// explicitly (`ip -n NS`, `ip netns exec NS`), so nothing here can touch the root
// namespace's links, routes or rules.
import type { LabHost, LabTopology } from './topology.js';

export interface PlanStep {
  readonly file: string;
  readonly args: readonly string[];
  readonly netns?: string;
  /** stdin, for `ip -batch -`. */
  readonly input?: string;
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

export function networkPlan(topo: LabTopology): PlanStep[] {
  const steps: PlanStep[] = [];
  const nsOf = (name: string): string => {
    const h = topo.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`lab topology: link refers to unknown host "${name}"`);
    return h.netns;
  };

  for (const h of topo.hosts) {
    steps.push({ file: 'ip', args: ['netns', 'add', h.netns] });
    steps.push({ file: 'ip', args: ['-n', h.netns, 'link', 'set', 'lo', 'up'] });
    // Before any interface exists, so per-interface values inherit the defaults.
    steps.push({ file: 'sysctl', args: ['-q', '-w', ...sysctlsFor(h)], netns: h.netns });
  }
  for (const b of topo.bridges) {
    const ns = nsOf(b.host);
    steps.push({ file: 'ip', args: ['-n', ns, 'link', 'add', b.ifname, 'type', 'bridge'] });
    steps.push({ file: 'ip', args: ['-n', ns, 'link', 'set', b.ifname, 'up'] });
  }
  for (const l of topo.links) {
    const a = nsOf(l.a.host);
    const b = nsOf(l.b.host);
    // Created directly in both namespaces: the pair never exists in the root namespace.
    steps.push({ file: 'ip', args: ['-n', a, 'link', 'add', l.a.ifname, 'type', 'veth', 'peer', 'name', l.b.ifname, 'netns', b] });
    if (l.bridge) steps.push({ file: 'ip', args: ['-n', a, 'link', 'set', l.a.ifname, 'master', l.bridge] });
    steps.push({ file: 'ip', args: ['-n', a, 'link', 'set', l.a.ifname, 'up'] });
    steps.push({ file: 'ip', args: ['-n', b, 'link', 'set', l.b.ifname, 'up'] });
  }
  for (const h of topo.hosts) {
    const lines = [
      // IPv6 addresses without duplicate address detection: usable at once, as on a CNI's veths.
      ...h.addresses.map((a) => `address add ${a.cidr} dev ${a.ifname}${a.cidr.includes(':') ? ' nodad' : ''}`),
      ...h.routes.map((r) => {
        const parts = ['route', 'add', r.dst];
        if (r.via) parts.push('via', r.via);
        if (r.dev) parts.push('dev', r.dev);
        if (r.src) parts.push('src', r.src);
        if (r.onlink) parts.push('onlink');
        return parts.join(' ');
      }),
    ];
    if (lines.length) steps.push({ file: 'ip', args: ['-n', h.netns, '-batch', '-'], input: `${lines.join('\n')}\n` });
  }
  return steps;
}

/** One line per step, for golden tests and `--dry-run`. */
export function renderPlan(steps: readonly PlanStep[]): string {
  return steps
    .map((s) => {
      const head = s.netns ? `ip netns exec ${s.netns} ` : '';
      const body = `${head}${s.file} ${s.args.join(' ')}`;
      return s.input ? `${body} <<EOF\n${s.input}EOF` : body;
    })
    .join('\n');
}
