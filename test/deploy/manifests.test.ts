// The manifests parse, the DaemonSet is wired as the docs say, and RBAC grants every
// Kubernetes API call the code makes (found by scanning src/ for the agent's client calls,
// `method: 'VERB', path: xxxPath(...)`, and informer paths) and nothing beyond what is listed here.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

const root = new URL('../../', import.meta.url).pathname;
const base = join(root, 'deploy/base');

type Obj = { kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

function loadManifests(): Obj[] {
  const out: Obj[] = [];
  for (const f of readdirSync(base).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')) {
    for (const doc of parseAllDocuments(readFileSync(join(base, f), 'utf8'))) {
      if (doc.errors.length) throw new Error(`${f}: ${doc.errors[0]!.message}`);
      const v = doc.toJS() as Obj | null;
      if (v) out.push(v);
    }
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/**
 * A call of the agent's client (src/kube/client/paths.ts helpers) -> the permission it needs,
 * keyed "METHOD helper" (" status" when the helper's third argument is 'status').
 * Every call found in src/ must be listed.
 */
const CALLS: Record<string, { group: string; resource: string; verb: string }> = {
  'GET servicePath': { group: '', resource: 'services', verb: 'get' },
  'PATCH servicePath': { group: '', resource: 'services', verb: 'patch' },
  'PATCH servicePath status': { group: '', resource: 'services/status', verb: 'patch' },
  'POST eventPath': { group: '', resource: 'events', verb: 'create' },
  'PATCH eventPath': { group: '', resource: 'events', verb: 'patch' },
  'GET leasePath': { group: 'coordination.k8s.io', resource: 'leases', verb: 'get' },
  'POST leasePath': { group: 'coordination.k8s.io', resource: 'leases', verb: 'create' },
  'PUT leasePath': { group: 'coordination.k8s.io', resource: 'leases', verb: 'update' },
  'GET secretPath': { group: '', resource: 'secrets', verb: 'get' },
};

/** Informer paths watch as well as list. */
const WATCHED: Record<string, { group: string; resource: string }> = {
  '/api/v1/services': { group: '', resource: 'services' },
  '/apis/discovery.k8s.io/v1/endpointslices': { group: 'discovery.k8s.io', resource: 'endpointslices' },
  '/api/v1/nodes': { group: '', resource: 'nodes' },
  '/api/v1/pods': { group: '', resource: 'pods' },
};

function grants(rules: Rule[], group: string, resource: string, verb: string): boolean {
  return rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
}

describe('deploy/base manifests', () => {
  const objs = loadManifests();
  const byKind = (kind: string) => objs.filter((o) => o.kind === kind);

  it('parse, and the kustomization lists every file', () => {
    expect(objs.length).toBeGreaterThanOrEqual(7);
    const kust = parseAllDocuments(readFileSync(join(base, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as { resources: string[] };
    const files = readdirSync(base).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kust.resources].sort()).toEqual(files.sort());
  });

  it('run the agent (privileged: it writes pod sysctls) and a gobgpd sidecar with gRPC on loopback, probes and least capabilities', () => {
    const ds = byKind('DaemonSet')[0] as unknown as {
      spec: { template: { spec: { hostNetwork: boolean; containers: Array<{ name: string; args: string[]; readinessProbe?: { httpGet: { path: string } }; livenessProbe?: { httpGet: { path: string } }; securityContext: { privileged?: boolean; capabilities?: { add: string[]; drop: string[] } } }> } } };
    };
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    const agent = pod.containers.find((c) => c.name === 'agent')!;
    const gobgpd = pod.containers.find((c) => c.name === 'gobgpd')!;
    expect(agent.args.slice(0, 1)).toEqual(['agent']);
    expect(agent.readinessProbe?.httpGet.path).toBe('/readyz');
    expect(agent.livenessProbe?.httpGet.path).toBe('/healthz');
    // Container runtimes keep /proc/sys read-only in any container that is not privileged
    // (test/lab/container-e2e.test.ts runs it); gobgpd needs only its two capabilities.
    expect(agent.securityContext.privileged).toBe(true);
    expect(gobgpd.securityContext.privileged).toBeUndefined();
    expect(gobgpd.securityContext.capabilities?.drop).toEqual(['ALL']);
    expect(gobgpd.securityContext.capabilities?.add).toEqual(['NET_ADMIN', 'NET_BIND_SERVICE']);
    const apiHost = gobgpd.args[gobgpd.args.indexOf('--api-hosts') + 1];
    expect(apiHost).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('give the agent its node, pod name, namespace and uid (Lease identity and namespace), and the lab sets the same', async () => {
    const ds = byKind('DaemonSet')[0] as unknown as {
      spec: { template: { spec: { containers: Array<{ name: string; env?: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }> }> } } };
    };
    const env = ds.spec.template.spec.containers.find((c) => c.name === 'agent')!.env ?? [];
    const downward = Object.fromEntries(env.filter((e) => e.valueFrom?.fieldRef).map((e) => [e.name, e.valueFrom!.fieldRef!.fieldPath]));
    expect(downward).toEqual({ NODE_NAME: 'spec.nodeName', POD_NAME: 'metadata.name', POD_NAMESPACE: 'metadata.namespace', POD_UID: 'metadata.uid' });
    // The lab starts its agents as the kubelet would: every downward-API variable set.
    const { agentEnv, buildTopology, kubeNodes, LAB_AGENT_NAMESPACE } = await import('../../src/lab/index.js');
    const topo = buildTopology();
    const nodes = kubeNodes(topo).map((h) => h.name);
    const labEnvs = nodes.map((n) => agentEnv(topo, n, '/tmp/kubeconfig'));
    for (const e of labEnvs) expect(Object.keys(e)).toEqual(expect.arrayContaining(Object.keys(downward)));
    expect(labEnvs.map((e) => e.NODE_NAME)).toEqual(nodes);
    expect(new Set(labEnvs.map((e) => e.POD_NAME)).size).toBe(nodes.length);
    expect(new Set(labEnvs.map((e) => e.POD_UID)).size).toBe(nodes.length);
    expect(labEnvs.every((e) => e.POD_NAMESPACE === LAB_AGENT_NAMESPACE)).toBe(true);
    // ... and the namespace is the one the Lease Role is granted in.
    const role = byKind('Role').find((r) => r.metadata.name === 'kube-service-tunnel-leases')!;
    expect(role.metadata.namespace).toBe(LAB_AGENT_NAMESPACE);
  });

  it("run the agent with V8 heap settings that fit its memory limit, the same in the lab and the bench (system/node-options.ts)", async () => {
    const ds = byKind('DaemonSet')[0] as unknown as {
      spec: { template: { spec: { containers: Array<{ name: string; env?: Array<{ name: string; value?: string }>; resources?: { limits?: { memory?: string } } }> } } };
    };
    const agent = ds.spec.template.spec.containers.find((c) => c.name === 'agent')!;
    const { AGENT_NODE_OPTIONS } = await import('../../src/system/index.js');
    expect(agent.env?.find((e) => e.name === 'NODE_OPTIONS')?.value).toBe(AGENT_NODE_OPTIONS);
    // The heap cap leaves room below the container's limit for what is not the JavaScript heap.
    const capMb = Number(/--max-old-space-size=(\d+)/.exec(AGENT_NODE_OPTIONS)?.[1]);
    const limitMi = Number(/^(\d+)Mi$/.exec(agent.resources?.limits?.memory ?? '')?.[1]);
    expect(capMb).toBeGreaterThan(0);
    expect(limitMi - capMb).toBeGreaterThanOrEqual(100);
    const { agentEnv, buildTopology, kubeNodes } = await import('../../src/lab/index.js');
    const topo = buildTopology();
    for (const n of kubeNodes(topo)) expect(agentEnv(topo, n.name, '/tmp/kubeconfig').NODE_OPTIONS).toBe(AGENT_NODE_OPTIONS);
    expect(readFileSync(join(root, 'bench/kube.ts'), 'utf8')).toContain('AGENT_NODE_OPTIONS');
  });

  it('the ConfigMap holds a configuration the agent accepts', async () => {
    const { parseConfig } = await import('../../src/config/index.js');
    const { parse } = await import('yaml');
    const cm = byKind('ConfigMap').find((o) => o.metadata.name === 'kube-service-tunnel') as unknown as { data: { 'config.yaml': string } };
    const r = parseConfig(parse(cm.data['config.yaml']));
    expect(r.ok ? [] : r.issues).toEqual([]);
  });

  it('RBAC grants every API call the code makes', () => {
    const rules = [...byKind('ClusterRole'), ...byKind('Role')].flatMap((r) => (r as unknown as { rules: Rule[] }).rules);
    const src = sourceFiles(join(root, 'src')).map((f) => readFileSync(f, 'utf8')).join('\n');
    const called = new Set(
      [...src.matchAll(/method: '(GET|POST|PUT|PATCH|DELETE)', path: (\w+Path)\(([^)]*)\)/g)].map((m) => `${m[1]} ${m[2]}${/,\s*'status'\s*$/.test(m[3]!) ? ' status' : ''}`),
    );
    const k8sCalls = [...called];
    // The scan must find the calls (a changed call style would make this test vacuous).
    expect(k8sCalls).toEqual(expect.arrayContaining(['GET leasePath', 'PUT leasePath', 'PATCH servicePath status', 'GET secretPath']));
    const unknown = k8sCalls.filter((m) => !CALLS[m]);
    expect(unknown).toEqual([]); // a new API call: add it to CALLS and to deploy/base/rbac.yaml
    for (const m of k8sCalls) {
      const need = CALLS[m]!;
      expect({ call: m, granted: grants(rules, need.group, need.resource, need.verb) }).toEqual({ call: m, granted: true });
    }
    for (const [path, need] of Object.entries(WATCHED)) {
      if (!src.includes(`'${path}'`)) continue;
      expect({ path, watch: grants(rules, need.group, need.resource, 'watch') }).toEqual({ path, watch: true });
      expect({ path, list: grants(rules, need.group, need.resource, 'list') }).toEqual({ path, list: true });
    }
  });

  it('RBAC grants nothing the code does not use (no wildcards; Secrets: get by name, in our namespace only)', () => {
    for (const r of byKind('ClusterRole').flatMap((x) => (x as unknown as { rules: Rule[] }).rules)) expect(r.resources).not.toContain('secrets');
    const rules = [...byKind('ClusterRole'), ...byKind('Role')].flatMap((r) => (r as unknown as { rules: Rule[] }).rules);
    for (const r of rules) {
      expect(r.verbs).not.toContain('*');
      expect(r.resources).not.toContain('*');
      if (r.resources.includes('secrets')) {
        expect(r.verbs).toEqual(['get']);
        expect(r.resourceNames?.length).toBeGreaterThan(0);
      }
    }
  });
});
