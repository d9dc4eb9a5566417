// A long-lived program that takes batches of commands on stdin (`ip -batch -`, `nft -i`).
// Starting `ip` or `nft` (process, network namespace, netlink socket, caches) costs more
// than the few commands of an endpoint change, so batches go to one process instead. Each
// batch is followed by a marker command that always fails (it names an object that is
// never created); the program reports that failure on stderr after the batch's own
// errors, so the text before it is the batch's result. Subclasses say what the marker is
// and how the batch's errors read.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

/** One batch: a text, or its lines (joined with newlines). */
export type Batch = string | readonly string[];

interface Pending {
  readonly seq: number;
  readonly resolve: (stderr: string | Error) => void;
  readonly timer: NodeJS.Timeout;
}

export abstract class CommandSession {
  private child?: ChildProcessWithoutNullStreams;
  private stderr = '';
  private seq = 0;
  private pending?: Pending;
  private queue: Promise<unknown> = Promise.resolve();

  /** `argv`: the program and its arguments. */
  constructor(private readonly argv: readonly string[]) {}

  /** The process's pid while one runs (tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Ends the process (stdin closed; it exits at EOF). */
  close(): void {
    const child = this.child;
    this.child = undefined;
    if (child) child.stdin.end();
  }

  /**
   * What to write for one batch, its marker last, in as many pieces as the subclass likes
   * (a tunnel node's first batch is hundreds of thousands of lines: written in pieces, it is
   * never one string). `seq` numbers the batches of a process.
   */
  protected abstract frame(batch: Batch, seq: number): Iterable<string>;
  /**
   * Looks for the marker of batch `seq` in the stderr received so far: undefined while it
   * has not arrived; else the batch's own report (without the marker's) and how many
   * characters of stderr the batch and its marker used.
   */
  protected abstract findMarker(stderr: string, seq: number): { readonly report: string; readonly consumed: number } | undefined;
  /** Called when a process starts (ip numbers its input lines from 1 again). */
  protected restarted(): void {}
  /** True: end the running process (at EOF, its batches all answered) and start a new one for `batch`. */
  protected recycleBefore(_batch: Batch): boolean {
    return false;
  }

  /**
   * Runs one batch; batches run one after another. Resolves with the stderr the batch
   * produced (empty: every command succeeded), or an Error when the process died or
   * overran `timeoutMs` (it is then replaced by the next batch). Never rejects.
   */
  protected send(batch: Batch, timeoutMs: number): Promise<string | Error> {
    const run = this.queue.then(() => this.run(batch, timeoutMs));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private run(batch: Batch, timeoutMs: number): Promise<string | Error> {
    // Batches run one at a time: nothing is pending here, the old process has answered all.
    if (this.child && this.recycleBefore(batch)) this.close();
    const child = this.child ?? this.start();
    return new Promise((resolve) => {
      this.seq += 1;
      const timer = setTimeout(() => {
        this.settle(new Error(`${this.argv.join(' ')} did not finish a batch within ${timeoutMs} ms`));
        child.kill('SIGKILL');
      }, timeoutMs);
      this.pending = { seq: this.seq, resolve, timer };
      for (const piece of this.frame(batch, this.seq)) child.stdin.write(piece);
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    const child = spawn(this.argv[0]!, this.argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.seq = 0;
    this.stderr = '';
    this.restarted();
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (this.child !== child) return; // a replaced process: its batches are all answered
      this.stderr += d;
      const p = this.pending;
      const found = p && this.findMarker(this.stderr, p.seq);
      if (!found) return;
      this.stderr = this.stderr.slice(found.consumed);
      this.settle(found.report);
    });
    child.stdout.resume(); // nothing to read; never let it fill up
    child.stdin.on('error', () => undefined); // reported by 'exit'
    child.on('error', (err) => this.lost(child, `${this.argv[0]}: ${err.message}`));
    child.on('exit', (code, signal) => this.lost(child, `${this.argv.join(' ')} exited (${signal ?? `code ${code}`})`));
    // A session left open must not keep the process alive; a pending batch's timer does.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
    return child;
  }

  private settle(result: string | Error): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.resolve(result);
  }

  private lost(child: ChildProcessWithoutNullStreams, message: string): void {
    // A process ended by close() or replaced: what is pending now belongs to its successor.
    if (this.child !== child) return;
    this.child = undefined;
    const rest = this.stderr.trim();
    this.settle(new Error(rest ? `${message}: ${rest}` : message));
  }
}
