// Long-running lab processes (API server, gobgpd, agents, echo servers) started inside a
// namespace and left running after `kst lab up` exits. Argument arrays only, like
// runCommand; runCommand itself waits for the program to end, which a daemon never does.
//
// Stopping is by PID only, and only after checking that the process still lives in one
// of the lab's namespaces (its /proc/PID/ns/net is the namespace's inode): a PID from a
// stale state file that the kernel has since reused is never signalled.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface DaemonSpec {
  readonly netns: string;
  readonly argv: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** stdout and stderr go here (appended). */
  readonly logFile: string;
}

/** Starts the program in the namespace, detached; returns its PID (`ip netns exec` execs it). */
export function startDaemon(spec: DaemonSpec): number {
  const fd = openSync(spec.logFile, 'a');
  try {
    const child = spawn('ip', ['netns', 'exec', spec.netns, ...spec.argv], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...(spec.env ?? {}) },
    });
    if (child.pid === undefined) throw new Error(`could not start ${spec.argv[0] ?? '?'} in ${spec.netns}`);
    child.on('error', () => undefined);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Running (a zombie waiting for its parent to reap it counts as gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // "PID (comm) S ...": comm may contain spaces and parentheses, the state follows the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function inode(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** The network namespace inode of each named namespace (absent ones are skipped). */
export function netnsInodes(names: readonly string[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const n of names) {
    const ino = inode(`/run/netns/${n}`);
    if (ino !== undefined) m.set(ino, n);
  }
  return m;
}

/** Which of `names` the process's network namespace is, if any. */
export function netnsOfPid(pid: number, inodes: Map<number, string>): string | undefined {
  const ino = inode(`/proc/${pid}/ns/net`);
  return ino === undefined ? undefined : inodes.get(ino);
}

/** Every process whose network namespace is one of `names` (what `ip netns pids` does). */
export function pidsInNamespaces(names: readonly string[]): Array<{ pid: number; netns: string }> {
  const inodes = netnsInodes(names);
  if (inodes.size === 0) return [];
  const found: Array<{ pid: number; netns: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const ns = netnsOfPid(pid, inodes);
    if (ns) found.push({ pid, netns: ns });
  }
  return found;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when all are gone. */
export async function stopPids(pids: readonly number[], graceMs = 3000): Promise<void> {
  const live = pids.filter(alive);
  for (const pid of live) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (live.some(alive) && Date.now() < deadline) await sleep(50);
  for (const pid of live.filter(alive)) signal(pid, 'SIGKILL');
  const killDeadline = Date.now() + 2000;
  while (live.some(alive) && Date.now() < killDeadline) await sleep(20);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}
