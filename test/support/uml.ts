// Runs one command inside a User-mode Linux guest: a complete 6.1 kernel with the GRE,
// IPIP, FOU, VRF and MPLS support the host kernel lacks (../../../shared/KERNEL.md,
// docs/testing.md). The guest's root is the host's `/` through hostfs, read-only, so the
// guest runs the host's own node, ip and nft on the repo's compiled dist/ with nothing to
// build. Everything the guest may write lives in one scratch directory on the host, removed
// after the run, and the guest is always bounded by `timeout` plus a kill of its process
// group, so a stuck guest costs at most timeoutMs and leaves no process behind.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_GUEST_MODULES,
  GUEST_MODULE_FAILURE,
  GUEST_TIMEOUT,
  checkRun,
  commandScript,
  hiddenCheckoutTop,
  pidsWithWord,
  readIfExists,
  shq,
  tail,
  type CheckedRun,
  type GuestOptions,
  type GuestResult,
} from './guest-script.js';
import { runGuestProcess, type GuestRun } from './guest-process.js';

export type UmlResult = GuestResult;
export type UmlOptions = GuestOptions;

export const UML_BINARY = '/usr/bin/linux.uml';
export const UML_MODULE_ROOT = '/usr/lib/uml/modules';

/** Loaded in every guest (guest-script.ts). */
export const DEFAULT_UML_MODULES = DEFAULT_GUEST_MODULES;
/** Exit code reported when a requested module does not load (the command is not run). */
export const UML_MODULE_FAILURE = GUEST_MODULE_FAILURE;
/** Exit code reported when the guest is killed at timeoutMs, as `timeout` reports it. */
export const UML_TIMEOUT = GUEST_TIMEOUT;

const INIT_MARKER = 'kst-uml: init running';
/** Scratch directories and guest ids are `kst-uml-<pid>-<n>`: recognisable, and per test process. */
const SCRATCH_PREFIX = 'kst-uml-';
let runCounter = 0;

/** undefined when UML can run here; otherwise the reason (printed by tests that skip). */
export function umlUnavailableReason(): string | undefined {
  if (process.platform !== 'linux' || arch() !== 'x64') return `User-mode Linux needs Linux on x86-64 (this is ${process.platform}/${arch()})`;
  if (!existsSync(UML_BINARY)) return `${UML_BINARY} not found: install the Debian package user-mode-linux (scripts/install-deps.sh)`;
  for (const tool of ['/usr/bin/timeout', '/usr/sbin/modprobe']) {
    if (!existsSync(tool) && !existsSync(tool.replace('/usr', ''))) return `${tool} not found: install coreutils and kmod`;
  }
  const version = umlKernelVersion();
  if (!version) return `${UML_BINARY} --version gave no kernel version`;
  if (!existsSync(join(UML_MODULE_ROOT, version, 'modules.dep'))) return `${join(UML_MODULE_ROOT, version)} has no modules.dep: reinstall user-mode-linux`;
  return undefined;
}

let cachedVersion: string | undefined;
function umlKernelVersion(): string | undefined {
  if (cachedVersion) return cachedVersion;
  const r = spawnSync(UML_BINARY, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 10_000 });
  const v = r.status === 0 ? r.stdout.trim() : '';
  if (/^\d+\.\d+/.test(v)) cachedVersion = v;
  return cachedVersion;
}

/**
 * Runs argv (absolute program path or a name on PATH) as root inside a fresh UML guest
 * whose root is the host's / (read-only), cwd = the repo root, with /tmp (a host scratch
 * directory) and /run (tmpfs) writable, the listed kernel modules loaded plus
 * DEFAULT_UML_MODULES, and opts.env set. Returns the exit code and the combined
 * stdout+stderr of the command. Never hangs: the guest is killed after timeoutMs (default
 * 120 s; code 124). A module that fails to load gives code 125 without running the command.
 * Throws only when the guest itself fails (kernel did not boot, init died): the error
 * carries the tail of the guest console.
 */
