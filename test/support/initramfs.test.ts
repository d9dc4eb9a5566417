// The QEMU guest's initramfs, read back without booting: a valid newc archive (what the
// kernel unpacks), with /init, busybox, /dev/console and the 9p modules in an order where
// each module's dependencies come first. Booting it is guest.selftest.test.ts's job.
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { initramfsFor, rootModuleFiles } from './initramfs.js';
import { guestKernel } from './qemu.js';

const kernel = guestKernel();
if (typeof kernel === 'string') console.warn(`SKIPPED initramfs checks: ${kernel}`);

interface Entry { name: string; mode: number; size: number; rdev: [number, number] }

function parseNewc(buf: Buffer): Entry[] {
  const entries: Entry[] = [];
  let at = 0;
  const align = (n: number): number => (n + 3) & ~3;
  for (;;) {
    const header = buf.subarray(at, at + 110).toString('ascii');
    expect(header.slice(0, 6)).toBe('070701');
    const field = (i: number): number => parseInt(header.slice(6 + 8 * i, 14 + 8 * i), 16);
    const nameSize = field(11);
    const size = field(6);
    const name = buf.subarray(at + 110, at + 110 + nameSize - 1).toString();
    entries.push({ name, mode: field(1), size, rdev: [field(9), field(10)] });
    at = align(align(at + 110 + nameSize) + size);
    if (name === 'TRAILER!!!') return entries;
  }
}

(typeof kernel === 'string' ? describe.skip : describe)('initramfs for the QEMU guest', () => {
  test('a newc archive with init, busybox, /dev/console and the 9p modules', () => {
    const k = kernel as Exclude<typeof kernel, string>;
    const entries = parseNewc(gunzipSync(readFileSync(initramfsFor(k))));
    const byName = new Map(entries.map((e) => [e.name, e]));
    expect(byName.get('init')?.mode).toBe(0o100755);
    expect(byName.get('bin/busybox')?.size).toBeGreaterThan(500_000);
    expect(byName.get('dev/console')).toMatchObject({ mode: 0o020600, rdev: [5, 1] });
    for (const m of ['virtio_pci', '9pnet', '9pnet_virtio', '9p']) expect(byName.has(`modules/${m}.ko`)).toBe(true);
    expect(entries.at(-1)?.name).toBe('TRAILER!!!');
  });

  test('modules come after their dependencies', () => {
    const names = rootModuleFiles(kernel as Exclude<typeof kernel, string>).map((f) => f.split('/').pop()!.replace(/\.ko.*$/, ''));
    for (const m of ['virtio_ring', 'virtio', 'virtio_pci', '9pnet', '9pnet_virtio', 'netfs', '9p']) expect(names).toContain(m);
    expect(names.indexOf('9pnet')).toBeLessThan(names.indexOf('9pnet_virtio'));
    expect(names.indexOf('9pnet')).toBeLessThan(names.indexOf('9p'));
    expect(names.indexOf('virtio_ring')).toBeLessThan(names.indexOf('virtio_pci'));
    expect(names.at(-1)).toBe('9p');
  });
});
