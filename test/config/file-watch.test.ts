// The config file watcher against the ways a config file is replaced: the kubelet's
// ConfigMap volume (timestamped directory, `..data` symlink swapped by rename, the file a
// symlink through it), an editor's rename-over, a plain rewrite; plus the periodic re-read.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { mkdirSync, mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigFileWatcher } from '../../src/config/index.js';

let dir: string;
let watcher: ConfigFileWatcher | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kst-cfgwatch-'));
});
afterEach(() => {
  watcher?.stop();
  watcher = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** What the kubelet's atomic writer does for a ConfigMap volume (pkg/volume/util/atomic_writer.go). */
let version = 0;
function kubeletWrite(mount: string, files: Record<string, string>, first = false): void {
  const ts = join(mount, `..2026_12_07_21_43_${String(20 + version++).padStart(2, '0')}.${100000000 + version}`);
  mkdirSync(ts);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(ts, name), text);
  const old = first ? undefined : join(mount, '..data');
  let oldTarget: string | undefined;
  if (old) oldTarget = join(mount, readlinkSync(old));
  symlinkSync(ts.slice(mount.length + 1), join(mount, '..data_tmp'));
  renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
  if (first) for (const name of Object.keys(files)) symlinkSync(join('..data', name), join(mount, name));
  if (oldTarget) rmSync(oldTarget, { recursive: true, force: true });
}



function collect(file: string, opts: { debounceMs?: number; pollMs?: number } = {}): { seen: string[]; errors: string[]; w: ConfigFileWatcher } {
  const seen: string[] = [];
  const errors: string[] = [];
  const w = new ConfigFileWatcher({ file, onChange: (t) => seen.push(t), onError: (e) => errors.push(e.message), debounceMs: opts.debounceMs ?? 50, pollMs: opts.pollMs ?? 0 });
  watcher = w;
  return { seen, errors, w };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(20);
  }
}

describe('ConfigFileWatcher', () => {
  test('a ConfigMap update (symlink swap of ..data) is seen once per new content; the start content is the baseline', async () => {
    kubeletWrite(dir, { 'config.yaml': 'logLevel: info\n', 'other.yaml': 'a: 1\n' }, true);
    const { seen, errors, w } = collect(join(dir, 'config.yaml'));
    await w.start();
    kubeletWrite(dir, { 'config.yaml': 'logLevel: debug\n', 'other.yaml': 'a: 1\n' });
    await until(() => seen.length === 1);
    // Only another key of the ConfigMap changes: the same bytes for our file, nothing reported.
    kubeletWrite(dir, { 'config.yaml': 'logLevel: debug\n', 'other.yaml': 'a: 2\n' });
    await sleep(300);
    kubeletWrite(dir, { 'config.yaml': 'logLevel: warn\n', 'other.yaml': 'a: 2\n' });
    await until(() => seen.length === 2);
    expect(seen).toEqual(['logLevel: debug\n', 'logLevel: warn\n']);
    expect(errors).toEqual([]);
  });

  test("an editor's rename-over and a plain rewrite are both seen", async () => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'logLevel: info\n');
    const { seen, w } = collect(file);
    await w.start();
    writeFileSync(join(dir, '.config.yaml.swp'), 'logLevel: debug\n');
    renameSync(join(dir, '.config.yaml.swp'), file);
    await until(() => seen.length === 1);
    writeFileSync(file, 'logLevel: warn\n');
    await until(() => seen.length === 2);
    expect(seen).toEqual(['logLevel: debug\n', 'logLevel: warn\n']);
  });

  test('a burst of writes within the debounce time is read once, at its end', async () => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'v: 0\n');
    const { seen, w } = collect(file, { debounceMs: 200 });
    await w.start();
    for (let i = 1; i <= 5; i++) {
      writeFileSync(file, `v: ${i}\n`);
      await sleep(20);
    }
    await until(() => seen.length >= 1);
    await sleep(400);
    expect(seen).toEqual(['v: 5\n']);
  });

  test('the periodic re-read finds a change inotify did not report (the watched directory replaced)', async () => {
    const mount = join(dir, 'mount');
    mkdirSync(mount);
    writeFileSync(join(mount, 'config.yaml'), 'v: 1\n');
    const { seen, w } = collect(join(mount, 'config.yaml'), { pollMs: 200 });
    await w.start();
    // The directory itself is replaced: its inotify watch is gone with it.
    rmSync(mount, { recursive: true });
    mkdirSync(mount);
    writeFileSync(join(mount, 'config.yaml'), 'v: 2\n');
    await until(() => seen.length === 1);
    expect(seen).toEqual(['v: 2\n']);
  });

  test('a file missing for a moment is an error, not a change; it is reported when it returns with new content', async () => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'v: 1\n');
    const { seen, errors, w } = collect(file);
    await w.start();
    rmSync(file);
    await until(() => errors.length >= 1);
    expect(seen).toEqual([]);
    writeFileSync(file, 'v: 2\n');
    await until(() => seen.length === 1);
    expect(seen).toEqual(['v: 2\n']);
  });
});
