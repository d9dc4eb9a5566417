/**
 * The one way a guest kernel process (UML or QEMU) is started, watched and ended: under
 * `timeout`, detached, its console collected, and every process of it killed afterwards.
 */
import { spawn } from 'node:child_process';

const KILL_GRACE_MS = 3000;

export interface GuestRun {
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly console: string;
  /** When the console first showed `initMarker`. */
  readonly bootMs?: number;
  readonly elapsedMs: number;
}

export interface GuestProcess {
  /** Names the caller in errors: `runInUml`, `runInQemu`. */
  readonly who: string;
  readonly binary: string;
  readonly args: readonly string[];
  readonly timeoutMs: number;
  readonly initMarker: string;
  /** The guest's processes that may outlive `timeout` (they are found by a unique word). */
  readonly leftoverPids: () => number[];
  readonly env?: NodeJS.ProcessEnv;
}

export function runGuestProcess(p: GuestProcess): Promise<GuestRun> {
  const seconds = Math.max(1, Math.ceil(p.timeoutMs / 1000)); // `timeout` counts whole seconds
  // TERM first: UML's handler reaps its helpers and its uml_dir; KILL if the guest hangs.
  const argv = ['-s', 'TERM', '-k', String(Math.ceil(KILL_GRACE_MS / 1000)), String(seconds), p.binary, ...p.args];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Detached: a Ctrl-C or SIGTERM meant for jest does not reach the guest half-way; the
    // guest still ends at its deadline, through `timeout`, even if this process is gone.
    const child = spawn('timeout', argv, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...(p.env ? { env: p.env } : {}) });
    let consoleText = '';
    let bootMs: number | undefined;
    const onData = (d: string): void => {
      consoleText = (consoleText + d).slice(-64_000);
      if (bootMs === undefined && consoleText.includes(p.initMarker)) bootMs = Date.now() - started;
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    // A guest may make its own session (linux.uml does), so `timeout`'s group is not all of
    // it: the rest is found by its unique word and killed by PID.
    const killGuest = (): void => {
      const running = child.pid !== undefined && child.exitCode === null && child.signalCode === null;
      for (const pid of [...(running && child.pid !== undefined ? [child.pid] : []), ...p.leftoverPids()]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    };
    const backstop = setTimeout(killGuest, seconds * 1000 + 2 * KILL_GRACE_MS);
    child.on('error', (err) => {
      clearTimeout(backstop);
      reject(new Error(`${p.who}: cannot start ${p.binary} through timeout: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(backstop);
      killGuest(); // helpers orphaned by a crashed or killed kernel, if any
      const elapsedMs = Date.now() - started;
      // 124: `timeout` stopped it with TERM; 137 or a signal: with KILL. Only at the deadline,
      // so a guest killed by something else is reported as a failed guest, not a timeout.
      const timedOut = elapsedMs >= seconds * 1000 - 100 && (code === 124 || code === 137 || signal !== null);
      resolve({ exitCode: code, timedOut, console: consoleText, bootMs, elapsedMs });
    });
  });
}
