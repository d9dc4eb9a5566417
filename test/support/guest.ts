// One way for tests to run a command under a full Linux kernel, whichever this machine can
// boot: User-mode Linux (uml.ts: fast, but it cannot boot on some host builds: "ptrace set
// fp regs failed") or a QEMU guest with Debian's kernel (qemu.ts: slower, runs anywhere).
// The backend is chosen by probing, not guessing: boot UML once with a trivial command; if
// that fails, QEMU likewise; if neither starts, suites skip with the reasons printed.
// KST_GUEST=uml|qemu forces one (no probe); KST_GUEST=auto (the default) probes. The choice
// is made once per `jest` run: the first test process to need it probes and writes it to
// the run's directory (jest-global-setup.mjs), the others read it.
import { closeSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GUEST_MODULE_FAILURE, GUEST_TIMEOUT, readIfExists, type GuestBackend, type GuestOptions, type GuestResult } from './guest-script.js';
import { recordKernelSuite } from './kernel-report.js';
import { qemuLeftovers, qemuUnavailableReason, runInQemu } from './qemu.js';
import { runInUml, umlLeftovers, umlUnavailableReason } from './uml.js';

export { GUEST_MODULE_FAILURE, GUEST_TIMEOUT, type GuestBackend, type GuestOptions, type GuestResult };

export type GuestChoice =
  | { readonly backend: GuestBackend; readonly how: string }
  | { readonly backend?: undefined; readonly reason: string };

const PROBE_MARKER = 'kst-guest-probe: ok';
/** A loaded 2-core machine has been seen to take 25 s to boot the QEMU guest. */
const PROBE_TIMEOUT_MS = { uml: 60_000, qemu: 120_000 } as const;

let choice: Promise<GuestChoice> | undefined;

/** The backend this process uses (probed once, see the top of this file). */
export function chooseGuest(): Promise<GuestChoice> {
  choice ??= choose();
  return choice;
}

/** undefined when runInGuest can run here; otherwise why not (tests print it and skip). */
export async function guestUnavailableReason(): Promise<string | undefined> {
  const c = await chooseGuest();
  return c.backend ? undefined : c.reason;
}

/**
 * Runs argv in a fresh guest of the chosen backend; the contract of runInUml and runInQemu
 * (guest-script.ts): code and output of the command, 124 at timeoutMs, 125 when a module
 * does not load, never hangs, nothing left behind. `backend` says which kernel ran it.
 */
export async function runInGuest(argv: readonly string[], opts: GuestOptions = {}): Promise<GuestResult & { readonly backend: GuestBackend }> {
  const c = await chooseGuest();
  if (!c.backend) throw new Error(`runInGuest: no full-kernel guest can run here: ${c.reason}`);
  const r = c.backend === 'uml' ? await runInUml(argv, opts) : await runInQemu(argv, opts);
  return { ...r, backend: c.backend };
}

/** What this process's runs left behind, either backend. Empty after every run. */
export function guestLeftovers(): { readonly dirs: string[]; readonly pids: number[] } {
  const u = umlLeftovers();
  const q = qemuLeftovers();
  return { dirs: [...u.dirs, ...q.dirs], pids: [...u.pids, ...q.pids] };
}

/**
 * For a test file whose suite needs a guest: chooses the backend, records the suite in the
 * run's kernel report, and prints a visible skip when it cannot run. `missing` is another
 * reason to skip (e.g. a scenario not compiled). Returns the skip reason, if any.
 */
export async function guestSuite(suite: string, missing?: string): Promise<{ backend?: GuestBackend; skip?: string }> {
  const c = await chooseGuest();
  const skip = c.backend ? missing : c.reason;
  if (skip) {
    console.warn(`SKIPPED ${suite} (full-kernel guest): ${skip}`);
    recordKernelSuite({ suite, kernel: c.backend ?? 'guest', outcome: 'skipped', why: skip });
    return { skip };
  }
  recordKernelSuite({ suite, kernel: c.backend! });
  return { backend: c.backend };
}

async function choose(): Promise<GuestChoice> {
  const forced = (process.env.KST_GUEST ?? 'auto').trim() || 'auto';
  if (forced === 'uml' || forced === 'qemu') {
    const reason = forced === 'uml' ? umlUnavailableReason() : qemuUnavailableReason();
    return reason ? { reason: `KST_GUEST=${forced}: ${reason}` } : { backend: forced, how: `KST_GUEST=${forced}` };
  }
  if (forced !== 'auto') return { reason: `KST_GUEST must be uml, qemu or auto, not ${JSON.stringify(forced)}` };
  const cache = process.env.KST_TEST_RUN_DIR ? join(process.env.KST_TEST_RUN_DIR, 'guest-choice.json') : undefined;
  if (!cache) return probe();
  return sharedProbe(cache);
}

/** One probe per jest run: the first process takes the lock and probes, the others wait for its answer. */
async function sharedProbe(cache: string): Promise<GuestChoice> {
  const read = (): GuestChoice | undefined => {
    const text = readIfExists(cache);
    return text ? (JSON.parse(text) as GuestChoice) : undefined;
  };
  const known = read();
  if (known) return known;
  let mine = false;
  try {
    closeSync(openSync(`${cache}.lock`, 'wx'));
    mine = true;
  } catch {
    // another process is probing
  }
  if (!mine) {
    const deadline = Date.now() + PROBE_TIMEOUT_MS.uml + PROBE_TIMEOUT_MS.qemu + 30_000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      const c = read();
      if (c) return c;
    }
  }
  const c = await probe();
  writeFileSync(`${cache}.${process.pid}`, JSON.stringify(c));
  renameSync(`${cache}.${process.pid}`, cache);
  return c;
}

async function probe(): Promise<GuestChoice> {
  const started = Date.now();
  const uml = await probeBackend('uml');
  if (!uml) return { backend: 'uml', how: `probed: User-mode Linux boots (${Date.now() - started} ms)` };
  const qemuStarted = Date.now();
  const qemu = await probeBackend('qemu');
  if (!qemu) return { backend: 'qemu', how: `probed: User-mode Linux cannot run (${uml}); QEMU boots (${Date.now() - qemuStarted} ms)` };
  return { reason: `User-mode Linux: ${uml}; QEMU: ${qemu}` };
}

/** undefined when a guest of this backend boots and runs a command; otherwise why not. */
async function probeBackend(backend: GuestBackend): Promise<string | undefined> {
  const reason = backend === 'uml' ? umlUnavailableReason() : qemuUnavailableReason();
  if (reason) return reason;
  const run = backend === 'uml' ? runInUml : runInQemu;
  try {
    // No modules beyond the defaults: a guest that cannot load them is no use to the suites either.
    const r = await run(['echo', PROBE_MARKER], { timeoutMs: PROBE_TIMEOUT_MS[backend] });
    if (r.code === 0 && r.output.includes(PROBE_MARKER)) return undefined;
    return `a trivial guest exited ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${r.output.trim().split('\n').slice(-3).join(' | ')}`;
  } catch (err) {
    // The console tail says why (e.g. "ptrace set fp regs failed" and a kernel panic): keep its last lines.
    return `${(err as Error).message.split('\n').filter((l) => l.trim()).slice(-4).join(' | ')}`;
  }
}
