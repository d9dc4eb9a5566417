// Runs system programs (ip, nft, gobgpd...) with argument arrays: never through a shell,
// so no value from a Service, annotation or config can be interpreted as shell syntax.
import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Run inside this named network namespace (`ip netns exec NAME ...`). */
  readonly netns?: string;
  /**
   * Run inside the network namespace at this path (`nsenter --net=PATH -- ...`), for
   * namespaces known only as /proc/PID/ns/net. Ignored when `netns` is set.
   */
  readonly netnsPath?: string;
  /** Written to the program's stdin (batch files for `ip -batch -`, `nft -f -`). */
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Do not throw on a non-zero exit; the caller inspects `code`. */
  readonly allowFailure?: boolean;
  /**
   * Hands stdout to this callback chunk by chunk instead of collecting it (RunResult.stdout
   * is then empty): for outputs too large to hold as one string (a readback of millions of
   * routes is hundreds of MB of text, near V8's string length limit).
   */
  readonly onStdout?: (chunk: string) => void;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult,
  ) {
    super(`${argv.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'CommandError';
  }
}

/** The one way the project starts a program. Injected so tests can count calls. */
export type CommandRunner = (file: string, args: readonly string[], opts?: RunOptions) => Promise<RunResult>;

export const runCommand: CommandRunner = (file, args, opts = {}) => {
  const argv = opts.netns
    ? ['ip', 'netns', 'exec', opts.netns, file, ...args]
    : opts.netnsPath
      ? ['nsenter', `--net=${opts.netnsPath}`, '--', file, ...args]
      : [file, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = opts.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
      : undefined;
    const onStdout = opts.onStdout;
    child.stdout.setEncoding('utf8').on('data', onStdout ? (d: string) => onStdout(d) : (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(new CommandError(argv, { code: -1, stdout, stderr: String(err) }));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const result = { code: code ?? (signal ? 128 : -1), stdout, stderr: signal ? `${stderr}killed by ${signal}` : stderr };
      if (result.code !== 0 && !opts.allowFailure) reject(new CommandError(argv, result));
      else resolve(result);
    });
    child.stdin.on('error', () => undefined); // program exited before reading stdin; 'close' reports it
    child.stdin.end(opts.input ?? '');
  });
};
