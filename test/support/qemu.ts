// Runs one command inside a QEMU guest with Debian's own kernel: the full-kernel backend
// where User-mode Linux cannot boot (../../../shared/KERNEL.md, docs/testing.md). The
// kernel package is unpacked, never installed, by scripts/guest-kernel.sh; the guest's root
// is the host's `/` over virtio-9p, read-only, so it runs the host's node, ip and nft on
// the repo's compiled dist/. TCG (no KVM: a KVM guest was seen to hang at boot on one host
// build, and a hang is worse than slowness). The guest gets a writable share, the run's
// scratch directory, for its script, output and exit code; the scratch directory is removed
// after the run and QEMU is bounded by `timeout` plus a kill by PID, so a stuck guest costs
// at most timeoutMs and leaves nothing behind.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
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
import { BUSYBOX, QEMU_INIT_MARKER, initramfsFor, type GuestKernel } from './initramfs.js';

export const QEMU_BINARY = '/usr/bin/qemu-system-x86_64';
/** Where scripts/guest-kernel.sh unpacks kernels, one folder per release. */
export const GUEST_KERNEL_CACHE = process.env.KST_GUEST_KERNEL_CACHE ?? '/var/cache/kube-service-tunnel/guest-kernel';

/** Scratch directories and guest names are `kst-qemu-<pid>-<n>`: recognisable, and per test process. */
const SCRATCH_PREFIX = 'kst-qemu-';
let runCounter = 0;

/** The newest complete kernel in the cache, or why there is none. */
export function guestKernel(): GuestKernel | string {
  let releases: string[];
  try {
    releases = readdirSync(GUEST_KERNEL_CACHE).filter((r) => existsSync(join(GUEST_KERNEL_CACHE, r, '.complete')));
  } catch {
    releases = [];
  }
  const release = releases.sort((a, b) => b.localeCompare(a, 'en', { numeric: true }))[0];
  if (!release) return `no guest kernel in ${GUEST_KERNEL_CACHE}: run scripts/install-deps.sh (or scripts/guest-kernel.sh)`;
  const dir = join(GUEST_KERNEL_CACHE, release);
  // The unpacked ELF boots in under a second; the bzImage spends 5-18 s decompressing itself under TCG.
  const image = [join(dir, 'boot', `vmlinux-${release}`), join(dir, 'boot', `vmlinuz-${release}`)].find((f) => existsSync(f));
  if (!image || !existsSync(join(dir, 'lib', 'modules', release, 'modules.dep'))) return `${dir} is incomplete: remove it and run scripts/guest-kernel.sh`;
  return { release, dir, image };
}

/** undefined when a QEMU guest can be started here; otherwise the reason. */
export function qemuUnavailableReason(): string | undefined {
  if (process.platform !== 'linux' || arch() !== 'x64') return `the QEMU guest needs Linux on x86-64 (this is ${process.platform}/${arch()})`;
  if (!existsSync(QEMU_BINARY)) return `${QEMU_BINARY} not found: install the Debian package qemu-system-x86 (scripts/install-deps.sh)`;
  // A dynamically linked busybox would find no C library in the initramfs.
  if (!existsSync(BUSYBOX) || !existsSync('/usr/share/doc/busybox-static')) return `${BUSYBOX} is not busybox-static: install the Debian package busybox-static (scripts/install-deps.sh)`;
  if (!existsSync('/usr/bin/timeout')) return '/usr/bin/timeout not found: install coreutils';
  const kernel = guestKernel();
  return typeof kernel === 'string' ? kernel : undefined;
}

/**
 * runInUml's contract (guest-script.ts) on a QEMU guest: argv runs as root, cwd = the repo
 * root, the host's / read-only, /tmp, /run and /dev/shm writable (tmpfs in the guest),
 * DEFAULT_GUEST_MODULES plus opts.modules loaded from the unpacked kernel package. Code 124
 * when killed at timeoutMs, 125 when a module does not load; throws only when the guest
 * itself fails (no exit code written), with the tail of its console.
 */
export interface QemuOptions extends GuestOptions {
  /**
   * Let the guest kernel load modules on demand, as an installed system would (its modprobe
   * helper pointed at the unpacked tree). Off by default, as in UML: a suite's module list
   * is then the whole truth, and a module it unloads stays unloaded.
   */
  readonly moduleAutoload?: boolean;
  /** Virtual CPUs (default 1, as in UML); each is one host thread under TCG. */
  readonly cpus?: number;
}

