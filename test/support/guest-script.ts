// What every full-kernel test guest shares, whichever kernel runs it (uml.ts, qemu.ts): the
// result contract, input checks, and the guest-side shell that loads modules and runs the
// command. Each backend adds only how its guest boots and mounts the host's root.
import { readFileSync, readdirSync } from 'node:fs';

export type GuestBackend = 'uml' | 'qemu';

export interface GuestResult {
  readonly code: number;
  readonly output: string;
  /** True when the guest was killed at timeoutMs (code is then 124, as `timeout` reports). */
  readonly timedOut?: boolean;
  /** From starting the guest to its init running (kernel boot). */
  readonly bootMs?: number;
  /** From starting the guest to its exit, everything included. */
  readonly elapsedMs?: number;
}

export interface GuestOptions {
  /** Kernel modules to load besides DEFAULT_GUEST_MODULES. */
  readonly modules?: readonly string[];
  /** Environment of the command, on top of PATH, HOME=/tmp, TMPDIR=/tmp, KST_IN_GUEST=1 and KST_GUEST=<backend>. */
  readonly env?: Readonly<Record<string, string>>;
  /** Guest killed after this long (rounded up to whole seconds); default 120 s. */
  readonly timeoutMs?: number;
  /** Guest memory; default 1024 MiB. */
  readonly memMb?: number;
  /** Working directory of the command (read-only in the guest); default process.cwd(), the repo root under npm/jest. */
  readonly cwd?: string;
}

/**
 * Loaded in every guest. Beware: Debian's 6.1 UML kernel has nf_tables without the ip, ip6,
 * inet and netdev families (CONFIG_NF_TABLES_INET etc. are off), so `nft` rulesets on IP
 * hooks fail there with "Operation not supported" (Debian's full kernel in QEMU has them).
 * Scenarios meant for both hash flows with `iptables-legacy -t mangle ... -j HMARK`.
 */
export const DEFAULT_GUEST_MODULES: readonly string[] = [
  'veth', 'ip_gre', 'gre', 'ipip', 'ip_tunnel', 'fou', 'mpls_router', 'mpls_iptunnel', 'vrf', 'vxlan',
  'nf_tables', 'nft_ct', 'nft_hash', 'nft_numgen',
  'ip_tables', 'iptable_mangle', 'iptable_filter', 'ip6_tables', 'ip6table_mangle', 'ip6table_filter',
  'xt_mark', 'xt_HMARK', 'xt_connmark', 'xt_conntrack',
];

/** Exit code reported when a requested module does not load (the command is not run). */
export const GUEST_MODULE_FAILURE = 125;
/** Exit code reported when the guest is killed at timeoutMs, as `timeout` reports it. */
export const GUEST_TIMEOUT = 124;

export interface CheckedRun {
  readonly timeoutMs: number;
  readonly memMb: number;
  readonly modules: readonly string[];
  readonly env: Record<string, string>;
  readonly cwd: string;
}

/** Validates a run before anything boots: bad input is a clear error naming the caller. */
export function checkRun(who: string, backend: GuestBackend, argv: readonly string[], opts: GuestOptions): CheckedRun {
  if (argv.length === 0 || !argv[0]) throw new Error(`${who}: argv is empty`);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const memMb = opts.memMb ?? 1024;
  if (!Number.isInteger(memMb) || memMb < 128) throw new Error(`${who}: memMb must be an integer >= 128, got ${memMb}`);
  if (!(timeoutMs > 0)) throw new Error(`${who}: timeoutMs must be positive, got ${timeoutMs}`);
  const modules = [...new Set([...DEFAULT_GUEST_MODULES, ...(opts.modules ?? [])])];
  for (const m of modules) if (!/^[A-Za-z0-9_-]+$/.test(m)) throw new Error(`${who}: bad module name ${JSON.stringify(m)}`);
  const env: Record<string, string> = {
    PATH: `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: '/tmp',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    KST_IN_GUEST: '1',
    KST_GUEST: backend,
    // Scenarios written for UML before there was a QEMU guest test this one.
    ...(backend === 'uml' ? { KST_IN_UML: '1' } : {}),
    ...opts.env,
  };
  for (const key of Object.keys(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`${who}: bad environment variable name ${JSON.stringify(key)}`);
  }
  return { timeoutMs, memMb, modules, env, cwd: opts.cwd ?? process.cwd() };
}

/** Single-quotes a word for the guest's /bin/sh: the only shell in the harness, and it sees no untrusted input unquoted. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The guest-side end of a run, as /bin/sh text: load the modules with the host's modprobe
 * from `moduleBase` (modprobe -d: <moduleBase>/lib/modules/$(uname -r)), bring lo up, cd and
 * run argv under `env -i`, its combined output in <resultDir>/output and its exit code in
 * <resultDir>/code. Expects a shell function `done_ CODE` that records the code and stops
 * the guest.
 */
export function commandScript(p: { run: CheckedRun; argv: readonly string[]; moduleBase: string; resultDir: string; who: string }): string {
  const out = shq(`${p.resultDir}/output`);
  return `if ! modprobe -d ${shq(p.moduleBase)} -a ${p.run.modules.map(shq).join(' ')} > ${out} 2>&1; then
  echo "${p.who}: modprobe failed for one of: ${p.run.modules.join(' ')}" >> ${out}
  done_ ${GUEST_MODULE_FAILURE}
fi
ip link set lo up
cd ${shq(p.run.cwd)} || done_ 126
# env -i: the command sees only its own environment, not the kernel's leftover boot words.
env -i ${Object.entries(p.run.env).map(([k, v]) => shq(`${k}=${v}`)).join(' ')} ${p.argv.map(shq).join(' ')} > ${out} 2>&1 < /dev/null
done_ $?
`;
}

/**
 * A guest mounts its own /tmp, /run and /dev/shm over the host's. A checkout that lives
 * under one of them (CI may clone into /tmp) would vanish: this is its top directory, which
 * the backend mounts back read-only from the host; undefined when nothing needs it.
 */
export function hiddenCheckoutTop(cwd: string): string | undefined {
  const m = /^\/(tmp|run|dev\/shm)\/([^/]+)/.exec(cwd);
  return m ? `/${m[1]}/${m[2]}` : undefined;
}

export function readIfExists(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** Live processes (not zombies) with `word` (or, with prefix, a word starting with it) on their command line. */
export function pidsWithWord(word: string, prefix = false): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const words = readIfExists(`/proc/${entry}/cmdline`).split('\0');
    const match = words.some((w) => (prefix ? w.startsWith(word) : w === word));
    if (match && !/^\S+ \(.*\) Z/.test(readIfExists(`/proc/${entry}/stat`))) pids.push(Number(entry));
  }
  return pids;
}
