// Starts standalone.ts as a child process inside a network namespace and talks to it:
// "the agent's BFD on a tunnel node" for the lab, the tests and the failover bench.
// A long-running process with a conversation on stdin/stdout, which runCommand (one-shot
// programs) does not cover; arguments are still an array, never a shell.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { builtScript } from './script.js';
import type { BfdSessionSpec, BfdSessionStatus, BfdStateEvent } from './manager.js';

export type ChildStateEvent = BfdStateEvent & { readonly at: number };

/** The compiled standalone runner next to this module (dist/src/bfd/standalone.js). */
export function standaloneScript(): string {
  return builtScript('standalone.js');
}

export class BfdChild {
  readonly states: ChildStateEvent[] = [];
  private readonly waiters: Array<{ match: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }> = [];
  private exited = false;
  readonly stderr: string[] = [];
  /** 'error' events of a threaded child's manager (crashed worker threads). */
  readonly workerErrors: string[] = [];

  /** The BFD process itself (`ip netns exec` forks it as its own child). */
  private bfdPid?: number;

  private constructor(private readonly child: ChildProcess) {}

  /** `threaded`: the sessions on a worker thread (ThreadedBfdManager), as in the agent. */
  static async start(netns: string, opts: { threaded?: boolean } = {}): Promise<BfdChild> {
    const args = ['netns', 'exec', netns, process.execPath, standaloneScript(), ...(opts.threaded ? ['--threaded'] : [])];
    const child = spawn('ip', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const c = new BfdChild(child);
    createInterface({ input: child.stdout! }).on('line', (line) => c.onLine(line));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => c.stderr.push(d));
    child.on('exit', () => (c.exited = true));
    const ready = await c.next((m) => m.event === 'ready', 10000);
    c.bfdPid = Number(ready.pid);
    return c;
  }

  get pid(): number | undefined {
    return this.bfdPid;
  }

  private onLine(line: string): void {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (m.event === 'state') this.states.push(m as unknown as ChildStateEvent);
    if (m.event === 'workerError') this.workerErrors.push(String(m.message));
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i]!;
      if (w.match(m)) {
        this.waiters.splice(i, 1);
        w.resolve(m);
        return;
      }
    }
  }

  /** Resolves with the next stdout message matching `match`. */
  next(match: (m: Record<string, unknown>) => boolean, timeoutMs = 10000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`BFD child: no matching message within ${timeoutMs} ms; stderr: ${this.stderr.join('').slice(-2000)}`)), timeoutMs);
      this.waiters.push({ match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  private async command(cmd: object, reply: string): Promise<Record<string, unknown>> {
    const p = this.next((m) => m.event === reply || m.event === 'error');
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    const m = await p;
    if (m.event === 'error') throw new Error(`BFD child: ${String(m.message)}`);
    return m;
  }

  async setSessions(sessions: readonly BfdSessionSpec[]): Promise<void> {
    await this.command({ op: 'set', sessions }, 'set');
  }

  async adminDown(peer?: string): Promise<void> {
    await this.command({ op: 'adminDown', peer }, 'adminDown');
  }

  async adminUp(peer?: string): Promise<void> {
    await this.command({ op: 'adminUp', peer }, 'adminUp');
  }

  async status(): Promise<BfdSessionStatus[]> {
    return (await this.command({ op: 'status' }, 'status')).sessions as BfdSessionStatus[];
  }

  /** Busies the process's main thread for `ms` (an agent under load); resolves when it is free again. */
  async block(ms: number): Promise<void> {
    await this.command({ op: 'block', ms }, 'block');
  }

  /** Crashes the worker thread of a `threaded` child (it restarts it). */
  async crashWorker(): Promise<void> {
    await this.command({ op: 'crash' }, 'crash');
  }

  /** Waits until `peer`'s session reports `state` (already there counts). */
  async waitForState(peer: string, state: string, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = (await this.status()).find((x) => x.peer === peer);
      if (s?.state === state) return;
      if (Date.now() > deadline) throw new Error(`BFD child: ${peer} not ${state} within ${timeoutMs} ms (now ${s?.state ?? 'absent'})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Simulates a crash: no AdminDown, the peer must detect it. */
  kill(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      // Kill the BFD process we started (its pid, reported at start-up); `ip` then exits.
      try {
        if (this.bfdPid) process.kill(this.bfdPid, 'SIGKILL');
      } catch {
        this.child.kill('SIGKILL');
      }
    });
  }

  async stop(adminDown = false): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.write(`${JSON.stringify({ op: 'stop', adminDown })}\n`);
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}
