// BIRD 2 (Debian `bird2`) as a data-centre router inside a network namespace, a second
// router implementation beside FRR (issue 14). Started directly with its own config,
// control socket and pid file (never the system service), so several can coexist; stopped
// by the PID in its own pid file.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, type CommandRunner } from '../system/index.js';
import { waitFor } from './frr.js';

export interface BirdRouterOptions {
  readonly netns: string;
  /** The configuration after the `log` line this class writes (router id, protocols). */
  readonly conf: string;
  /** Directory for config, socket, pid file and log; default: a fresh temp dir. */
  readonly dir?: string;
}

/** Whether the bird binary is installed (the BIRD tests skip, saying so, when it is not). */
export function birdAvailable(): boolean {
  return ['/usr/sbin/bird', '/usr/bin/bird'].some((p) => existsSync(p));
}

export class BirdRouter {
  readonly dir: string;
  private started = false;

  constructor(
    private readonly opts: BirdRouterOptions,
    private readonly run: CommandRunner = runCommand,
  ) {
    if (opts.dir) mkdirSync(opts.dir, { recursive: true });
    this.dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'kst-bird-'));
  }

  get socket(): string {
    return join(this.dir, 'bird.ctl');
  }

  async start(): Promise<void> {
    writeFileSync(join(this.dir, 'bird.conf'), `log "${join(this.dir, 'bird.log')}" all;\n${this.opts.conf}\n`);
    // bird daemonises once the config is parsed; a config error makes it exit non-zero here.
    await this.run('bird', ['-c', join(this.dir, 'bird.conf'), '-s', this.socket, '-P', join(this.dir, 'bird.pid')], { netns: this.opts.netns, timeoutMs: 15000 });
    this.started = true;
    await waitFor(() => existsSync(this.socket), 5000);
  }

  /** Replaces the configuration (same `log` line) and has bird load it (`birdc configure`). */
  async reconfigure(conf: string): Promise<string> {
    writeFileSync(join(this.dir, 'bird.conf'), `log "${join(this.dir, 'bird.log')}" all;\n${conf}\n`);
    return this.birdc('configure');
  }

  /** Runs one birdc command (e.g. `show protocols all`); returns its output. */
  async birdc(command: string): Promise<string> {
    const r = await this.run('birdc', ['-s', this.socket, ...command.split(' ')], { netns: this.opts.netns, timeoutMs: 10000, allowFailure: true });
    return r.stdout + r.stderr;
  }

  pid(): number | undefined {
    const f = join(this.dir, 'bird.pid');
    if (!existsSync(f)) return undefined;
    const n = Number(readFileSync(f, 'utf8').trim());
    return Number.isFinite(n) && n > 0 ? n : undefined;
  }

  /** Stops bird (SIGTERM, then SIGKILL) by its own pid file and removes the directory. */
  async stop(): Promise<void> {
    const pid = this.started ? this.pid() : undefined;
    if (pid) {
      try {
        process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 50; i++) {
          process.kill(pid, 0);
          execFileSync('sleep', ['0.05']);
        }
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    this.started = false;
    rmSync(this.dir, { recursive: true, force: true });
  }

  logs(): string {
    const f = join(this.dir, 'bird.log');
    return existsSync(f) ? readFileSync(f, 'utf8').slice(-4000) : '';
  }
}
