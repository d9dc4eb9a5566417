// The bearer token for each request. A fixed token is just that; a token file is re-read
// once a minute (client-go's cached file token source), because the kubelet rotates bound
// service-account tokens; an exec plugin is run (argument array, never a shell) and its
// token kept until its expirationTimestamp. A 401 drops what is cached, so the next
// request fetches a fresh token.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Auth, ExecPlugin } from './access.js';
import { UnsupportedKubeconfigError } from './access.js';

/** client-go re-reads a token file after a minute. */
export const TOKEN_FILE_REREAD_MS = 60_000;
/** An exec plugin that takes longer than this is killed (it may prompt, hang on a network call...). */
export const EXEC_PLUGIN_TIMEOUT_MS = 30_000;

interface Cached {
  readonly token: string;
  /** Epoch ms after which it is fetched again; Infinity: until invalidated. */
  readonly until: number;
}

export class BearerToken {
  private cached?: Cached;
  private pending?: Promise<Cached>;

  constructor(
    private readonly auth: Auth,
    private readonly now: () => number = Date.now,
  ) {}

  /** The Authorization header value, or undefined for anonymous access. */
  async header(): Promise<string | undefined> {
    if (this.auth.kind === 'none') return undefined;
    if (this.auth.kind === 'token') return `Bearer ${this.auth.token}`;
    const cached = this.cached;
    if (cached && this.now() < cached.until) return `Bearer ${cached.token}`;
    // One fetch at a time: concurrent requests share it.
    this.pending ??= this.fetch().finally(() => (this.pending = undefined));
    try {
      this.cached = await this.pending;
    } catch (err) {
      // A token file being replaced can be briefly unreadable: keep using the last token.
      if (this.auth.kind === 'token-file' && cached) return `Bearer ${cached.token}`;
      throw err;
    }
    return `Bearer ${this.cached.token}`;
  }

  /** The server said 401: whatever is cached is not accepted any more. */
  invalidate(): void {
    if (this.auth.kind === 'exec') this.cached = undefined;
    else if (this.auth.kind === 'token-file' && this.cached) this.cached = { token: this.cached.token, until: 0 };
  }

  private async fetch(): Promise<Cached> {
    if (this.auth.kind === 'token-file') {
      const path = this.auth.path;
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        throw new Error(`token file ${path}: ${(err as Error).message}`, { cause: err });
      }
      const token = text.trim();
      if (!token) throw new Error(`token file ${path} is empty`);
      return { token, until: this.now() + TOKEN_FILE_REREAD_MS };
    }
    if (this.auth.kind === 'exec') return runExecPlugin(this.auth.exec);
    throw new Error(`no token to fetch for auth ${this.auth.kind}`);
  }
}

/** Runs the plugin once and reads its ExecCredential. */
export async function runExecPlugin(exec: ExecPlugin): Promise<Cached> {
  const what = `exec credential plugin ${exec.command}`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const e of exec.env) env[e.name] = e.value;
  // What the plugin may read about the request (the spec's KUBERNETES_EXEC_INFO).
  env.KUBERNETES_EXEC_INFO = JSON.stringify({ apiVersion: exec.apiVersion, kind: 'ExecCredential', spec: { interactive: false } });
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(exec.command, [...exec.args], { env, timeout: EXEC_PLUGIN_TIMEOUT_MS, maxBuffer: 1 << 20, encoding: 'utf8' }, (err, out, stderr) => {
      if (err) reject(new Error(`${what} failed: ${err.message}${stderr ? `: ${stderr.trim().slice(0, 500)}` : ''}`, { cause: err }));
      else resolve(out);
    });
  });
  let cred: { apiVersion?: unknown; kind?: unknown; status?: { token?: unknown; expirationTimestamp?: unknown; clientCertificateData?: unknown } };
  try {
    cred = JSON.parse(stdout) as typeof cred;
  } catch {
    throw new Error(`${what}: its output is not JSON (an ExecCredential was expected)`);
  }
  if (cred.kind !== 'ExecCredential') throw new Error(`${what}: printed kind ${String(cred.kind)}, not ExecCredential`);
  if (cred.apiVersion !== exec.apiVersion) throw new Error(`${what}: printed apiVersion ${String(cred.apiVersion)}, but the kubeconfig asks for ${exec.apiVersion}`);
  const status = cred.status ?? {};
  if (status.clientCertificateData !== undefined) throw new UnsupportedKubeconfigError(`${what}: client certificates from an exec plugin are not supported by the agent's client (a token is)`);
  if (typeof status.token !== 'string' || !status.token) throw new Error(`${what}: the ExecCredential has no status.token`);
  let until = Infinity;
  if (status.expirationTimestamp !== undefined) {
    until = typeof status.expirationTimestamp === 'string' ? Date.parse(status.expirationTimestamp) : NaN;
    if (!Number.isFinite(until)) throw new Error(`${what}: status.expirationTimestamp ${JSON.stringify(status.expirationTimestamp)} is not an RFC 3339 time`);
  }
  return { token: status.token, until };
}
