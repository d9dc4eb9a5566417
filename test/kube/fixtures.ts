// Plain API objects for the kube tests (documentation address ranges only).
import type { KubeObject } from '../../src/lab/apiserver.js';

export const NODE = 'node-a';

export function node(name: string, opts: { ip?: string; labels?: Record<string, string>; ready?: boolean } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: opts.labels ?? {} },
    spec: {},
    status: {
      addresses: [{ type: 'InternalIP', address: opts.ip ?? '192.0.2.10' }],
      conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }],
    },
  };
}

export function service(name: string, opts: { namespace?: string; vip?: string; type?: string } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: opts.namespace ?? 'default', annotations: opts.vip ? { 'cmd.nu/tunnel': opts.vip } : {} },
    spec: { type: opts.type ?? 'ClusterIP', selector: { app: name }, ports: [{ port: 80, protocol: 'TCP' }] },
  };
}

export function endpointSlice(name: string, serviceName: string, addresses: readonly string[], opts: { namespace?: string; ready?: boolean } = {}): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: opts.namespace ?? 'default', labels: { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    endpoints: addresses.map((a) => ({ addresses: [a], nodeName: NODE, conditions: { ready: opts.ready ?? true } })),
    ports: [{ port: 80, protocol: 'TCP' }],
  };
}

export function pod(name: string, nodeName: string, ip: string, opts: { namespace?: string; containerId?: string } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: opts.namespace ?? 'default' },
    spec: { nodeName, containers: [{ name: 'app', image: 'example' }] },
    status: { podIP: ip, podIPs: [{ ip }], containerStatuses: [{ name: 'app', containerID: opts.containerId ?? `containerd://${name}` }] },
  };
}
