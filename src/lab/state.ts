// Where a running lab keeps its files (/run/kst-lab/<prefix>/: state, logs, FRR's
// sockets, the seed, the agents' config) and the state file that lets `down` and
// `status` find what `up` started, also from another process or after a crash.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabPod } from './runtime/podman.js';
import { buildLabTopology } from './racks-topology.js';
import type { LabTopology, TopologyKind } from './topology.js';

export const STATE_ROOT = '/run/kst-lab';

export interface LabProcess {
  /** What it is: "apiserver", "frr-zebra", "gobgpd", "agent", "echo". */
  readonly kind: string;
  /** The lab host (router, tunnel-1, worker-1-a...). */
  readonly host: string;
  readonly netns: string;
  readonly pid: number;
  readonly logFile?: string;
  /** How it was started, so a drill can restart it as the kubelet would. */
  readonly argv?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** The podman container it is the main process of (`--runtime podman`). */
  readonly container?: string;
}

export interface LabState {
  readonly prefix: string;
  readonly startedAt: string;
  readonly frrDir: string;
  readonly processes: readonly LabProcess[];
  /** Whether `kst agent` runs on every node; the reason when it does not. */
  readonly agents: { readonly running: boolean; readonly note: string };
  /** True once every step of `up` has finished. */
  readonly complete: boolean;
  /** Who runs the agents and pods: host processes (default) or podman (docs/lab.md). */
  readonly runtime?: 'process' | 'podman';
  /** The pods podman runs, with what stopping each as the kubelet does needs. */
  readonly pods?: readonly LabPod[];
  /** Which topology `up` built (`--topology`); absent: the default one. */
  readonly topology?: TopologyKind;
}

export interface LabPaths {
  readonly dir: string;
  readonly stateFile: string;
  readonly logDir: string;
  readonly frrDir: string;
  readonly seedDir: string;
  readonly agentConfig: string;
  readonly kubeconfig: string;
}

export function labPaths(prefix: string, root = process.env.KST_LAB_STATE_ROOT ?? STATE_ROOT): LabPaths {
  const dir = join(root, prefix.replace(/-+$/, ''));
  return {
    dir,
    stateFile: join(dir, 'state.json'),
    logDir: join(dir, 'logs'),
    frrDir: join(dir, 'frr'),
    seedDir: join(dir, 'seed'),
    agentConfig: join(dir, 'agent-config.yaml'),
    kubeconfig: join(dir, 'kubeconfig'),
  };
}

export function readState(paths: LabPaths): LabState | undefined {
  if (!existsSync(paths.stateFile)) return undefined;
  try {
    return JSON.parse(readFileSync(paths.stateFile, 'utf8')) as LabState;
  } catch {
    return undefined; // a torn write after a crash: `down` falls back to the namespaces
  }
}

/** Atomic: a crash leaves the old or the new state, never half of one. */
export function writeState(paths: LabPaths, state: LabState): void {
  mkdirSync(paths.dir, { recursive: true });
  const tmp = `${paths.stateFile}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, paths.stateFile);
}

/** Where a racks lab's ToR router keeps its files (FRR's vty sockets, BIRD's control socket and log). */
export function torDir(paths: LabPaths, tor: string, impl: 'frr' | 'bird'): string {
  return join(paths.dir, `${impl}-${tor}`);
}

/** The topology of the lab running under this prefix (the default one when there is none). */
export function runningTopology(prefix: string, paths: LabPaths = labPaths(prefix)): LabTopology {
  return buildLabTopology(prefix, readState(paths)?.topology ?? 'default');
}
