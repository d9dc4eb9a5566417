// The QEMU guest's initramfs: busybox-static, the few modules needed to reach the host's
// root over virtio-9p, and an /init that mounts it and hands over to the run's script
// (qemu.ts). Written as a gzip'd newc cpio archive by this file (no cpio tool needed), and
// cached beside the kernel: it depends only on the kernel, busybox and INIT below.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const BUSYBOX = '/bin/busybox';
/** Printed by /init as soon as it runs: the end of the kernel's boot. */
export const QEMU_INIT_MARKER = 'kst-qemu: init running';
/** The modules /init loads, with what they need, to mount the host's root over virtio-9p. */
const ROOT_MODULES = ['virtio_pci', '9pnet_virtio', '9p'];
/** 9p message size: larger messages cut the round trips of node reading dist/ and node_modules. */
const MSIZE = 512 * 1024;

export interface GuestKernel {
  /** `uname -r` in the guest, e.g. 6.1.0-57-amd64. */
  readonly release: string;
  /** The unpacked package: boot/vmlinuz-<release>, lib/modules/<release> (modprobe -d <dir>). */
  readonly dir: string;
  /** What QEMU boots: boot/vmlinux-<release> (unpacked ELF, PVH entry) or else boot/vmlinuz-<release>. */
  readonly image: string;
}

/**
 * /init, PID 1 of the guest. Mounts the host's / read-only over 9p at /newroot, puts proc,
 * sys, dev and a tmpfs /run in it, mounts the run's writable share (tag kstrun) at
 * /newroot/run/kst-qemu and runs its run.sh chrooted; then powers off whatever happened.
 * PID 1 must never exit (that panics the kernel), so every failure path also powers off.
 */
function initScript(modules: readonly string[]): string {
  const opts = `trans=virtio,version=9p2000.L,msize=${MSIZE}`;
  return `#!/bin/busybox sh
/bin/busybox mkdir -p /bin /proc /sys /dev /newroot
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo '${QEMU_INIT_MARKER}'
stop() { echo "kst-qemu: $*"; sync; poweroff -f; sleep 10; }
for m in ${modules.join(' ')}; do insmod /modules/$m.ko || stop "insmod $m failed"; done
mount -t 9p -o ${opts},ro,cache=loose hostroot /newroot || stop "cannot mount the host root over 9p"
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mkdir -p /newroot/run/kst-qemu /newroot/run/lock
mount -t 9p -o ${opts} kstrun /newroot/run/kst-qemu || stop "cannot mount the run share"
chroot /newroot /bin/sh /run/kst-qemu/run.sh
stop "run.sh exited $?"
`;
}

/** The module files ROOT_MODULES need, dependencies first, from the kernel's modules.dep. */
export function rootModuleFiles(kernel: GuestKernel): string[] {
  const modDir = join(kernel.dir, 'lib', 'modules', kernel.release);
  const deps = new Map<string, string[]>(); // name -> dependency files
  const files = new Map<string, string>(); // name -> file, relative to modDir
  for (const line of readFileSync(join(modDir, 'modules.dep'), 'utf8').split('\n')) {
    const [file, rest] = line.split(':');
    if (!file || rest === undefined) continue;
    files.set(moduleName(file), file);
    deps.set(moduleName(file), rest.trim() ? rest.trim().split(/\s+/) : []);
  }
  const ordered: string[] = [];
  const visit = (name: string, path: string[]): void => {
    if (ordered.some((f) => moduleName(f) === name)) return;
    const file = files.get(name);
    if (!file) throw new Error(`guest kernel ${kernel.release} has no module ${name} (needed by ${path.join(' <- ') || 'the initramfs'})`);
    for (const d of deps.get(name) ?? []) visit(moduleName(d), [name, ...path]);
    ordered.push(file);
  };
  for (const m of ROOT_MODULES) visit(m, []);
  return ordered.map((f) => join(modDir, f));
}

