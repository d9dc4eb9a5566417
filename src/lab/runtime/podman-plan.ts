// podman commands for the lab's pods, derived from the DaemonSet's pod template (pod-template.ts)
// as the kubelet would run it on one node. Pure: every command is an argument array
// (never a shell line); `podman.ts` runs them, a test compares them and the running
// containers with the manifest.
//
// podman 4.3's pods cannot join a named network namespace ("pods presently do not support
// network mode path"), so a node's pod has no infra container and every container joins the
// node's namespace itself (hostNetwork) and the host's PID namespace (hostPID): what a
// kubelet does for a hostNetwork, hostPID pod, minus the shared IPC namespace nothing here uses.
//
// Every container gets its own top-level cgroup (CGROUP_PARENT). podman's default parent,
// /libpod_parent, is one cgroup that the kernel's CPU scheduler weighs like one host process:
// on a machine shared with other busy processes (this one runs 25+ runnable tasks) all the
// lab's containers then share one process's CPU share, and when the echo pods got busy (200
// flows opening) the agents in the same group missed their 100 ms BFD transmits for up to
// 1.2 s, the router declared both tunnel nodes down at once and every flow stalled
// (docs/lab.md, "Container mode"). A kubelet gives every pod its own cgroup; in its own
// top-level cgroup each container is scheduled like the host process of the default mode.
import { memoryBytes, resolveEnv, type PodIdentity, type PodTemplate, type TemplateContainer } from './pod-template.js';

/** Every podman object of a lab carries this label, its value the lab's prefix: `down` finds them by it. */
export const LAB_LABEL = 'io.github.cmd-nu.kst-lab';
/** In an echo pod's environment: the lab agents only look at pod namespaces of their own lab. */
export const LAB_POD_ENV = 'KST_LAB_POD';
/** The parent of each container's cgroup: the top level, not podman's shared /libpod_parent (above). */
export const CGROUP_PARENT = '/';

export interface NodePodContext {
  readonly prefix: string;
  /** The node's named network namespace (hostNetwork). */
  readonly netns: string;
  readonly identity: PodIdentity;
  /** Host directory holding each ConfigMap volume's files, by volume name. */
  readonly configMapDirs: Readonly<Record<string, string>>;
  /** Extra environment the lab adds (KUBECONFIG: the lab's API server speaks plain HTTP). */
  readonly extraEnv: Readonly<Record<string, string>>;
  /** Host files mounted read-only besides the template's volumes: host path -> container path. */
  readonly extraMounts: Readonly<Record<string, string>>;
  /** Where each container's log goes: container name -> host file. */
  readonly logFile: (container: string) => string;
  /** Replaces the template's image (a rolling update to a new tag). */
  readonly image?: string;
}

export interface ContainerPlan {
  readonly name: string;
  readonly template: TemplateContainer;
  readonly run: readonly string[];
}

export interface NodePodPlan {
  readonly pod: string;
  readonly createPod: readonly string[];
  /** `podman volume create`, one per emptyDir (shared by the pod's containers, removed with the pod). */
  readonly createVolumes: readonly (readonly string[])[];
  readonly volumeNames: readonly string[];
  readonly containers: readonly ContainerPlan[];
  readonly graceSeconds: number;
}

export const podName = (prefix: string, host: string): string => `${prefix}${host}`;
export const containerName = (prefix: string, host: string, container: string): string => `${prefix}${host}-${container}`;
const volumeName = (prefix: string, host: string, volume: string): string => `${prefix}${host}-${volume}`;

