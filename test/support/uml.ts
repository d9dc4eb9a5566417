// Runs one command inside a User-mode Linux guest: a complete 6.1 kernel with the GRE,
// IPIP, FOU, VRF and MPLS support the host kernel lacks (../../../shared/KERNEL.md,
// docs/testing.md). The guest's root is the host's `/` through hostfs, read-only, so the
// guest runs the host's own node, ip and nft on the repo's compiled dist/ with nothing to
// build. Everything the guest may write lives in one scratch directory on the host, removed
// after the run, and the guest is always bounded by `timeout` plus a kill of its process
// group, so a stuck guest costs at most timeoutMs and leaves no process behind.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface UmlResult {
  readonly code: number;
  readonly output: string;
  /** True when the guest was killed at timeoutMs (code is then 124, as `timeout` reports). */
  readonly timedOut?: boolean;
  /** From starting linux.uml to the guest's init running (kernel boot). */
  readonly bootMs?: number;
  /** From starting linux.uml to its exit, everything included. */
  readonly elapsedMs?: number;
}

export interface UmlOptions {
  /** Kernel modules to load besides DEFAULT_UML_MODULES. */
  readonly modules?: readonly string[];
  /** Environment of the command, on top of PATH, HOME=/tmp, TMPDIR=/tmp and KST_IN_UML=1. */
  readonly env?: Readonly<Record<string, string>>;
  /** Guest killed after this long (rounded up to whole seconds); default 120 s. */
  readonly timeoutMs?: number;
  /** Guest memory; default 1024 MiB (a sparse file: only what the guest touches is used). */
  readonly memMb?: number;
  /** Working directory of the command (read-only in the guest); default process.cwd(), the repo root under npm/jest. */
  readonly cwd?: string;
}

export const UML_BINARY = '/usr/bin/linux.uml';
export const UML_MODULE_ROOT = '/usr/lib/uml/modules';

/**
 * Loaded in every guest. Beware: Debian's 6.1 UML kernel has nf_tables without the ip, ip6,
 * inet and netdev families (CONFIG_NF_TABLES_INET etc. are off), so `nft` rulesets on IP
 * hooks fail with "Operation not supported". Flow hashing in a guest uses xtables instead:
 * `iptables-legacy -t mangle ... -j HMARK` (the iptables-nft default needs nf_tables too).
 */
export const DEFAULT_UML_MODULES: readonly string[] = [
  'veth', 'ip_gre', 'gre', 'ipip', 'ip_tunnel', 'fou', 'mpls_router', 'mpls_iptunnel', 'vrf', 'vxlan',
  'nf_tables', 'nft_ct', 'nft_hash', 'nft_numgen',
  'ip_tables', 'iptable_mangle', 'iptable_filter', 'ip6_tables', 'ip6table_mangle', 'ip6table_filter',
  'xt_mark', 'xt_HMARK', 'xt_connmark', 'xt_conntrack',
];

/** Exit code reported when a requested module does not load (the command is not run). */
export const UML_MODULE_FAILURE = 125;
/** Exit code reported when the guest is killed at timeoutMs, as `timeout` reports it. */
export const UML_TIMEOUT = 124;

const INIT_MARKER = 'kst-uml: init running';
/** Scratch directories and guest ids are `kst-uml-<pid>-<n>`: recognisable, and per test process. */
const SCRATCH_PREFIX = 'kst-uml-';
let runCounter = 0;
const KILL_GRACE_MS = 3000;

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
  if (argv.length === 0 || !argv[0]) throw new Error('runInUml: argv is empty');
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const memMb = opts.memMb ?? 1024;
  if (!Number.isInteger(memMb) || memMb < 128) throw new Error(`runInUml: memMb must be an integer >= 128, got ${memMb}`);
  if (!(timeoutMs > 0)) throw new Error(`runInUml: timeoutMs must be positive, got ${timeoutMs}`);
  const modules = [...new Set([...DEFAULT_UML_MODULES, ...(opts.modules ?? [])])];
  for (const m of modules) if (!/^[A-Za-z0-9_-]+$/.test(m)) throw new Error(`runInUml: bad module name ${JSON.stringify(m)}`);
  const env = guestEnv(opts.env);
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
    writeFileSync(initPath, guestInit({ argv, env, cwd: opts.cwd ?? process.cwd(), modules, guestTmp, result }), { mode: 0o755 });

    const run = await bootGuest({ base, initPath, umlDir, umid, memMb, timeoutMs });
    const output = readIfExists(join(result, 'output'));
    const codeText = readIfExists(join(result, 'code')).trim();
    const timing = { bootMs: run.bootMs, elapsedMs: run.elapsedMs };
    if (run.timedOut) {
      return { code: UML_TIMEOUT, timedOut: true, output: `${output}\n[runInUml] guest killed after ${timeoutMs} ms running ${argv.join(' ')}\n`, ...timing };
    }
    if (!/^\d+$/.test(codeText)) {
      throw new Error(`runInUml: the guest stopped without an exit code for ${argv.join(' ')} (linux.uml exit ${run.exitCode}). Console tail:\n${tail(run.console, 40)}`);
    }
    return { code: Number(codeText), output, ...timing };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

interface GuestRun {
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly console: string;
  readonly bootMs?: number;
  readonly elapsedMs: number;
}