export async function runInUml(
  argv: readonly string[],
  opts: UmlOptions = {},
): Promise<UmlResult> {
  const run = checkRun('runInUml', 'uml', argv, opts);
  const { timeoutMs, memMb } = run;
  const reason = umlUnavailableReason();
  if (reason) throw new Error(`runInUml: ${reason}`);

  runCounter += 1;
  const umid = `${SCRATCH_PREFIX}${process.pid}-${runCounter}`;
  const base = mkdtempSync(join(tmpdir(), `${umid}-`));
  try {
    const guestTmp = join(base, 'tmp'); // the guest's /tmp
    const result = join(base, 'result'); // the guest's /run/kst-uml: output and exit code
    const umlDir = join(base, 'umid'); // UML's own control sockets (otherwise ~/.uml)
    for (const d of [guestTmp, result, umlDir]) mkdirSync(d, { mode: 0o755 });
    const initPath = join(base, 'init.sh');
    writeFileSync(initPath, guestInit({ argv, run, guestTmp, result }), { mode: 0o755 });

    const boot = await bootGuest({ base, initPath, umlDir, umid, memMb, timeoutMs });
    const output = readIfExists(join(result, 'output'));
    const codeText = readIfExists(join(result, 'code')).trim();
    const timing = { bootMs: boot.bootMs, elapsedMs: boot.elapsedMs };
    if (boot.timedOut) {
      return { code: GUEST_TIMEOUT, timedOut: true, output: `${output}\n[runInUml] guest killed after ${timeoutMs} ms running ${argv.join(' ')}\n`, ...timing };
    }
    if (!/^\d+$/.test(codeText)) {
      throw new Error(`runInUml: the guest stopped without an exit code for ${argv.join(' ')} (linux.uml exit ${boot.exitCode}). Console tail:\n${tail(boot.console, 40)}`);
    }
    return { code: Number(codeText), output, ...timing };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

function bootGuest(p: { base: string; initPath: string; umlDir: string; umid: string; memMb: number; timeoutMs: number }): Promise<GuestRun> {
  const args = [
    `mem=${p.memMb}M`, 'root=/dev/root', 'rootfstype=hostfs', 'rootflags=/', 'ro',
    `init=${p.initPath}`, `uml_dir=${p.umlDir}`, `umid=${p.umid}`,
    // Console to our stdout only, never the terminal: a guest reading a tty would wait forever.
    'con=null', 'con0=null,fd:1', 'ssl=null',
  ];
  const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', TMPDIR: memoryFileDir(p.base, p.memMb) };
  // linux.uml makes its own session: its processes are found by their unique umid= word.
  return runGuestProcess({ who: 'runInUml', binary: UML_BINARY, args, env, timeoutMs: p.timeoutMs, initMarker: INIT_MARKER, leftoverPids: () => guestPids(p.umid) });
}

/**
 * UML backs guest memory with an unlinked file in $TMPDIR, else /dev/shm. A /dev/shm
 * smaller than the guest's memory (64 MiB in many containers) kills the guest with SIGBUS
 * once it touches more, so use /dev/shm only when it has room, else the scratch directory.
 */
function memoryFileDir(base: string, memMb: number): string {
  try {
    const s = statfsSync('/dev/shm');
    if (s.bavail * s.bsize >= 2 * memMb * 1024 * 1024) return '/dev/shm';
  } catch {
    // no /dev/shm
  }
  return base;
}

function guestInit(p: { argv: readonly string[]; run: CheckedRun; guestTmp: string; result: string }): string {
  // init is PID 1: if it exits the kernel panics, so every step is guarded and it always
  // ends in poweroff. Results go to a hostfs directory the host reads after the guest stops.
  const top = hiddenCheckoutTop(p.run.cwd);
  return `#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
echo '${INIT_MARKER}'
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /dev/shm 2>/dev/null
mkdir -p /run/kst-uml /run/lock
mount -t hostfs hostfs /run/kst-uml -o ${shq(p.result)}
mount -t hostfs hostfs /tmp -o ${shq(p.guestTmp)}
${top ? `mkdir -p ${shq(top)} && mount -r -t hostfs hostfs ${shq(top)} -o ${shq(top)}\n` : ''}done_() { echo "$1" > /run/kst-uml/code; sync; poweroff -f; sleep 5; }
# The host has no /lib/modules for this kernel: point modprobe at the UML module tree.
release=$(uname -r)
mkdir -p /run/modroot/lib/modules
ln -s ${shq(UML_MODULE_ROOT)}/"$release" /run/modroot/lib/modules/"$release"
${commandScript({ run: p.run, argv: p.argv, moduleBase: '/run/modroot', resultDir: '/run/kst-uml', who: 'runInUml' })}`;
}

/**
 * What this process's runs left behind: scratch directories and linux.uml/timeout
 * processes (found by the `umid=` word on their command line). Empty after every run.
 */
export function umlLeftovers(): { readonly dirs: string[]; readonly pids: number[] } {
  const mine = `${SCRATCH_PREFIX}${process.pid}-`;
  const dirs = readdirSync(tmpdir()).filter((n) => n.startsWith(mine));
  return { dirs, pids: guestPids(mine, true) };
}

/** Live processes (not zombies) whose command line has `umid=<umid>` (or a umid starting with it). */
function guestPids(umid: string, prefix = false): number[] {
  return pidsWithWord(`umid=${umid}`, prefix);
}
