// A TCP proxy on loopback that can black-hole the path to the API server the way a wedged
// load balancer or a dropping firewall does: connections are accepted (or stay open) and
// nothing is ever answered. Tests point one client at it and everything else directly
// at the server, so "the leader's API path is black-holed" is literal.
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

interface Pair {
  readonly client: net.Socket;
  upstream?: net.Socket;
  /** Bytes in either direction are dropped (the black-out reached this connection). */
  frozen: boolean;
}

export class BlackholeProxy {
  private server?: net.Server;
  private readonly pairs = new Set<Pair>();
  private blackholed = false;

  constructor(private readonly target: { readonly host: string; readonly port: number }) {}

  async start(): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as net.AddressInfo).port}`;
  }

  /** A client configuration that reaches the API server through this proxy. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'via-proxy', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'anonymous' }],
      contexts: [{ name: 'via-proxy', cluster: 'via-proxy', user: 'anonymous' }],
      currentContext: 'via-proxy',
    });
    return kc;
  }

  /** Connections held open with requests that will never be answered. */
  get hanging(): number {
    return [...this.pairs].filter((p) => p.frozen && !p.client.destroyed).length;
  }

  /** From now on nothing passes: open connections go silent, new ones are accepted and ignored. */
  blackhole(): void {
    this.blackholed = true;
    for (const p of this.pairs) p.frozen = true;
  }

  /**
   * Traffic passes again. Connections that lived through the black-out lost bytes, so they
   * are reset (as their peers' retransmission timeouts would); new ones work.
   */
  heal(): void {
    this.blackholed = false;
    for (const p of [...this.pairs]) if (p.frozen) this.drop(p);
  }

  async stop(): Promise<void> {
    for (const p of [...this.pairs]) this.drop(p);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  private accept(client: net.Socket): void {
    const pair: Pair = { client, frozen: this.blackholed };
    this.pairs.add(pair);
    client.on('error', () => this.drop(pair));
    client.on('close', () => this.drop(pair));
    // Always read: a black-holed request is accepted and swallowed, never refused.
    client.on('data', (d) => {
      if (!pair.frozen) pair.upstream?.write(d);
    });
    if (pair.frozen) return;
    const upstream = net.connect(this.target.port, this.target.host);
    pair.upstream = upstream;
    upstream.on('error', () => this.drop(pair));
    upstream.on('close', () => this.drop(pair));
    upstream.on('data', (d) => {
      if (!pair.frozen) client.write(d);
    });
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}
