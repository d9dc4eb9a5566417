// A TCP proxy between an agent and its API server that fails the way networks and load
// balancers in front of a real API server fail (issue 12), switchable while it runs:
//
//   pass       forwards both ways (the default);
//   blackhole  accepts connections and never answers or forwards: every open connection and
//              every new one is wedged (held open, bytes in either direction dropped) and
//              stays wedged after heal(), as a request whose packets were lost never gets
//              its answer; only connections opened after heal() work;
//   stall()    wedges the connections open now (a watch that stays connected but goes
//              silent); new connections pass;
//   reset      resets every open connection and each new one (RST, not FIN);
//   delay      forwards each chunk `ms` later, in order.
//
// A lab and test tool: plain TCP, no TLS termination (it passes TLS through untouched).
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export type Fault = { readonly kind: 'pass' } | { readonly kind: 'blackhole' } | { readonly kind: 'reset' } | { readonly kind: 'delay'; readonly ms: number };

export interface FaultProxyOptions {
  readonly target: { readonly host: string; readonly port: number };
  readonly host?: string;
  /** 0 (default): a free port. */
  readonly port?: number;
}

interface Connection {
  readonly client: net.Socket;
  upstream?: net.Socket;
  wedged: boolean;
  /** Per direction, when the last delayed chunk is due: later chunks never overtake it. */
  dueUp: number;
  dueDown: number;
}

export class FaultProxy {
  private server?: net.Server;
  private fault: Fault = { kind: 'pass' };
  private readonly connections = new Set<Connection>();
  /** Connections accepted since start (tests and benches assert on it). */
  accepted = 0;

  constructor(private readonly options: FaultProxyOptions) {}

  async start(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const c of this.connections) this.close(c);
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get port(): number {
    const a = this.server?.address();
    if (!a || typeof a === 'string') throw new Error('fault proxy: not listening');
    return a.port;
  }

  get url(): string {
    return `http://${this.options.host ?? '127.0.0.1'}:${this.port}`;
  }

  /** Open connections, wedged ones included. */
  get openConnections(): number {
    return this.connections.size;
  }

  /** Open connections that are wedged: requests held open that will never be answered. */
  get wedgedConnections(): number {
    let n = 0;
    for (const c of this.connections) if (c.wedged) n += 1;
    return n;
  }

  /** A client configuration that reaches the API server behind this proxy through it. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'via-fault-proxy', server: this.url, skipTLSVerify: true }, { name: 'anonymous' });
    return kc;
  }

  get current(): Fault {
    return this.fault;
  }

  /** Switches the fault; it applies to open connections at once and to every new one. */
  set(fault: Fault): void {
    if (fault.kind === 'delay' && !(fault.ms >= 0)) throw new Error(`fault proxy: delay must be >= 0 ms, got ${fault.ms}`);
    this.fault = fault;
    if (fault.kind === 'blackhole') for (const c of this.connections) c.wedged = true;
    if (fault.kind === 'reset') for (const c of this.connections) this.close(c, true);
  }

  /** Back to pass: new connections work; connections wedged meanwhile stay wedged. */
  heal(): void {
    this.set({ kind: 'pass' });
  }

  /** Wedges every connection open now (silent, held open); returns how many. */
  stall(): number {
    for (const c of this.connections) c.wedged = true;
    return this.connections.size;
  }

  private accept(client: net.Socket): void {
    this.accepted += 1;
    const c: Connection = { client, wedged: false, dueUp: 0, dueDown: 0 };
    this.connections.add(c);
    client.on('error', () => this.close(c));
    client.on('close', () => this.close(c));
    if (this.fault.kind === 'reset') {
      this.close(c, true);
      return;
    }
    if (this.fault.kind === 'blackhole') {
      c.wedged = true;
      client.on('data', () => undefined); // read and drop: the client's writes never block
      return;
    }
    const upstream = net.connect(this.options.target.port, this.options.target.host);
    c.upstream = upstream;
    // A wedged connection stays open towards the client even when the server ends its side:
    // the client of a wedged proxy never learns that the server gave up.
    const upstreamGone = () => (c.wedged ? upstream.destroy() : this.close(c));
    upstream.on('error', upstreamGone);
    upstream.on('close', upstreamGone);
    client.on('data', (chunk: Buffer) => this.forward(c, chunk, upstream, client, 'dueUp'));
    upstream.on('data', (chunk: Buffer) => this.forward(c, chunk, client, upstream, 'dueDown'));
    client.on('end', () => this.endLater(c, upstream, 'dueUp'));
    upstream.on('end', () => this.endLater(c, client, 'dueDown'));
  }

  private forward(c: Connection, chunk: Buffer, to: net.Socket, from: net.Socket, due: 'dueUp' | 'dueDown'): void {
    if (c.wedged) return;
    const delay = this.fault.kind === 'delay' ? this.fault.ms : 0;
    const write = () => {
      if (c.wedged || to.destroyed) return;
      // Backpressure: a slow reader slows the writer instead of filling our memory.
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    };
    const now = Date.now();
    if (delay === 0 && c[due] <= now) return write();
    c[due] = Math.max(now + delay, c[due]);
    setTimeout(write, c[due] - now);
  }

  private endLater(c: Connection, to: net.Socket, due: 'dueUp' | 'dueDown'): void {
    if (c.wedged) return;
    setTimeout(() => {
      if (!c.wedged && !to.destroyed) to.end();
    }, Math.max(0, c[due] - Date.now()));
  }

  private close(c: Connection, reset = false): void {
    if (!this.connections.delete(c)) return;
    for (const s of [c.client, c.upstream]) {
      if (!s || s.destroyed) continue;
      if (reset) s.resetAndDestroy();
      else s.destroy();
    }
  }
}
