// A long-lived `ip -force -batch -` process. Starting `ip` (process, network namespace,
// netlink socket, link cache) costs more than the few dozen route changes of an endpoint
// change, so batches go to one process's stdin instead. Each batch is followed by a marker
// command that always fails, `nexthop get id MARKER_NEXTHOP_ID`; the batch is complete
// when ip reports the marker's line on stderr ("Command failed -:N"), which it writes in
// order with the batch's own errors.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { NEXTHOP_ID_BASE, NEXTHOP_ID_SPAN } from './layout.js';

/** The last id of the project's nexthop range: never created, so `nexthop get` fails. */
export const MARKER_NEXTHOP_ID = NEXTHOP_ID_BASE + NEXTHOP_ID_SPAN - 1;

export interface FailedLine {
  /** 1-based line in the batch. */
  readonly line: number;
  readonly message: string;
}

export interface IpBatchResult {
  readonly ok: boolean;
  readonly failed: readonly FailedLine[];
  readonly stderr: string;
}

interface Pending {
  readonly first: number;
  readonly marker: number;
  readonly resolve: (r: IpBatchResult) => void;
  readonly timer: NodeJS.Timeout;
}

export class IpBatchSession {
  private child?: ChildProcessWithoutNullStreams;
  /** Lines written to the current process (ip numbers them from 1). */
  private written = 0;
  private stderr = '';
  private pending?: Pending;
  private queue: Promise<unknown> = Promise.resolve();

  /** `args`: ip's options before `-force -batch -` (e.g. `-n NS`, `-6`). */
  constructor(private readonly args: readonly string[]) {}

  /** Applies one batch; batches run one after another. Never rejects. */
  apply(lines: readonly string[], timeoutMs: number): Promise<IpBatchResult> {
    const run = this.queue.then(() => this.run(lines, timeoutMs));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The ip process's pid while one runs (tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Ends the process (stdin closed; it exits at EOF). */
  close(): void {
    const child = this.child;
    this.child = undefined;
    if (child) child.stdin.end();
  }

  private run(lines: readonly string[], timeoutMs: number): Promise<IpBatchResult> {
    const child = this.child ?? this.start();
    return new Promise((resolve) => {
      const first = this.written + 1;
      this.written += lines.length + 1;
      const timer = setTimeout(() => {
        this.fail(`ip -batch did not finish within ${timeoutMs} ms`);
        child.kill('SIGKILL');
      }, timeoutMs);
      this.pending = { first, marker: this.written, resolve, timer };
      child.stdin.write(`${lines.join('\n')}\nnexthop get id ${MARKER_NEXTHOP_ID}\n`);
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    const child = spawn('ip', [...this.args, '-force', '-batch', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.written = 0;
    this.stderr = '';
    child.stderr.setEncoding('utf8');
    child.stdout.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      this.stderr += d;
      this.check();
    });
    // Only the marker could print (someone created that nexthop): count it as done.
    child.stdout.on('data', (d: string) => {
      if (d.includes(`id ${MARKER_NEXTHOP_ID} `)) this.finish('');
    });
    child.stdin.on('error', () => undefined); // reported by 'exit'
    child.on('error', (err) => this.lost(child, `ip: ${err.message}`));
    child.on('exit', (code, signal) => this.lost(child, `ip -batch exited (${signal ?? `code ${code}`})`));
    // A session left open must not keep the process alive; a pending batch's timer does.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
    return child;
  }

  private check(): void {
    const p = this.pending;
    if (!p) return;
    const tag = `Command failed -:${p.marker}\n`;
    const at = this.stderr.indexOf(tag);
    if (at < 0) return;
    const text = this.stderr.slice(0, at);
    this.stderr = this.stderr.slice(at + tag.length);
    this.finish(text);
  }

  /** Completes the pending batch from ip's stderr up to the marker's own error. */
  private finish(text: string): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    // What follows the batch's last "Command failed" line is the marker's own error.
    const end = text.lastIndexOf('Command failed -:');
    const batchText = end < 0 ? '' : text.slice(0, text.indexOf('\n', end) + 1);
    const failed = parseBatchErrors(batchText).map((e) => ({ line: e.line - p.first + 1, message: e.message }));
    p.resolve(failed.length ? { ok: false, failed, stderr: batchText.trim() } : { ok: true, failed: [], stderr: '' });
  }

  private fail(message: string): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.resolve({ ok: false, failed: [], stderr: `${message}${this.stderr.trim() ? `: ${this.stderr.trim()}` : ''}` });
  }

  private lost(child: ChildProcessWithoutNullStreams, message: string): void {
    if (this.child === child) this.child = undefined;
    this.fail(message);
  }
}

/** Pairs each "Command failed -:N" with the message printed just before it. */
export function parseBatchErrors(stderr: string): FailedLine[] {
  const out: FailedLine[] = [];
  let previous: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)/.exec(line);
    if (m) {
      out.push({ line: Number(m[1]), message: previous.join('; ') || 'failed' });
      previous = [];
    } else if (line.trim()) previous.push(line.trim());
  }
  if (out.length === 0 && previous.length) out.push({ line: 0, message: previous.join('; ') });
  return out;
}