function bootGuest(p: { base: string; initPath: string; umlDir: string; umid: string; memMb: number; timeoutMs: number }): Promise<GuestRun> {
  const seconds = Math.max(1, Math.ceil(p.timeoutMs / 1000)); // `timeout` counts whole seconds
  const argv = [
    // TERM first: UML's handler reaps its helper processes and its uml_dir; KILL if it hangs.
    '-s', 'TERM', '-k', String(Math.ceil(KILL_GRACE_MS / 1000)), String(seconds), UML_BINARY,
    `mem=${p.memMb}M`, 'root=/dev/root', 'rootfstype=hostfs', 'rootflags=/', 'ro',
    `init=${p.initPath}`, `uml_dir=${p.umlDir}`, `umid=${p.umid}`,
    // Console to our stdout only, never the terminal: a guest reading a tty would wait forever.
    'con=null', 'con0=null,fd:1', 'ssl=null',
  ];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Detached: a Ctrl-C or SIGTERM meant for jest does not reach the guest half-way; the
    // guest still ends at its deadline, through `timeout`, even if this process is gone.
    const child = spawn('timeout', argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', TMPDIR: memoryFileDir(p.base, p.memMb) },
    });
    let consoleText = '';
    let bootMs: number | undefined;
    const onData = (d: string): void => {
      consoleText = (consoleText + d).slice(-64_000);
      if (bootMs === undefined && consoleText.includes(INIT_MARKER)) bootMs = Date.now() - started;
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    // linux.uml makes its own session, so `timeout`'s group is not the guest's: the guest's
    // processes are found by their unique umid= word and killed by PID.
    const killGuest = (): void => {
      const running = child.pid !== undefined && child.exitCode === null && child.signalCode === null;
      for (const pid of [...(running && child.pid !== undefined ? [child.pid] : []), ...guestPids(p.umid)]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    };
    const backstop = setTimeout(killGuest, seconds * 1000 + 2 * KILL_GRACE_MS);
    child.on('error', (err) => {
      clearTimeout(backstop);
      reject(new Error(`runInUml: cannot start ${UML_BINARY} through timeout: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(backstop);
      killGuest(); // helpers orphaned by a crashed or killed kernel, if any
      const elapsedMs = Date.now() - started;
      // 124: `timeout` stopped it with TERM; 137 or a signal: with KILL. Only at the deadline,
      // so a guest killed by something else is reported as a failed guest, not a timeout.
      const timedOut = elapsedMs >= seconds * 1000 - 100 && (code === 124 || code === 137 || signal !== null);
      resolve({ exitCode: code, timedOut, console: consoleText, bootMs, elapsedMs });
    });
  });
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

function guestEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: '/tmp',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    KST_IN_UML: '1',
    ...extra,
  };
  for (const key of Object.keys(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`runInUml: bad environment variable name ${JSON.stringify(key)}`);
  }
  return env;
}

/** Single-quotes a word for the guest's /bin/sh: the only shell in the harness, and it sees no untrusted input unquoted. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function guestInit(p: {
  argv: readonly string[];
  env: Record<string, string>;
  cwd: string;
  modules: readonly string[];
  guestTmp: string;
  result: string;
}): string {
  // init is PID 1: if it exits the kernel panics, so every step is guarded and it always
  // ends in poweroff. Results go to a hostfs directory the host reads after the guest stops.
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
${reexpose(p.cwd)}done_() { echo "$1" > /run/kst-uml/code; sync; poweroff -f; sleep 5; }
# The host has no /lib/modules for this kernel: point modprobe at the UML module tree.
release=$(uname -r)
mkdir -p /run/modroot/lib/modules
ln -s ${shq(UML_MODULE_ROOT)}/"$release" /run/modroot/lib/modules/"$release"
if ! modprobe -d /run/modroot -a ${p.modules.map(shq).join(' ')} > /run/kst-uml/output 2>&1; then
  echo "runInUml: modprobe failed for one of: ${p.modules.join(' ')}" >> /run/kst-uml/output
  done_ ${UML_MODULE_FAILURE}
fi
ip link set lo up
cd ${shq(p.cwd)} || done_ 126
# env -i: the command sees only its own environment, not the kernel's leftover boot words.
env -i ${Object.entries(p.env).map(([k, v]) => shq(`${k}=${v}`)).join(' ')} ${p.argv.map(shq).join(' ')} > /run/kst-uml/output 2>&1 < /dev/null
done_ $?
`;
}

/**
 * The guest mounts its own /tmp, /run and /dev/shm over the host's. A checkout that lives
 * under one of them (CI may clone into /tmp) would vanish: mount its top directory back,
 * read-only, from the host.
 */
function reexpose(cwd: string): string {
  const m = /^\/(tmp|run|dev\/shm)\/([^/]+)/.exec(cwd);
  if (!m) return '';
  const top = `/${m[1]}/${m[2]}`;
  return `mkdir -p ${shq(top)} && mount -r -t hostfs hostfs ${shq(top)} -o ${shq(top)}\n`;
}

function readIfExists(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
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
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const words = readIfExists(`/proc/${entry}/cmdline`).split('\0');
    const match = words.some((w) => (prefix ? w.startsWith(`umid=${umid}`) : w === `umid=${umid}`));
    if (match && !/^\S+ \(.*\) Z/.test(readIfExists(`/proc/${entry}/stat`))) pids.push(Number(entry));
  }
  return pids;
}
