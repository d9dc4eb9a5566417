// `kst lab up --runtime podman`: the lab's pods come from a container runtime. Every node
// runs the DaemonSet's pod (agent + gobgpd, from deploy/base's pod template, in the image
// scripts/build-image.sh builds), and every echo pod is a container whose namespace podman
// makes (`--network none`) and the lab wires as a CNI plugin would.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand, type CommandRunner } from '../../system/index.js';
import { agentEnv } from '../agent-config.js';
import { repoRoot } from '../paths.js';
import type { LabPaths, LabProcess } from '../state.js';
import { hostsByRole, kubeNodes, type LabTopology } from '../topology.js';
import { podTemplate, readManifests, type PodTemplate } from './pod-template.js';
import { echoPodPlan, nodePodPlan, type NodePodContext } from './podman-plan.js';
import { Podman, type LabPod } from './podman.js';
import { podWiring } from './pod-wiring.js';
import { runPlan } from '../network-plan.js';

export type LabRuntime = 'process' | 'podman';
export const RUNTIMES: readonly LabRuntime[] = ['process', 'podman'];

/** Where the lab's kubeconfig appears in the agent container (the lab's API server speaks plain HTTP, no service account). */
export const KUBECONFIG_IN_CONTAINER = '/var/run/secrets/kst-lab/kubeconfig';

export function labPodTemplate(): PodTemplate {
  return podTemplate(readManifests(join(repoRoot(), 'deploy/base')));
}

/** The one image every container of the template names (also the echo pods' image: it carries the echo server). */
export function templateImage(t: PodTemplate): string {
  const images = [...new Set(t.containers.map((c) => c.image))];
  if (images.length !== 1) throw new Error(`deploy/base: the lab expects one image in the DaemonSet, found ${images.join(', ')}`);
  return images[0]!;
}

/** Problems that keep the container mode from starting, each with what to do. */
export async function containerPreflight(podman: Podman): Promise<Array<{ what: string; fix: string }>> {
  if (!(await podman.available())) return [{ what: 'podman', fix: 'install it: bash scripts/install-deps.sh --containers' }];
  const image = templateImage(labPodTemplate());
  if (!(await podman.imageExists(image))) return [{ what: `image ${image}`, fix: 'build it: bash scripts/build-image.sh' }];
  return [];
}

/** The pod context of one node: what the kubelet would fill in, plus the lab's API access. */
export function nodeContext(topo: LabTopology, t: PodTemplate, node: string, paths: LabPaths, configDir: string, image?: string): NodePodContext {
  const env = agentEnv(topo, node, paths.kubeconfig);
  return {
    prefix: topo.prefix,
    netns: `${topo.prefix}${node}`,
    identity: { nodeName: node, podName: env.POD_NAME!, namespace: t.namespace, uid: env.POD_UID! },
    configMapDirs: Object.fromEntries(t.volumes.filter((v) => v.kind === 'configMap').map((v) => [v.name, configDir])),
    extraEnv: { KUBECONFIG: KUBECONFIG_IN_CONTAINER, KST_LAB_NETNS_PREFIX: topo.prefix },
    extraMounts: { [paths.kubeconfig]: KUBECONFIG_IN_CONTAINER },
    logFile: (container) => join(paths.logDir, `${container}-${node}.log`),
    ...(image ? { image } : {}),
  };
}

/**
 * The ConfigMap volume's files: each item of the template's ConfigMap volume, with the lab's
 * generated agent config as its content (deploy/base's ConfigMap holds a production example).
 */
export function writeConfigMapDir(t: PodTemplate, paths: LabPaths, agentConfigYaml: string): string {
  const dir = join(paths.dir, 'configmap');
  mkdirSync(dir, { recursive: true });
  for (const v of t.volumes) if (v.kind === 'configMap') for (const it of v.items) writeFileSync(join(dir, it.path), agentConfigYaml);
  return dir;
}

/** Echo pods as containers, each wired by its PID. Returns what to record. */
export async function startEchoPods(topo: LabTopology, paths: LabPaths, record: (p: LabProcess) => void, run: CommandRunner = runCommand): Promise<LabPod[]> {
  const podman = new Podman(run);
  const image = templateImage(labPodTemplate());
  const pods: LabPod[] = [];
  for (const pod of hostsByRole(topo, 'pod')) {
    const logFile = join(paths.logDir, `echo-${pod.name}.log`);
    const plan = echoPodPlan(topo.prefix, pod.name, image, topo.echoPort, logFile);
    await podman.cmd(plan.createPod);
    pods.push({ pod: plan.pod, graceSeconds: 5, containers: [{ name: plan.container }], volumes: [] });
    await podman.cmd(plan.run);
    const pid = await podman.pid(plan.container);
    await runPlan(podWiring(topo, pod.name, pid), run);
    // No /run/netns name: the namespace is the container's, found as /proc/PID/ns/net.
    record({ kind: 'echo', host: pod.name, netns: `/proc/${pid}/ns/net`, pid, logFile, container: plan.container });
  }
  return pods;
}

/** The DaemonSet's pod on one node: volumes, then the containers in the template's order. */
export async function startNodePod(t: PodTemplate, ctx: NodePodContext, node: string, record: (p: LabProcess) => void, run: CommandRunner = runCommand): Promise<LabPod> {
  const podman = new Podman(run);
  const plan = nodePodPlan(t, node, ctx);
  await podman.cmd(plan.createPod);
  for (const v of plan.createVolumes) await podman.cmd(v);
  const pod: LabPod = {
    pod: plan.pod, graceSeconds: plan.graceSeconds, volumes: plan.volumeNames,
    containers: plan.containers.map((c) => ({ name: c.name, ...(c.template.preStop ? { preStop: c.template.preStop } : {}) })),
  };
  for (const c of plan.containers) {
    await podman.cmd(c.run);
    const pid = await podman.pid(c.name);
    record({ kind: c.template.name, host: node, netns: ctx.netns, pid, logFile: ctx.logFile(c.template.name), container: c.name });
  }
  return pod;
}

/** Every node's pod; gobgpd is the template's second container, the agent retries until it answers. */
export async function startNodePods(topo: LabTopology, paths: LabPaths, agentConfigYaml: string, record: (p: LabProcess) => void, run: CommandRunner = runCommand): Promise<LabPod[]> {
  const t = labPodTemplate();
  const configDir = writeConfigMapDir(t, paths, agentConfigYaml);
  const pods: LabPod[] = [];
  for (const n of kubeNodes(topo)) pods.push(await startNodePod(t, nodeContext(topo, t, n.name, paths, configDir), n.name, record, run));
  return pods;
}

/** `down`: every pod stopped as the kubelet stops it (in parallel), then whatever carries the lab's label removed. */
export async function stopContainerLab(prefix: string, pods: readonly LabPod[], progress: (line: string) => void, run: CommandRunner = runCommand): Promise<number> {
  const podman = new Podman(run);
  if (!(await podman.available())) return 0;
  if (pods.length) {
    progress(`stopping ${pods.length} pod(s) as the kubelet does (preStop hooks, then SIGTERM; grace period up to ${Math.max(...pods.map((p) => p.graceSeconds))} s)`);
    await Promise.all(pods.map((p) => podman.stopPod(p, progress)));
  }
  const removed = await podman.removeLab(prefix);
  const n = removed.containers.length + removed.pods.length + removed.volumes.length;
  if (n) progress(`removed ${removed.containers.length} container(s), ${removed.pods.length} pod(s), ${removed.volumes.length} volume(s)`);
  return n;
}
