// The lab's pod workload: answers every TCP connection and UDP datagram with its pod name
// and the client address it saw, so the demo can show which pod served a flow and that
// the client's source address arrived intact.
//
//   node dist/src/lab/echo-server.js --name worker-1-a [--port 8080] [--port 80]
//
// TCP: one line "pod=NAME client=IP:PORT" on connect, then echoes each line it receives;
//      a line "pod? DATA" is answered with "pod=NAME data=DATA".
// UDP: each datagram is answered with "pod=NAME client=IP:PORT data=PAYLOAD".
//
// UDP replies must leave from the address the datagram was sent to (the VIP, for direct
// server return), and Node has no IP_PKTINFO: so besides the wildcard sockets (0.0.0.0 and
// ::), one socket is bound to every local address, re-checked as the agent adds VIPs.
import { createSocket, type Socket } from 'node:dgram';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';

/** Prefix of a TCP line the server answers with its pod name instead of echoing it. */
export const POD_QUERY = 'pod?';

export function greeting(pod: string, address: string, port: number): string {
  return `pod=${pod} client=${address}:${port}`;
}

/** Parses a reply line into its fields ("pod=a client=1.2.3.4:5 data=x" -> {pod, client, data}). */
export function parseGreeting(line: string): { pod?: string; client?: string; data?: string } {
  const out: Record<string, string> = {};
  for (const word of line.trim().split(/\s+/)) {
    const i = word.indexOf('=');
    if (i > 0) out[word.slice(0, i)] = word.slice(i + 1);
  }
  return out;
}

function parseArgs(argv: string[]): { name: string; ports: number[] } {
  let name = '';
  const ports: number[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--name') name = argv[++i] ?? '';
    else if (a === '--port') ports.push(Number(argv[++i]));
    else throw new Error(`echo-server: unknown argument "${a}" (use --name POD [--port N]...)`);
  }
  if (!name) throw new Error('echo-server: --name is required');
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`echo-server: bad --port ${p}`);
  return { name, ports: ports.length ? ports : [8080] };
}

/** TCP on 0.0.0.0 and on :: (IPv6 only, so the two do not collide): IPv4 and IPv6 VIPs. */
async function serveTcp(name: string, port: number): Promise<void> {
  for (const host of ['0.0.0.0', '::']) await serveTcpOn(name, port, host);
}

function serveTcpOn(name: string, port: number, host: string): Promise<void> {
  const server = createServer((sock) => {
    sock.on('error', () => sock.destroy());
    sock.write(`${greeting(name, sock.remoteAddress ?? '?', sock.remotePort ?? 0)}\n`);
    // Whole lines: a line "pod? DATA" is answered "pod=NAME data=DATA", so a long-lived
    // connection can check on every exchange that it still talks to the same pod; any other
    // line comes back as it was.
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      let nl: number;
      let out = '';
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        out += line.startsWith(POD_QUERY) ? `pod=${name} data=${line.slice(POD_QUERY.length).trim().replace(/\s+/g, '_')}\n` : `${line}\n`;
      }
      if (out) sock.write(out);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ...(host === '::' ? { ipv6Only: true } : {}) }, () => resolve());
  });
}

function serveUdp(name: string, port: number): void {
  const sockets = new Map<string, Socket>();
  const bind = (address: string): void => {
    const v6 = address.includes(':');
    const s = createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: true, ...(v6 ? { ipv6Only: true } : {}) });
    s.on('message', (msg, rinfo) => {
      const data = msg.toString('utf8').trim().slice(0, 64).replace(/\s+/g, '_');
      s.send(`${greeting(name, rinfo.address, rinfo.port)}${data ? ` data=${data}` : ''}\n`, rinfo.port, rinfo.address);
    });
    s.on('error', () => {
      sockets.delete(address);
      s.close();
    });
    s.bind(port, address);
    sockets.set(address, s);
  };
  bind('0.0.0.0');
  bind('::');
  const refresh = (): void => {
    const local = new Set<string>();
    for (const list of Object.values(networkInterfaces())) {
      // Link-local IPv6 addresses need a scope to bind; no VIP is one.
      for (const a of list ?? []) if (a.family === 'IPv4' || (a.family === 'IPv6' && a.scopeid === 0)) local.add(a.address);
    }
    for (const a of local) if (!sockets.has(a)) bind(a);
    for (const [a, s] of sockets) {
      if (a !== '0.0.0.0' && a !== '::' && !local.has(a)) {
        sockets.delete(a);
        s.close();
      }
    }
  };
  refresh();
  setInterval(refresh, 500);
}

async function main(): Promise<void> {
  const { name, ports } = parseArgs(process.argv.slice(2));
  process.on('SIGTERM', () => process.exit(0));
  for (const port of ports) {
    serveUdp(name, port);
    await serveTcp(name, port);
  }
  // Printed once the sockets are bound: starters may wait for this line.
  console.log(`echo-server ${name} listening on TCP and UDP ${ports.join(', ')}`);
}

if (process.argv[1]?.endsWith('echo-server.js')) {
  main().catch((err: unknown) => {
    console.error(`echo-server: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