/** `kernel/fs/9p/9p.ko.xz` -> `9p`; modprobe treats - and _ alike. */
function moduleName(file: string): string {
  return basename(file).replace(/\.ko(\.xz|\.zst|\.gz)?$/, '').replace(/-/g, '_');
}

function moduleBytes(file: string): Buffer {
  if (!file.endsWith('.xz')) return readFileSync(file);
  // busybox insmod cannot decompress: the kernel package may ship xz'd modules.
  const r = spawnSync('xz', ['-d', '-c', file], { maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`xz -d ${file} failed: ${r.error?.message ?? r.stderr.toString()}`);
  return r.stdout;
}

/**
 * The initramfs for this kernel, built on first use and cached (by content hash) in
 * <kernel.dir>/initramfs, or under $TMPDIR where that is not writable. Concurrent test
 * processes may both build it: each writes its own file and renames it into place.
 */
export function initramfsFor(kernel: GuestKernel): string {
  const modules = rootModuleFiles(kernel);
  const init = initScript(modules.map(moduleName));
  const bb = statSync(BUSYBOX);
  const key = createHash('sha256')
    .update(JSON.stringify({ init, modules, busybox: [bb.size, bb.mtimeMs], kernel: kernel.release }))
    .digest('hex')
    .slice(0, 16);
  for (const dir of [join(kernel.dir, 'initramfs'), join(tmpdir(), 'kst-qemu-initramfs')]) {
    const path = join(dir, `initrd-${key}.cpio.gz`);
    if (existsSync(path)) return path;
    try {
      mkdirSync(dir, { recursive: true });
      const partial = `${path}.${process.pid}.tmp`;
      writeFileSync(partial, buildArchive(init, modules));
      renameSync(partial, path);
      return path;
    } catch {
      // not writable: try the next place
    }
  }
  throw new Error(`cannot write an initramfs for ${kernel.release} in ${kernel.dir}/initramfs or ${tmpdir()}`);
}

function buildArchive(init: string, modules: readonly string[]): Buffer {
  const cpio = new NewcArchive();
  for (const d of ['bin', 'dev', 'proc', 'sys', 'newroot', 'modules']) cpio.dir(d);
  // The kernel opens /dev/console for init's stdio before anything is mounted.
  cpio.charDevice('dev/console', 5, 1);
  cpio.file('bin/busybox', readFileSync(BUSYBOX), 0o755);
  cpio.file('init', Buffer.from(init), 0o755);
  for (const m of modules) cpio.file(`modules/${moduleName(m)}.ko`, moduleBytes(m), 0o644);
  return gzipSync(cpio.finish());
}

/** The kernel's initramfs format ("newc": ASCII hex headers, 4-byte alignment, TRAILER!!! last). */
class NewcArchive {
  private readonly parts: Buffer[] = [];
  private ino = 1;

  dir(name: string): void {
    this.entry(name, 0o040000 | 0o755, Buffer.alloc(0));
  }

  file(name: string, data: Buffer, perm: number): void {
    this.entry(name, 0o100000 | perm, data);
  }

  charDevice(name: string, major: number, minor: number): void {
    this.entry(name, 0o020000 | 0o600, Buffer.alloc(0), major, minor);
  }

  finish(): Buffer {
    this.entry('TRAILER!!!', 0, Buffer.alloc(0));
    return Buffer.concat(this.parts);
  }

  private entry(name: string, mode: number, data: Buffer, rdevMajor = 0, rdevMinor = 0): void {
    const hex = (n: number): string => n.toString(16).padStart(8, '0');
    const nameBytes = Buffer.from(`${name}\0`);
    const fields = [this.ino++, mode, 0, 0, 1, 0, data.length, 0, 0, rdevMajor, rdevMinor, nameBytes.length, 0];
    const header = Buffer.from(`070701${fields.map(hex).join('')}`);
    this.parts.push(header, nameBytes, pad(header.length + nameBytes.length), data, pad(data.length));
  }
}

function pad(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}
