// A rolling image update of the DaemonSet in container mode, as its updateStrategy says
// (RollingUpdate, maxUnavailable 1): one node at a time, the old pod stopped as the kubelet
// stops it (preStop hooks, SIGTERM, the grace period), the new pod started with the new
// image, and the next node only once the new agent is ready (/readyz, the readiness probe).
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand, type CommandRunner } from '../../system/index.js';
import { agentConfig } from '../agent-config.js';
import { distFile } from '../paths.js';
import { readState, writeState, type LabPaths, type LabProcess } from '../state.js';
import { kubeNodes, type LabTopology } from '../topology.js';
import { labPodTemplate, nodeContext, startNodePod, templateImage } from './container-lab.js';
import { Podman } from './podman.js';

export interface RolloutStep {
  readonly node: string;
  /** From the old pod's stop to the new agent answering /readyz. */
  readonly ms: number;
}

/**
 * Rolls every node's pod to `image` (default: the manifest's image under a new tag, the
 * tag removed again afterwards so nothing is left in the image store).
 */
export async function rollingUpdate(topo: LabTopology, paths: LabPaths, progress: (line: string) => void, opts: { image?: string; run?: CommandRunner } = {}): Promise<RolloutStep[]> {
  const run = opts.run ?? runCommand;
  const podman = new Podman(run);
  const t = labPodTemplate();
  const current = templateImage(t);
  const image = opts.image ?? `${current.replace(/:[^:/]+$/, '')}:${topo.prefix}rollout`;
  const tagged = !opts.image;
  if (tagged) await podman.cmd(['tag', current, image]);
  const steps: RolloutStep[] = [];
  try {
    for (const n of kubeNodes(topo)) {
      const t0 = Date.now();
      const state = readState(paths);
      const old = state?.pods?.find((p) => p.pod === `${topo.prefix}${n.name}`);
      if (!state || !old) throw new Error(`no pod for node ${n.name} in the lab state`);
      progress(`rollout: ${n.name}: stopping ${old.pod} (preStop, grace ${old.graceSeconds} s)`);
      await podman.stopPod(old, progress);
      await podman.removePod(old.pod, old.volumes);
      const started: LabProcess[] = [];
      const pod = await startNodePod(t, nodeContext(topo, t, n.name, paths, join(paths.dir, 'configmap'), image), n.name, (p) => started.push(p), run);
      const now = readState(paths)!;
      const kinds = new Set(started.map((p) => `${p.kind}@${p.host}`));
      writeState(paths, {
        ...now,
        processes: [...now.processes.filter((p) => !kinds.has(`${p.kind}@${p.host}`)), ...started],
        pods: [...(now.pods ?? []).filter((p) => p.pod !== pod.pod), pod],
      });
      await waitReady(n.netns, topo, run);
      steps.push({ node: n.name, ms: Date.now() - t0 });
      progress(`rollout: ${n.name}: new pod ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    // Only the name goes: the running containers keep the image by its id.
    if (tagged) await podman.cmd(['untag', image, image], { allowFailure: true });
  }
  return steps;
}

/** The readiness probe: /readyz answering 200 in the node's namespace. */
async function waitReady(netns: string, topo: LabTopology, run: CommandRunner, timeoutMs = 120_000): Promise<void> {
  const listen = String((agentConfig(topo).api as { listen: string }).listen);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await run(process.execPath, [distFile('src/lab/probe.js'), 'http', '--method', 'GET', '--url', `http://${listen}/readyz`, '--timeout', '1000'],
      { netns, allowFailure: true, timeoutMs: 5000 });
    try {
      if ((JSON.parse(r.stdout) as { status: number }).status === 200) return;
    } catch {
      /* not answering yet */
    }
    await sleep(1000);
  }
  throw new Error(`the new agent in ${netns} was not ready within ${timeoutMs / 1000} s`);
}
