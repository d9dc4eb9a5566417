// Runs FRR (zebra, bfdd, bgpd) as a data-centre router inside a network namespace,
// started directly with its own files (never the system service) so several routers
// can coexist. Used by the lab and by the BGP/BFD tests.
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { runCommand, type CommandRunner } from '../system/index.js';

export interface FrrRouterOptions {
  readonly netns: string;
  /** bgpd configuration body (after the header FRR needs); empty = no bgpd. */
  readonly bgpdConf: string;
  /** bfdd configuration body, e.g. BFD profiles; empty = bfdd with no config. */
  readonly bfddConf?: string;
  /** Extra zebra configuration. */
  readonly zebraConf?: string;
  readonly withBfd?: boolean;
  /** Directory for config, pid files, logs and vty sockets; default: a fresh temp dir. */
  readonly dir?: string;
}

const FRR_BIN = '/usr/lib/frr';

function frrIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('frr:'));
  if (!line) throw new Error('user "frr" not found: install the Debian package frr');
  const parts = line.split(':');
  return { uid: Number(parts[2]), gid: Number(parts[3]) };
}

export class FrrRouter {
  readonly dir: string;
  private started = false;

  constructor(
    private readonly opts: FrrRouterOptions,
    private readonly run: CommandRunner = runCommand,
  ) {
    if (opts.dir) mkdirSync(opts.dir, { recursive: true });
    this.dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'kst-frr-'));
  }

  private daemons(): string[] {
    const d = ['zebra'];
    if (this.opts.withBfd ?? true) d.push('bfdd');
    if (this.opts.bgpdConf) d.push('bgpd');
    return d;
  }

  async start(): Promise<void> {
    const { uid, gid } = frrIds();
    chmodSync(this.dir, 0o755);
    const header = 'frr defaults datacenter\nhostname kst-router\nlog file ' ;
    writeFileSync(join(this.dir, 'zebra.conf'), `${header}${join(this.dir, 'zebra.log')}\n${this.opts.zebraConf ?? ''}\n`);
    writeFileSync(join(this.dir, 'bfdd.conf'), `${header}${join(this.dir, 'bfdd.log')}\n${this.opts.bfddConf ?? ''}\n`);
    writeFileSync(join(this.dir, 'bgpd.conf'), `${header}${join(this.dir, 'bgpd.log')}\n${this.opts.bgpdConf}\n`);
    writeFileSync(join(this.dir, 'vtysh.conf'), '');
    for (const f of ['', 'zebra.conf', 'bfdd.conf', 'bgpd.conf', 'vtysh.conf']) chownSync(join(this.dir, f), uid, gid);
    for (const daemon of this.daemons()) {
      await this.run(
        `${FRR_BIN}/${daemon}`,
        ['-d', '-f', join(this.dir, `${daemon}.conf`), '-i', join(this.dir, `${daemon}.pid`),
          '-z', join(this.dir, 'zserv.api'), '--vty_socket', this.dir, '-A', '127.0.0.1', '-P', '0'],
        { netns: this.opts.netns, timeoutMs: 15000 },
      );
      // zebra must be listening before the others connect.
      if (daemon === 'zebra') await waitFor(() => existsSync(join(this.dir, 'zserv.api')), 5000);
    }
    this.started = true;
  }

  /** Runs vtysh commands against this router; returns the output. */
  async vtysh(...commands: string[]): Promise<string> {
    const args = ['--vty_socket', this.dir];
    for (const c of commands) args.push('-c', c);
    const r = await this.run('vtysh', args, { netns: this.opts.netns, timeoutMs: 10000, allowFailure: true });
    return r.stdout + r.stderr;
  }

  async vtyshJson<T = unknown>(command: string): Promise<T> {
    return JSON.parse(await this.vtysh(command)) as T;
  }

  /** Kernel routes of the router's namespace (`ip -j route`), optionally for one table/family. */
  async kernelRoutes(family: 4 | 6 = 4): Promise<Array<{ dst: string; protocol?: string; gateway?: string; nexthops?: Array<{ gateway: string }> }>> {
    const r = await this.run('ip', [`-${family}`, '-j', 'route', 'show'], { netns: this.opts.netns });
    return JSON.parse(r.stdout || '[]');
  }

  pid(daemon: string): number | undefined {
    const f = join(this.dir, `${daemon}.pid`);
    if (!existsSync(f)) return undefined;
    const n = Number(readFileSync(f, 'utf8').trim());
    return Number.isFinite(n) && n > 0 ? n : undefined;
  }

  /** Stops the daemons (SIGTERM, then SIGKILL) and removes the directory. */
  async stop(): Promise<void> {
    if (this.started) {
      for (const daemon of this.daemons().reverse()) {
        const pid = this.pid(daemon);
        if (pid) killAndWait(pid);
      }
    }
    this.started = false;
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The daemons' log files, for test failure messages. */
  logs(): string {
    return this.daemons()
      .map((d) => {
        const f = join(this.dir, `${d}.log`);
        return existsSync(f) ? `--- ${d}.log\n${readFileSync(f, 'utf8').slice(-4000)}` : '';
      })
      .join('\n');
  }
}

function killAndWait(pid: number): void {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    execFileSync('sleep', ['0.05']);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