export function nodePodPlan(t: PodTemplate, node: string, ctx: NodePodContext): NodePodPlan {
  const pod = podName(ctx.prefix, node);
  const label = ['--label', `${LAB_LABEL}=${ctx.prefix}`];
  if (!t.hostNetwork) throw new Error('deploy/base: the lab runs the DaemonSet with hostNetwork only (the node namespace)');
  const volumeNames: string[] = [];
  const createVolumes: string[][] = [];
  for (const v of t.volumes.filter((x) => x.kind === 'emptyDir')) {
    const name = volumeName(ctx.prefix, node, v.name);
    volumeNames.push(name);
    createVolumes.push(['volume', 'create', ...label, name]);
  }
  const containers = t.containers.map((c): ContainerPlan => {
    const name = containerName(ctx.prefix, node, c.name);
    const env = { ...resolveEnv(c.env, ctx.identity), ...ctx.extraEnv };
    const run = [
      'run', '--detach', '--name', name, '--pod', pod, ...label,
      '--network', `ns:/run/netns/${ctx.netns}`,
      '--cgroup-parent', CGROUP_PARENT,
      ...(t.hostPID ? ['--pid', 'host'] : []),
      // The kubelet's own: no podman-added tmpfs on /run, /tmp, /var/tmp.
      ...(c.readOnlyRootFilesystem ? ['--read-only', '--read-only-tmpfs=false'] : []),
      ...(c.privileged ? ['--privileged'] : []),
      ...c.capDrop.flatMap((cap) => ['--cap-drop', cap.toLowerCase() === 'all' ? 'all' : cap]),
      ...c.capAdd.flatMap((cap) => ['--cap-add', cap]),
      ...(c.memoryLimit ? ['--memory', String(memoryBytes(c.memoryLimit))] : []),
      ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      ...c.mounts.flatMap((m) => ['--volume', mountSpec(t, m, node, ctx)]),
      ...Object.entries(ctx.extraMounts).flatMap(([hostPath, inside]) => ['--volume', `${hostPath}:${inside}:ro`]),
      // The kubelet stops containers itself (preStop, then SIGTERM, SIGKILL after the grace period).
      '--stop-timeout', String(t.terminationGracePeriodSeconds),
      '--log-driver', 'k8s-file', '--log-opt', `path=${ctx.logFile(c.name)}`,
      // command replaces the image's ENTRYPOINT, args its CMD (Kubernetes semantics).
      ...(c.command ? ['--entrypoint', JSON.stringify(c.command)] : []),
      ctx.image ?? c.image,
      ...c.args,
    ];
    return { name, template: c, run };
  });
  return {
    pod,
    createPod: ['pod', 'create', '--name', pod, ...label, '--infra=false'],
    createVolumes,
    volumeNames,
    containers,
    graceSeconds: t.terminationGracePeriodSeconds,
  };
}

function mountSpec(t: PodTemplate, m: { volume: string; mountPath: string; readOnly: boolean; propagation?: string }, node: string, ctx: NodePodContext): string {
  const v = t.volumes.find((x) => x.name === m.volume);
  if (!v) throw new Error(`deploy/base: volumeMount ${m.volume} names no volume`);
  const opts = [m.readOnly ? 'ro' : 'rw'];
  // HostToContainer is rslave: mounts made later on the host (new /run/netns entries) appear inside.
  if (m.propagation === 'HostToContainer') opts.push('rslave');
  else if (m.propagation === 'Bidirectional') opts.push('rshared');
  switch (v.kind) {
    case 'configMap': {
      const dir = ctx.configMapDirs[v.name];
      if (!dir) throw new Error(`lab: no files for the ConfigMap volume ${v.name}`);
      return `${dir}:${m.mountPath}:${opts.join(',')}`;
    }
    case 'hostPath':
      return `${v.path}:${m.mountPath}:${opts.join(',')}`;
    case 'emptyDir':
      return `${volumeName(ctx.prefix, node, v.name)}:${m.mountPath}:${opts.join(',')}`;
  }
}

/** An echo pod: a container whose network namespace the runtime makes (`--network none`), wired afterwards like a CNI plugin would. */
export function echoPodPlan(prefix: string, pod: string, image: string, echoPort: number, logFile: string): { pod: string; container: string; createPod: readonly string[]; run: readonly string[] } {
  const name = podName(prefix, pod);
  const container = containerName(prefix, pod, 'echo');
  const label = ['--label', `${LAB_LABEL}=${prefix}`];
  return {
    pod: name,
    container,
    createPod: ['pod', 'create', '--name', name, ...label, '--infra=false'],
    run: [
      'run', '--detach', '--name', container, '--pod', name, ...label,
      '--network', 'none', '--cgroup-parent', CGROUP_PARENT, '--read-only', '--read-only-tmpfs=false', '--cap-drop', 'all',
      '--env', `${LAB_POD_ENV}=${prefix}`,
      '--stop-timeout', '5',
      '--log-driver', 'k8s-file', '--log-opt', `path=${logFile}`,
      '--entrypoint', JSON.stringify(['node', '/opt/kube-service-tunnel/dist/src/lab/echo-server.js']),
      image, '--name', pod, '--port', String(echoPort),
    ],
  };
}