export async function runInQemu(argv: readonly string[], opts: QemuOptions = {}): Promise<GuestResult> {
  const run = checkRun('runInQemu', 'qemu', argv, opts);
  const reason = qemuUnavailableReason();
  if (reason) throw new Error(`runInQemu: ${reason}`);
  const kernel = guestKernel() as GuestKernel;
  const initrd = initramfsFor(kernel);

  runCounter += 1;
  const name = `${SCRATCH_PREFIX}${process.pid}-${runCounter}`;
  const base = mkdtempSync(join(tmpdir(), `${name}-`));
  try {
    const share = join(base, 'run'); // the guest's /run/kst-qemu: run.sh, output, code
    mkdirSync(share, { mode: 0o755 });
    writeFileSync(join(share, 'run.sh'), runScript({ argv, run, kernel, autoload: opts.moduleAutoload === true }), { mode: 0o755 });
    const cpus = opts.cpus ?? 1;
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 8) throw new Error(`runInQemu: cpus must be an integer 1-8, got ${cpus}`);
    const boot = await bootGuest({ name, kernel, initrd, share, memMb: run.memMb, cpus, timeoutMs: run.timeoutMs });
    const output = readIfExists(join(share, 'output'));
    const codeText = readIfExists(join(share, 'code')).trim();
    const timing = { bootMs: boot.bootMs, elapsedMs: boot.elapsedMs };
    if (boot.timedOut) {
      return { code: GUEST_TIMEOUT, timedOut: true, output: `${output}\n[runInQemu] guest killed after ${run.timeoutMs} ms running ${argv.join(' ')}\n`, ...timing };
    }
    if (!/^\d+$/.test(codeText)) {
      throw new Error(`runInQemu: the guest stopped without an exit code for ${argv.join(' ')} (qemu exit ${boot.exitCode}). Console tail:\n${tail(boot.console, 40)}`);
    }
    return { code: Number(codeText), output, ...timing };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

/** Runs chrooted in the host's root (initramfs.ts's /init has mounted proc, sys, dev and /run). */
function runScript(p: { argv: readonly string[]; run: CheckedRun; kernel: GuestKernel; autoload: boolean }): string {
  const top = hiddenCheckoutTop(p.run.cwd);
  // A checkout under /tmp, /run or /dev/shm: keep a handle on it before a tmpfs hides it.
  const keep = top ? `mkdir -p /run/kst-keep && mount --bind ${shq(top)} /run/kst-keep\n` : '';
  const restore = top ? `mkdir -p ${shq(top)} && mount --bind /run/kst-keep ${shq(top)}\n` : '';
  return `#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
done_() { echo "$1" > /run/kst-qemu/code; sync; exit 0; }
${keep}mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /dev/shm
${restore}${p.autoload ? autoloadScript(p.kernel) : ''}${commandScript({ run: p.run, argv: p.argv, moduleBase: p.kernel.dir, resultDir: '/run/kst-qemu', who: 'runInQemu' })}`;
}

/**
 * The kernel runs /proc/sys/kernel/modprobe to load a module on demand, resolved from the
 * initramfs root (a usermode helper has the first root, not the chroot): a busybox script
 * there that runs the host's modprobe in the chroot, pointed at the unpacked tree.
 */
function autoloadScript(kernel: GuestKernel): string {
  return `printf '#!/bin/sh\\nexec /bin/chroot /newroot /sbin/modprobe -d %s "$@"\\n' ${shq(kernel.dir)} > /run/kst-modprobe
chmod 0755 /run/kst-modprobe && echo /newroot/run/kst-modprobe > /proc/sys/kernel/modprobe
`;
}

function bootGuest(p: { name: string; kernel: GuestKernel; initrd: string; share: string; memMb: number; cpus: number; timeoutMs: number }): Promise<GuestRun> {
  if (p.share.includes(',') || p.kernel.image.includes(',')) throw new Error(`runInQemu: QEMU option values cannot hold a comma: ${p.share}`);
  const args = [
    '-name', p.name,
    '-accel', 'tcg', '-cpu', 'max', '-m', String(p.memMb), '-smp', String(p.cpus),
    // Console on our stdout, no monitor, no terminal: nothing in the guest can wait on a tty.
    '-nographic', '-monitor', 'none', '-serial', 'stdio', '-no-reboot', '-nic', 'none',
    '-kernel', p.kernel.image, '-initrd', p.initrd,
    // no_timer_check: on a loaded host the emulated CPU is too slow for the kernel's IO-APIC
    // timer check, which then panics ("IO-APIC + timer doesn't work!"); seen here at load 20.
    '-append', 'console=ttyS0 quiet panic=-1 no_timer_check',
    '-virtfs', `local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap`,
    '-virtfs', `local,path=${p.share},mount_tag=kstrun,security_model=none`,
  ];
  return runGuestProcess({ who: 'runInQemu', binary: QEMU_BINARY, args, timeoutMs: p.timeoutMs, initMarker: QEMU_INIT_MARKER, leftoverPids: () => pidsWithWord(p.name) });
}

/** What this process's runs left behind: scratch directories and qemu/timeout processes. Empty after every run. */
export function qemuLeftovers(): { readonly dirs: string[]; readonly pids: number[] } {
  const mine = `${SCRATCH_PREFIX}${process.pid}-`;
  return { dirs: readdirSync(tmpdir()).filter((n) => n.startsWith(mine)), pids: pidsWithWord(mine, true) };
}
