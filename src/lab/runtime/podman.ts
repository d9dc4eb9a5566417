// The thin adapter between the lab and podman: runs the commands podman-plan.ts derives,
// stops pods as the kubelet does (preStop hook, then SIGTERM, SIGKILL when the grace
// period is over) and finds everything a lab made by its label. podman's settings come
// from scripts/podman/containers.conf unless CONTAINERS_CONF says otherwise (docs/image.md).
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand, type CommandRunner, type RunResult } from '../../system/index.js';
import { repoRoot } from '../paths.js';
import { CGROUP_PARENT, LAB_LABEL } from './podman-plan.js';

/** What `down` needs to stop one pod the way the kubelet does; kept in the lab's state file. */
export interface LabPod {
  readonly pod: string;
  readonly graceSeconds: number;
  readonly containers: readonly { readonly name: string; readonly preStop?: readonly string[] }[];
  readonly volumes: readonly string[];
}

export interface LabPodmanObjects {
  readonly containers: string[];
  readonly pods: string[];
  readonly volumes: string[];
}

/** Points podman at the project's settings (runc, cgroupfs, rlimits root may set here). */
export function usePodmanSettings(): void {
  if (!process.env.CONTAINERS_CONF) {
    const conf = join(repoRoot(), 'scripts/podman/containers.conf');
    if (existsSync(conf)) process.env.CONTAINERS_CONF = conf;
  }
}

export class Podman {
  constructor(private readonly run: CommandRunner = runCommand) {
    usePodmanSettings();
  }

  cmd(args: readonly string[], opts: { allowFailure?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
    return this.run('podman', args, { timeoutMs: 120_000, ...opts });
  }

  /** podman is installed and answers. */
  async available(): Promise<boolean> {
    try {
      return (await this.cmd(['version', '--format', '{{.Client.Version}}'], { allowFailure: true, timeoutMs: 20_000 })).code === 0;
    } catch {
      return false;
    }
  }

  async imageExists(image: string): Promise<boolean> {
    return (await this.cmd(['image', 'exists', image], { allowFailure: true })).code === 0;
  }

  /** The container's main process, as the host sees it. */
  async pid(container: string): Promise<number> {
    const out = (await this.cmd(['inspect', '--format', '{{.State.Pid}}', container])).stdout.trim();
    const pid = Number(out);
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`podman: container ${container} is not running (pid "${out}")`);
    return pid;
  }

  async inspect(container: string): Promise<Record<string, unknown>> {
    const parsed = JSON.parse((await this.cmd(['inspect', '--type', 'container', container])).stdout) as Record<string, unknown>[];
    return parsed[0] ?? {};
  }

  /** Every container, pod and volume labelled with this lab's prefix. */
  async labObjects(prefix: string): Promise<LabPodmanObjects> {
    const filter = ['--filter', `label=${LAB_LABEL}=${prefix}`];
    const names = async (args: string[]): Promise<string[]> => {
      const r = await this.cmd([...args, ...filter], { allowFailure: true });
      return r.code === 0 ? r.stdout.split('\n').map((l) => l.trim()).filter(Boolean) : [];
    };
    const [containers, pods, volumes] = await Promise.all([
      names(['ps', '--all', '--format', '{{.Names}}']),
      names(['pod', 'ps', '--format', '{{.Name}}']),
      names(['volume', 'ls', '--format', '{{.Name}}']),
    ]);
    return { containers, pods, volumes };
  }

  /**
   * As the kubelet deletes a pod: every container at once runs its preStop hook (bounded by
   * the grace period), then gets SIGTERM, and SIGKILL when the grace period is over.
   */
  async stopPod(pod: LabPod, progress: (line: string) => void = () => undefined): Promise<void> {
    const deadline = Date.now() + pod.graceSeconds * 1000;
    await Promise.all(pod.containers.map(async (c) => {
      if (c.preStop?.length) {
        const r = await this.cmd(['exec', c.name, ...c.preStop], { allowFailure: true, timeoutMs: Math.max(1000, deadline - Date.now()) });
        if (r.code !== 0) progress(`${c.name}: preStop hook exited ${r.code} ${r.stderr.trim()}`);
      }
      const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      await this.cmd(['stop', '--time', String(left), c.name], { allowFailure: true, timeoutMs: (left + 30) * 1000 });
    }));
  }

  /** Starts an exited container again (the kubelet restarting a crashed container); its new PID. */
  async restart(container: string): Promise<number> {
    // podman notices the exit through conmon; wait for it before starting again.
    await this.cmd(['wait', '--condition', 'stopped', container], { allowFailure: true, timeoutMs: 30_000 });
    await this.cmd(['start', container]);
    return this.pid(container);
  }

  /** Removes the pod, its containers and its volumes (stopped or not). */
  async removePod(pod: string, volumes: readonly string[] = []): Promise<void> {
    await this.cmd(['pod', 'rm', '--force', '--ignore', pod], { allowFailure: true });
    if (volumes.length) await this.cmd(['volume', 'rm', '--force', ...volumes], { allowFailure: true });
  }

  /** Everything labelled with the prefix, forcibly: after graceful stops, or after a crash. */
  async removeLab(prefix: string): Promise<LabPodmanObjects> {
    const found = await this.labObjects(prefix);
    const ids = (await this.cmd(['ps', '--all', '--no-trunc', '--filter', `label=${LAB_LABEL}=${prefix}`, '--format', '{{.ID}}'], { allowFailure: true })).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    if (found.containers.length) await this.cmd(['rm', '--force', '--time', '0', ...found.containers], { allowFailure: true });
    removeLeftoverCgroups(ids);
    if (found.pods.length) await this.cmd(['pod', 'rm', '--force', ...found.pods], { allowFailure: true });
    if (found.volumes.length) await this.cmd(['volume', 'rm', '--force', ...found.volumes], { allowFailure: true });
    return found;
  }
}

/**
 * podman (cgroupfs) leaves a container's cgroup behind when the container died abnormally
 * or its `podman run` was killed (seen after an agent's crash and a timed-out run); the lab's
 * containers have theirs at the top level (CGROUP_PARENT), so `down` removes them: each
 * hierarchy's `libpod-<id>` of the lab's containers, only if empty (rmdir refuses otherwise).
 */
export function removeLeftoverCgroups(ids: readonly string[], root = '/sys/fs/cgroup'): string[] {
  if (!ids.length || !existsSync(root)) return [];
  const dirs = [root, ...readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(root, d.name))];
  const removed: string[] = [];
  for (const id of ids) {
    for (const d of dirs) {
      const cg = join(d, CGROUP_PARENT, `libpod-${id}`);
      if (!existsSync(cg)) continue;
      try {
        rmdirSync(cg);
        removed.push(cg);
      } catch {
        /* still in use, or not ours to remove */
      }
    }
  }
  return removed;
}
