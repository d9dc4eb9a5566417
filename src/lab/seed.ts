// The Kubernetes objects the lab API server starts with, derived from the topology so the
// Nodes' InternalIPs and the Pods' IPs are the ones the lab's namespaces really have:
// labelled Nodes, running echo Pods, a Service annotated `cmd.nu/tunnel` and its
// EndpointSlice. Written as YAML files the API server is seeded from.
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { hostsByRole, kubeNodes, primaryIp, primaryIp6, type LabHost, type LabTopology, type LabVip } from './topology.js';

export type SeedObject = Record<string, unknown> & { kind: string; metadata: { name: string; namespace?: string; [key: string]: unknown } };

const CREATED = '2026-01-01T00:00:00Z';

/** A stable uid per object, so reseeding gives the same identities. */
export function labUid(kind: string, namespace: string, name: string): string {
  const h = createHash('sha1').update(`${kind}/${namespace}/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function endpointSliceName(serviceName: string): string {
  return `${serviceName}-lab`;
}

/** The dual-stack Service's second slice: an EndpointSlice holds one address family. */
export function endpointSliceName6(serviceName: string): string {
  return `${serviceName}-lab-v6`;
}

function nodeObject(h: LabHost): SeedObject {
  const ip6 = primaryIp6(h);
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: h.name, uid: labUid('Node', '', h.name), labels: { ...(h.labels ?? {}) },
      ...(h.annotations ? { annotations: { ...h.annotations } } : {}), creationTimestamp: CREATED,
    },
    spec: h.podCidr ? { podCIDR: h.podCidr, podCIDRs: [h.podCidr, ...(h.podCidr6 ? [h.podCidr6] : [])] } : {},
    status: {
      addresses: [{ type: 'InternalIP', address: primaryIp(h) }, ...(ip6 ? [{ type: 'InternalIP', address: ip6 }] : []), { type: 'Hostname', address: h.name }],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastTransitionTime: CREATED }],
    },
  };
}

function podObject(h: LabHost, namespace: string, hostIP: string): SeedObject {
  const ip = primaryIp(h);
  const ip6 = primaryIp6(h);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: h.name, namespace, uid: labUid('Pod', namespace, h.name), labels: { app: 'echo' }, creationTimestamp: CREATED },
    spec: { nodeName: h.node, containers: [{ name: 'echo', image: 'kst-lab/echo-server', ports: [{ containerPort: 8080 }] }] },
    status: {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }, ...(ip6 ? [{ ip: ip6 }] : [])],
      hostIP,
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [{ name: 'echo', ready: true, containerID: `lab://${h.name}` }],
    },
  };
}

export function seedObjects(topo: LabTopology): SeedObject[] {
  const objects: SeedObject[] = [];
  const namespaces = [...new Set(topo.vips.map((v) => v.serviceNamespace))];
  for (const ns of namespaces) objects.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, uid: labUid('Namespace', '', ns) } });
  for (const n of kubeNodes(topo)) objects.push(nodeObject(n));
  const pods = hostsByRole(topo, 'pod');
  for (const vip of topo.vips) {
    const ns = vip.serviceNamespace;
    for (const p of pods) {
      const node = topo.hosts.find((x) => x.name === p.node);
      if (!node) throw new Error(`lab topology: pod ${p.name} runs on unknown node "${p.node ?? ''}"`);
      objects.push(podObject(p, ns, primaryIp(node)));
    }
    objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: vip.serviceName, namespace: ns, uid: labUid('Service', ns, vip.serviceName), creationTimestamp: CREATED,
        annotations: { 'cmd.nu/tunnel': vip.address6 ? `${vip.address}, ${vip.address6}` : vip.address },
      },
      spec: {
        type: 'ClusterIP',
        // The racks lab says in the Service what its two VIPs mean: one Service, both families.
        ...(topo.kind === 'racks' && vip.address6 ? { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] } : {}),
        selector: { app: 'echo' },
        ports: vip.ports.flatMap((port) => [
          { name: `tcp-${port}`, protocol: 'TCP', port, targetPort: port },
          { name: `udp-${port}`, protocol: 'UDP', port, targetPort: port },
        ]),
      },
    });
    objects.push(endpointSlice(vip, pods, 4));
    if (vip.address6) objects.push(endpointSlice(vip, pods, 6));
  }
  return objects;
}

/** The Service's endpoints of one family: every pod, by its address of that family. */
function endpointSlice(vip: LabVip, pods: readonly LabHost[], family: 4 | 6): SeedObject {
  const ns = vip.serviceNamespace;
  const name = family === 4 ? endpointSliceName(vip.serviceName) : endpointSliceName6(vip.serviceName);
  const address = (p: LabHost): string => {
    const a = family === 4 ? primaryIp(p) : primaryIp6(p);
    if (!a) throw new Error(`lab topology: pod ${p.name} has no IPv${family} address for the ${vip.serviceName} Service`);
    return a;
  };
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name, namespace: ns, uid: labUid('EndpointSlice', ns, family === 4 ? vip.serviceName : `${vip.serviceName}-v6`),
      labels: { 'kubernetes.io/service-name': vip.serviceName, 'endpointslice.kubernetes.io/managed-by': 'kst-lab' },
    },
    addressType: family === 4 ? 'IPv4' : 'IPv6',
    endpoints: pods.map((p) => ({
      addresses: [address(p)],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: p.node,
      targetRef: { kind: 'Pod', namespace: ns, name: p.name, uid: labUid('Pod', ns, p.name) },
    })),
    ports: vip.ports.flatMap((port) => [
      { name: `tcp-${port}`, protocol: 'TCP', port },
      { name: `udp-${port}`, protocol: 'UDP', port },
    ]),
  };
}

/** All seed objects as one multi-document YAML file. */
export function seedYaml(topo: LabTopology): string {
  const header = '# Generated by `kst lab up` from src/lab/topology.ts: the lab cluster\'s objects.\n';
  return header + seedObjects(topo).map((o) => `---\n${stringify(o)}`).join('');
}
