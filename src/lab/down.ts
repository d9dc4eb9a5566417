// `kst lab down`: stops every process living in one of the lab's namespaces and deletes
// the namespaces (their links, bridge and routes go with them), then the state directory.
// Works from the state file and, after a crash, from the namespaces alone: everything
// named with the lab's prefix is the lab's, and nothing else is ever touched.
import { rmSync } from 'node:fs';
import { runCommand, type CommandRunner } from '../system/index.js';
import { alive, netnsInodes, netnsOfPid, pidsInNamespaces, stopPids } from './daemon.js';
import { stopContainerLab } from './runtime/container-lab.js';
import { labPaths, readState, runningTopology } from './state.js';
import { validatePrefix } from './topology.js';

export interface DownReport {
  readonly namespaces: string[];
  readonly processes: number;
}

/** Named namespaces that exist now (`ip netns list` prints "NAME (id: N)"). */
export async function existingNamespaces(run: CommandRunner = runCommand): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { allowFailure: true });
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean);
}

export async function labNamespaces(prefix: string, run: CommandRunner = runCommand): Promise<string[]> {
  validatePrefix(prefix);
  return (await existingNamespaces(run)).filter((n) => n.startsWith(prefix));
}

export async function labDown(prefix: string, progress: (line: string) => void = () => undefined, run: CommandRunner = runCommand): Promise<DownReport> {
  const paths = labPaths(prefix);
  const topo = runningTopology(prefix, paths);
  const state = readState(paths);
  // Containers first, stopped as the kubelet stops them; then any process left in the lab's namespaces.
  const removedObjects = await stopContainerLab(prefix, state?.pods ?? [], progress, run);
  const names = [...new Set([...(await labNamespaces(prefix, run)), ...topo.hosts.map((h) => h.netns)])];
  const inodes = netnsInodes(names);
  // State PIDs only while they still live in a lab namespace (a reused PID is someone else).
  const fromState = (state?.processes ?? []).map((p) => p.pid).filter((pid) => alive(pid) && netnsOfPid(pid, inodes) !== undefined);
  const pids = [...new Set([...fromState, ...pidsInNamespaces(names).map((p) => p.pid)])];
  if (pids.length) progress(`stopping ${pids.length} lab process(es)`);
  await stopPids(pids);
  const existing = new Set(await existingNamespaces(run));
  const removed: string[] = [];
  for (const ns of names) {
    if (!existing.has(ns)) continue;
    await run('ip', ['netns', 'del', ns], { allowFailure: true });
    removed.push(ns);
  }
  if (removed.length) progress(`removed ${removed.length} namespace(s): ${removed.join(' ')}`);
  rmSync(paths.dir, { recursive: true, force: true });
  return { namespaces: removed, processes: pids.length + removedObjects };
}
