// Runs a gobgpd inside a network namespace for the tests, the benchmark and the lab: the
// stand-in for the DaemonSet's sidecar container. Its gRPC API listens on a unix socket
// in a temporary directory, which a client in any namespace can reach (a loopback TCP
// port inside the namespace would be unreachable from outside it). gobgpd stays in the
// foreground, so it is spawned (argument array, no shell) rather than run to completion;
// it is only ever signalled by its own PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Our running gobgpds: killed (by PID) if the test process exits without destroy(). */
const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

export interface GobgpdProcessOptions {
  readonly netns: string;
  readonly binary?: string;
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export class GobgpdProcess {
  readonly dir: string;
  readonly socketPath: string;
  private child: ChildProcess | undefined;
  private output = '';

  constructor(private readonly opts: GobgpdProcessOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'kst-gobgpd-'));
    this.socketPath = join(this.dir, 'api.sock');
  }

  /** gRPC target for GobgpClient. */
  get target(): string {
    return `unix://${this.socketPath}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts gobgpd and waits until its API socket exists. */
  async start(timeoutMs = 5000): Promise<void> {
    if (this.child) throw new Error(`gobgpd in ${this.opts.netns} already running (pid ${this.child.pid})`);
    // A SIGKILLed gobgpd leaves its socket behind, and a new one cannot listen on it.
    rmSync(this.socketPath, { force: true });
    // `ip netns exec` execs gobgpd, so the PID we hold is gobgpd's own.
    const child = spawn('ip', ['netns', 'exec', this.opts.netns, this.opts.binary ?? 'gobgpd',
      '--api-hosts', this.target, '--pprof-disable', '--log-plain', '--log-level', this.opts.logLevel ?? 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    track(child);
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString()).slice(-20000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(this.socketPath)) {
      if (!this.child) throw new Error(`gobgpd in ${this.opts.netns} exited at start:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`gobgpd in ${this.opts.netns}: no API socket after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends `signal` to our gobgpd and waits for it to exit (SIGKILL after 3 s). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) {
      this.child = undefined;
      return;
    }
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
    this.child = undefined;
  }

  /** Stops gobgpd and removes its directory. */
  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  logs(): string {
    return this.output;
  }
}
