// The agent's local HTTP endpoint (config api.listen): /metrics for Prometheus, /healthz
// and /readyz for the kubelet's probes, /status for `kst status`. Read-only, no
// authentication: it listens on loopback by default and exposes nothing that `ip`, `nft`
// and the Kubernetes API do not already show to whoever runs on the node.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';
import { metricsRegistry } from './metrics.js';
import type { StatusReport } from './status.js';

export interface ReadinessResult {
  readonly ok: boolean;
  /** Shown on /readyz: why it is not ready ("gobgpd not connected"), or what is ready. */
  readonly detail?: string;
}

export type ReadinessCheck = () => ReadinessResult | Promise<ReadinessResult>;
export type StatusProvider = () => StatusReport | Promise<StatusReport>;

export interface ObserveServerOptions {
  /** "HOST:PORT", "[IPv6]:PORT" or ":PORT" (all addresses); port 0 picks a free one. */
  readonly listen: string;
  readonly registry?: Registry;
  readonly logger?: Logger;
  /** /healthz fails when the event loop was blocked longer than this; default 5 s. */
  readonly maxEventLoopLagMs?: number;
  /** How often the event loop's lag is sampled; default 1 s. */
  readonly lagSampleMs?: number;
  /** A readiness check or status provider taking longer than this counts as failed; default 2 s. */
  readonly callbackTimeoutMs?: number;
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses config api.listen; the error names the field and the value. */
export function parseListenAddress(listen: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new Error(`api.listen: expected HOST:PORT, [IPv6]:PORT or :PORT, got ${JSON.stringify(listen)}`);
  }
  const host = m[1] ?? (m[2] || '::');
  return { host, port };
}

export class ObserveServer {
  private readonly registry: Registry;
  private readonly logger: Logger;
  private readonly checks = new Map<string, ReadinessCheck>();
  private readonly liveness = new Map<string, () => ReadinessResult>();
  private statusProvider?: StatusProvider;
  private server?: Server;
  private lagTimer?: NodeJS.Timeout;
  private lastLagMs = 0;
  private readonly maxLagMs: number;
  private readonly lagSampleMs: number;
  private readonly callbackTimeoutMs: number;

  constructor(private readonly opts: ObserveServerOptions) {
    parseListenAddress(opts.listen); // fail at construction, not at start
    this.registry = opts.registry ?? metricsRegistry;
    this.logger = (opts.logger ?? silentLogger()).child({ component: 'observe' });
    this.maxLagMs = opts.maxEventLoopLagMs ?? 5000;
    this.lagSampleMs = opts.lagSampleMs ?? 1000;
    this.callbackTimeoutMs = opts.callbackTimeoutMs ?? 2000;
  }

  /** Registers (or replaces) a named check; /readyz is ready when every check is ok. */
  addReadinessCheck(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /**
   * Registers a named liveness check (synchronous: /healthz must answer even when the
   * agent is busy); /healthz fails when the event loop was blocked or any check fails.
   */
  addLivenessCheck(name: string, check: () => ReadinessResult): void {
    this.liveness.set(name, check);
  }

  removeReadinessCheck(name: string): void {
    this.checks.delete(name);
  }

  setStatusProvider(provider: StatusProvider): void {
    this.statusProvider = provider;
  }

  /** Starts listening; resolves with the bound address (useful with port 0). */
  async start(): Promise<ListenAddress> {
    if (this.server) throw new Error('ObserveServer already started');
    const { host, port } = parseListenAddress(this.opts.listen);
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.logger.error('request failed', { path: req.url, error: String(err) });
        if (!res.headersSent) send(res, 500, 'text/plain', `internal error: ${String(err)}\n`);
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`api.listen ${this.opts.listen}: ${err.message}`)));
      server.listen(port, host, () => resolve());
    });
    server.on('error', (err) => this.logger.error('observe endpoint error', { error: err.message }));
    this.server = server;
    this.startLagSampler();
    const bound = server.address() as AddressInfo;
    this.logger.info('observe endpoint listening', { address: bound.address, port: bound.port });
    return { host: bound.address, port: bound.port };
  }

  async stop(): Promise<void> {
    if (this.lagTimer) clearInterval(this.lagTimer);
    this.lagTimer = undefined;
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * A timer that should fire every lagSampleMs: how late it fires is how long the event
   * loop was blocked. Timers run before I/O in each loop turn, so after a block the late
   * sample is recorded before the probe's request is answered.
   */
  private startLagSampler(): void {
    let expected = Date.now() + this.lagSampleMs;
    this.lagTimer = setInterval(() => {
      const now = Date.now();
      this.lastLagMs = Math.max(0, now - expected);
      expected = now + this.lagSampleMs;
    }, this.lagSampleMs);
    this.lagTimer.unref();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'text/plain', 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/metrics':
        send(res, 200, this.registry.contentType, await this.registry.metrics());
        return;
      case '/healthz':
        return this.healthz(res);
      case '/readyz':
        return this.readyz(res);
      case '/status':
        return this.status(res);
      default:
        send(res, 404, 'text/plain', `not found: ${path} (try /metrics, /healthz, /readyz, /status)\n`);
    }
  }

  private healthz(res: ServerResponse): void {
    const lagOk = this.lastLagMs <= this.maxLagMs;
    const checks = [...this.liveness].map(([name, check]) => {
      try {
        const r = check();
        return { name, ok: r.ok, ...(r.detail !== undefined ? { detail: r.detail } : {}) };
      } catch (err) {
        return { name, ok: false, detail: err instanceof Error ? err.message : String(err) };
      }
    });
    const failing = checks.filter((c) => !c.ok);
    const ok = lagOk && failing.length === 0;
    sendJson(res, ok ? 200 : 503, {
      status: ok ? 'ok' : !lagOk ? 'event loop blocked' : `not making progress: ${failing.map((c) => c.detail ?? c.name).join('; ')}`,
      ...(checks.length ? { checks } : {}),
      eventLoopLagMs: this.lastLagMs,
      maxEventLoopLagMs: this.maxLagMs,
      uptimeSeconds: Math.round(process.uptime()),
    });
  }

  private async readyz(res: ServerResponse): Promise<void> {
    const results = await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        try {
          const r = await this.bounded(`readiness check ${name}`, check);
          return { name, ok: r.ok, ...(r.detail !== undefined ? { detail: r.detail } : {}) };
        } catch (err) {
          return { name, ok: false, detail: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
    const ready = results.every((r) => r.ok);
    sendJson(res, ready ? 200 : 503, { ready, checks: results });
  }

  private async status(res: ServerResponse): Promise<void> {
    const provider = this.statusProvider;
    if (!provider) {
      sendJson(res, 503, { error: 'status not available yet: the agent is starting' });
      return;
    }
    let report: StatusReport;
    try {
      report = await this.bounded('status provider', provider);
    } catch (err) {
      sendJson(res, 500, { error: `status provider failed: ${err instanceof Error ? err.message : String(err)}` });
      return;
    }
    sendJson(res, 200, { ...report, generatedAt: report.generatedAt ?? new Date().toISOString() });
  }

  /** A probe must answer even when a callback hangs: a hung check is a failed check. */
  private bounded<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${this.callbackTimeoutMs} ms`)), this.callbackTimeoutMs);
    });
    return Promise.race([Promise.resolve().then(fn), timeout]).finally(() => clearTimeout(timer));
  }
}

function send(res: ServerResponse, code: number, contentType: string, body: string): void {
  res.writeHead(code, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: ServerResponse, code: number, value: unknown): void {
  send(res, code, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
}
