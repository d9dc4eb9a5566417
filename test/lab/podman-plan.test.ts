// The container-mode lab's podman commands come from deploy/base's DaemonSet, not from a copy:
// every field the kubelet would apply is read from the manifest and appears in the commands.
// (test/lab/container-e2e.test.ts holds the running containers against the manifest.)
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parseDocument } from 'yaml';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { buildTopology, labPaths } from '../../src/lab/index.js';
import { repoRoot } from '../../src/lab/paths.js';
import { labPodTemplate, nodeContext, templateImage } from '../../src/lab/runtime/container-lab.js';
import { memoryBytes, podTemplate, readManifests, resolveEnv } from '../../src/lab/runtime/pod-template.js';
import { CGROUP_PARENT, echoPodPlan, LAB_LABEL, LAB_POD_ENV, nodePodPlan } from '../../src/lab/runtime/podman-plan.js';
import { podWiring, withoutPods } from '../../src/lab/runtime/pod-wiring.js';
import { networkPlan, renderPlan } from '../../src/lab/network-plan.js';
import { removeLeftoverCgroups } from '../../src/lab/runtime/podman.js';

const raw = parseDocument(readFileSync(join(repoRoot(), 'deploy/base/daemonset.yaml'), 'utf8')).toJS() as {
  spec: { template: { spec: { containers: Array<{ name: string; image: string; args: string[]; command?: string[]; env?: Array<{ name: string; value?: string }> }>; terminationGracePeriodSeconds: number } } };
};
const rawPod = raw.spec.template.spec;
const topo = buildTopology({ prefix: 'h5t-' });
const paths = labPaths('h5t-', '/tmp/kst-test-state');

/** The values of every `flag VALUE` pair in an argument list. */
const values = (args: readonly string[], flag: string): string[] => args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));

describe('the DaemonSet pod template, read from deploy/base', () => {
  const t = labPodTemplate();

  it('has the manifest\'s containers, image, grace period and host namespaces', () => {
    expect(t.containers.map((c) => c.name)).toEqual(rawPod.containers.map((c) => c.name));
    expect(templateImage(t)).toBe(rawPod.containers[0]!.image);
    expect(t.terminationGracePeriodSeconds).toBe(rawPod.terminationGracePeriodSeconds);
    expect(t.hostNetwork && t.hostPID).toBe(true);
    expect(t.configMaps.get('kube-service-tunnel')?.['config.yaml']).toContain('tunnelNodeSelector');
  });

  it('fills the downward-API env as the kubelet does and rejects a field it cannot fill', () => {
    const env = resolveEnv(t.containers[0]!.env, { nodeName: 'n1', podName: 'p1', namespace: 'ns1', uid: 'u1' });
    expect(env).toMatchObject({ NODE_NAME: 'n1', POD_NAME: 'p1', POD_NAMESPACE: 'ns1', POD_UID: 'u1', KST_API__LISTEN: '0.0.0.0:9742' });
    expect(() => resolveEnv([{ name: 'X', fieldPath: 'status.hostIP' }], { nodeName: 'n', podName: 'p', namespace: 'n', uid: 'u' })).toThrow(/status.hostIP/);
  });

  it('says clearly what the lab cannot run', () => {
    const ds = (spec: object) => [{ kind: 'DaemonSet', metadata: { name: 'x', namespace: 'y' }, spec: { template: { spec } } }];
    expect(() => podTemplate(ds({ containers: [{ name: 'a', image: 'i' }], volumes: [{ name: 'v', secret: {} }] }))).toThrow(/only configMap, hostPath and emptyDir/);
    expect(() => podTemplate(ds({ containers: [{ name: 'a' }] }))).toThrow(/container a image/);
    expect(() => podTemplate([])).toThrow(/expected one DaemonSet, found 0/);
    expect(memoryBytes('512Mi')).toBe(512 * 1024 * 1024);
    expect(() => memoryBytes('lots')).toThrow(/quantity/);
  });
});

