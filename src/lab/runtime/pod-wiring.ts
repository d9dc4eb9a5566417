// Pods whose network namespace a container runtime made: the lab wires them the way a CNI
// plugin does when the runtime calls it with the sandbox's namespace. The namespace has no
// /run/netns name; the lab knows it only as /proc/PID/ns/net of the pod's process. The
// steps are network-plan.ts's, given the PID where the plan has a namespace name. Pure:
// the steps are values (tested without root), `container-lab.ts` runs them.
import { addressSteps, namespaceSteps, vethSteps, type PlanStep } from '../network-plan.js';
import type { LabHost, LabLink, LabTopology } from '../topology.js';

/** The node's side of a pod's veth (the topology's link). */
function nodeSideOf(topo: LabTopology, pod: LabHost): { node: LabHost; link: LabLink; ifname: string } {
  const link = topo.links.find((l) => l.b.host === pod.name && l.a.host === pod.node);
  const node = topo.hosts.find((h) => h.name === pod.node);
  if (!link || !node) throw new Error(`lab topology: pod ${pod.name} has no link to its node`);
  return { node, link, ifname: link.a.ifname };
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
export function podWiring(topo: LabTopology, podName: string, pid: number): PlanStep[] {
  const pod = topo.hosts.find((h) => h.name === podName && h.role === 'pod');
  if (!pod) throw new Error(`lab topology: no pod "${podName}"`);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`pod ${podName}: bad pid ${pid}`);
  const { node, link, ifname } = nodeSideOf(topo, pod);
  const podNs = { pid };
  return [
    ...namespaceSteps(podNs, pod),
    ...vethSteps(link, node.netns, podNs),
    ...addressSteps(podNs, pod.addresses, pod.routes),
    // The node's addresses and routes on this veth: left out of the plan without pods (withoutPods).
    ...addressSteps({ netns: node.netns }, node.addresses.filter((a) => a.ifname === ifname), node.routes.filter((r) => r.dev === ifname)),
  ];
}
