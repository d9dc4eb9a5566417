// Notices when the configuration file's content changes, however it is replaced:
//
//  - a mounted ConfigMap: the kubelet writes a new `..2026_12_07_...` directory, points a
//    `..data_tmp` symlink at it and renames that over `..data`; the file itself is a symlink
//    `config.yaml -> ..data/config.yaml` that never changes. Watching the file's inode would
//    see nothing (it is the old directory's file, then deleted), so the directory is watched;
//  - an editor's rename-over (write a temporary file, rename it onto the name);
//  - a plain rewrite in place.
//
// Events are debounced (a swap is several renames; an editor writes in several steps) and
// compared by content: only different bytes are reported. A periodic re-read catches what
// inotify misses (a watch lost with its directory, a network filesystem, queue overflow).
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';

export interface ConfigFileWatcherOptions {
  readonly file: string;
  /** Called with the new content after it changed (never twice for the same bytes in a row). */
  readonly onChange: (text: string) => void;
  /** Called when the file cannot be read (missing during a swap, permissions); the last content stays. */
  readonly onError?: (err: Error) => void;
  /** Quiet time after the last event before reading; default 300 ms. */
  readonly debounceMs?: number;
  /** Re-read this often whatever inotify says; default 60 s; 0 disables. */
  readonly pollMs?: number;
}

export class ConfigFileWatcher {
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private lastDigest: string | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(private readonly opts: ConfigFileWatcherOptions) {}

  /** Starts watching; the current content is the baseline (not reported). */
  async start(): Promise<void> {
    this.stopped = false;
    try {
      this.lastDigest = digest(await readFile(this.opts.file, 'utf8'));
    } catch (err) {
      this.opts.onError?.(err as Error);
    }
    this.watchDirectory();
    const pollMs = this.opts.pollMs ?? 60_000;
    if (pollMs > 0) {
      this.poll = setInterval(() => {
        // A lost directory watch (the directory replaced) is set up again here.
        if (!this.watcher) this.watchDirectory();
        void this.check();
      }, pollMs);
      this.poll.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.debounce);
    clearInterval(this.poll);
  }

  /** Reads now and reports a change (also what the periodic re-read does). */
  async check(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        await this.readOnce();
      } while (this.again && !this.stopped);
    })().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async readOnce(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.opts.file, 'utf8');
    } catch (err) {
      this.opts.onError?.(err as Error);
      return;
    }
    const d = digest(text);
    if (d === this.lastDigest || this.stopped) return;
    this.lastDigest = d;
    this.opts.onChange(text);
  }

  private watchDirectory(): void {
    if (this.stopped) return;
    try {
      // Every name in the directory counts: `..data` is renamed, not the file's own name.
      this.watcher = watch(dirname(this.opts.file), { persistent: false }, () => this.schedule());
      this.watcher.on('error', (err) => {
        this.opts.onError?.(err);
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.opts.onError?.(err as Error);
      this.watcher = undefined;
    }
  }

  private schedule(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.check(), this.opts.debounceMs ?? 300);
    this.debounce.unref();
  }
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