describe('podman commands for a node\'s pod', () => {
  const t = labPodTemplate();
  const plan = nodePodPlan(t, 'tunnel-1', nodeContext(topo, t, 'tunnel-1', paths, '/tmp/cm'));

  it('every container of the manifest, with its image, command, args, env, capabilities, read-only root and mounts', () => {
    expect(plan.containers.map((c) => c.name)).toEqual(rawPod.containers.map((c) => `h5t-tunnel-1-${c.name}`));
    for (const [i, c] of plan.containers.entries()) {
      const m = rawPod.containers[i]!;
      const run = c.run;
      const imageAt = run.indexOf(m.image);
      expect(imageAt).toBeGreaterThan(0);
      expect(run.slice(imageAt + 1)).toEqual(m.args.map(String));
      expect(values(run, '--entrypoint')).toEqual(m.command ? [JSON.stringify(m.command)] : []);
      const env = values(run, '--env');
      for (const e of m.env ?? []) expect(env.some((x) => x.startsWith(`${e.name}=`) && (e.value === undefined || x === `${e.name}=${e.value}`))).toBe(true);
      expect(values(run, '--network')).toEqual(['ns:/run/netns/h5t-tunnel-1']);
      expect(values(run, '--pid')).toEqual(['host']);
      expect(run).toContain('--read-only');
      expect(run.includes('--privileged')).toBe(t.containers[i]!.privileged);
      expect(values(run, '--cap-drop')).toEqual(t.containers[i]!.capDrop.map((x) => x.toLowerCase() === 'all' ? 'all' : x));
      expect(values(run, '--cap-add')).toEqual(t.containers[i]!.capAdd);
      expect(values(run, '--label')).toEqual([`${LAB_LABEL}=h5t-`]);
      expect(values(run, '--stop-timeout')).toEqual([String(rawPod.terminationGracePeriodSeconds)]);
      // Its own top-level cgroup: under podman's shared /libpod_parent the agents starved with the echo pods (BFD flaps).
      expect(values(run, '--cgroup-parent')).toEqual([CGROUP_PARENT]);
    }
    const agent = plan.containers.find((c) => c.template.name === 'agent')!.run;
    expect(values(agent, '--volume')).toEqual(expect.arrayContaining([
      '/tmp/cm:/etc/kube-service-tunnel:ro', '/run/netns:/run/netns:ro,rslave', 'h5t-tunnel-1-run:/run/kube-service-tunnel:rw',
    ]));
    expect(plan.createVolumes).toEqual([['volume', 'create', '--label', `${LAB_LABEL}=h5t-`, 'h5t-tunnel-1-run']]);
    expect(plan.containers.find((c) => c.template.name === 'gobgpd')!.template.preStop).toEqual(['sleep', '15']);
  });

  it('a rolling update replaces only the image', () => {
    const updated = nodePodPlan(t, 'tunnel-1', nodeContext(topo, t, 'tunnel-1', paths, '/tmp/cm', 'localhost/kst:next'));
    expect(updated.containers.map((c) => c.run.filter((a) => a !== 'localhost/kst:next'))).toEqual(plan.containers.map((c) => c.run.filter((a) => a !== templateImage(t))));
  });
});

describe('echo pods from the runtime, wired as a CNI plugin wires them', () => {
  it('runs with no network of podman\'s and the lab marker in its environment', () => {
    const p = echoPodPlan('h5t-', 'worker-1-a', 'img', 8080, '/tmp/log');
    expect(values(p.run, '--network')).toEqual(['none']);
    expect(values(p.run, '--env')).toEqual([`${LAB_POD_ENV}=h5t-`]);
    expect(values(p.run, '--cgroup-parent')).toEqual([CGROUP_PARENT]);
  });

  it('the lab network without pods has no pod namespace or veth; wiring adds exactly what the namespace plan had', () => {
    const without = networkPlan(withoutPods(topo));
    const text = JSON.stringify(without);
    for (const pod of topo.hosts.filter((h) => h.role === 'pod')) expect(text).not.toContain(pod.netns);
    expect(text).not.toContain('veth-1a');
    const steps = podWiring(topo, 'worker-1-a', 4242);
    expect(steps.find((s) => s.args.includes('veth'))?.args).toEqual(['-n', 'h5t-worker-1', 'link', 'add', 'veth-1a', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', '4242']);
    const inPod = steps.filter((s) => s.netnsPath === '/proc/4242/ns/net').map((s) => s.input ?? s.args.join(' ')).join('\n');
    expect(inPod).toContain('address add 198.51.100.130/32 dev eth0');
    expect(inPod).toContain('route add default via 169.254.1.1 dev eth0 onlink');
    // The plan's own link steps, with the PID where the plan has the pod's namespace name.
    expect(renderPlan(steps)).toContain('nsenter --net=/proc/4242/ns/net -- ip link set eth0 up');
    const onNode = steps.filter((s) => s.args[1] === 'h5t-worker-1' && s.input).map((s) => s.input).join('');
    expect(onNode).toContain('address add 169.254.1.1/32 dev veth-1a');
    expect(onNode).toContain('route add 198.51.100.130/32 dev veth-1a src 192.0.2.21');
    expect(() => podWiring(topo, 'worker-1-a', 0)).toThrow(/bad pid/);
  });

  it('reads every kustomization resource', () => {
    expect(readManifests(join(repoRoot(), 'deploy/base')).map((m) => m.kind)).toEqual(expect.arrayContaining(['DaemonSet', 'ConfigMap', 'Namespace']));
  });
});

describe('down removes the cgroups podman left behind', () => {
  it('removes each hierarchy\'s empty libpod-<id> of the lab\'s containers, and nothing else', () => {
    const root = mkdtempSync(join(tmpdir(), 'kst-cgroup-'));
    try {
      for (const d of ['cpu/libpod-aaa', 'memory/libpod-aaa', 'libpod-aaa', 'cpu/libpod-other', 'pids/libpod-aaa']) mkdirSync(join(root, d), { recursive: true });
      writeFileSync(join(root, 'pids/libpod-aaa/busy'), ''); // rmdir refuses, as for a cgroup still in use
      const removed = removeLeftoverCgroups(['aaa'], root).map((p) => p.slice(root.length)).sort();
      expect(removed).toEqual(['/cpu/libpod-aaa', '/libpod-aaa', '/memory/libpod-aaa']);
      expect(existsSync(join(root, 'cpu/libpod-other'))).toBe(true);
      expect(existsSync(join(root, 'pids/libpod-aaa'))).toBe(true);
      expect(removeLeftoverCgroups([], root)).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
