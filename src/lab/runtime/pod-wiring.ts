// Pods whose network namespace a container runtime made: the lab wires them the way a CNI
// plugin does when the runtime calls it with the sandbox's namespace. The namespace has no
// /run/netns name; the lab knows it only as /proc/PID/ns/net of the pod's process. Pure:
// the steps are values (tested without root), `container-lab.ts` runs them.
import { sysctlsFor } from '../network-plan.js';
import type { LabHost, LabTopology } from '../topology.js';

export interface WiringStep {
  readonly file: string;
  readonly args: readonly string[];
  /** Run inside this named namespace. */
  readonly netns?: string;
  /** Run inside the namespace at this path (`nsenter --net=PATH`). */
  readonly netnsPath?: string;
  readonly input?: string;
}

/** The interface on the node's side of a pod's veth (the topology's link). */
function nodeSideOf(topo: LabTopology, pod: LabHost): { node: LabHost; ifname: string; podIfname: string } {
  const link = topo.links.find((l) => l.b.host === pod.name && l.a.host === pod.node);
  const node = topo.hosts.find((h) => h.name === pod.node);
  if (!link || !node) throw new Error(`lab topology: pod ${pod.name} has no link to its node`);
  return { node, ifname: link.a.ifname, podIfname: link.b.ifname };
}

/**
 * The topology without the pods' namespaces and veths: what the lab builds before the
 * runtime has made any pod. The nodes lose the addresses and routes on their pod veths,
 * which `podWiring` adds when each pod is wired.
 */
export function withoutPods(topo: LabTopology): LabTopology {
  const pods = topo.hosts.filter((h) => h.role === 'pod');
  const podNames = new Set(pods.map((p) => p.name));
  const podIfs = new Map<string, Set<string>>();
  for (const p of pods) {
    const { node, ifname } = nodeSideOf(topo, p);
    podIfs.set(node.name, (podIfs.get(node.name) ?? new Set()).add(ifname));
  }
  return {
    ...topo,
    hosts: topo.hosts.filter((h) => !podNames.has(h.name)).map((h) => {
      const ifs = podIfs.get(h.name);
      if (!ifs) return h;
      return { ...h, addresses: h.addresses.filter((a) => !ifs.has(a.ifname)), routes: h.routes.filter((r) => !r.dev || !ifs.has(r.dev)) };
    }),
    links: topo.links.filter((l) => !podNames.has(l.a.host) && !podNames.has(l.b.host)),
  };
}

/** What a CNI ADD does for one pod: a veth into the pod's namespace, the pod IPs, the routes on both sides. */
export function podWiring(topo: LabTopology, podName: string, pid: number): WiringStep[] {
  const pod = topo.hosts.find((h) => h.name === podName && h.role === 'pod');
  if (!pod) throw new Error(`lab topology: no pod "${podName}"`);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`pod ${podName}: bad pid ${pid}`);
  const { node, ifname, podIfname } = nodeSideOf(topo, pod);
  const netnsPath = `/proc/${pid}/ns/net`;
  const nodeLines = [
    ...node.addresses.filter((a) => a.ifname === ifname).map((a) => `address add ${a.cidr} dev ${a.ifname}${a.cidr.includes(':') ? ' nodad' : ''}`),
    ...node.routes.filter((r) => r.dev === ifname).map((r) => routeLine(r)),
  ];
  const podLines = [
    `link set lo up`,
    `link set ${podIfname} up`,
    ...pod.addresses.map((a) => `address add ${a.cidr} dev ${a.ifname}${a.cidr.includes(':') ? ' nodad' : ''}`),
    ...pod.routes.map((r) => routeLine(r)),
  ];
  return [
    // Before the interface exists in it, so the pod's per-interface values inherit the defaults.
    { file: 'sysctl', args: ['-q', '-w', ...sysctlsFor(pod)], netnsPath },
    // Made in the node's namespace with its peer straight in the pod's: never in the root namespace.
    { file: 'ip', args: ['-n', node.netns, 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', podIfname, 'netns', String(pid)] },
    { file: 'ip', args: ['-n', node.netns, 'link', 'set', ifname, 'up'] },
    { file: 'ip', args: ['-batch', '-'], netnsPath, input: `${podLines.join('\n')}\n` },
    { file: 'ip', args: ['-n', node.netns, '-batch', '-'], input: `${nodeLines.join('\n')}\n` },
  ];
}

function routeLine(r: { dst: string; via?: string; dev?: string; src?: string; onlink?: boolean }): string {
  const parts = ['route', 'add', r.dst];
  if (r.via) parts.push('via', r.via);
  if (r.dev) parts.push('dev', r.dev);
  if (r.src) parts.push('src', r.src);
  if (r.onlink) parts.push('onlink');
  return parts.join(' ');
}
