// The lab's client-side tool, run inside a namespace (`ip netns exec NS node probe.js ...`)
// because `kst lab` itself runs in the root namespace, which the lab is not connected to.
// Prints one JSON object on stdout.
//
//   probe.js flows  --target IP:PORT [--count N] [--proto tcp|udp] [--timeout MS] [--concurrency N]
//   probe.js stream --target IP:PORT [--flows N] [--interval MS] [--duration MS] [--source-port P]
//   probe.js http   --method GET|PUT --url URL   (request body from stdin for PUT)
import { createSocket } from 'node:dgram';
import { connect, isIP } from 'node:net';
import { parseGreeting } from './echo-server.js';

export interface FlowResult {
  readonly ok: boolean;
  readonly pod?: string;
  readonly client?: string;
  readonly error?: string;
}

export interface FlowsReport {
  readonly count: number;
  readonly ok: number;
  readonly failed: number;
  readonly perPod: Record<string, number>;
  /** Client addresses the pods saw (address only, no port). */
  readonly clientAddresses: string[];
  readonly errors: string[];
}

export interface StreamFlow {
  readonly localPort: number;
  readonly sent: number;
  readonly received: number;
  /** Pods that answered, in order of first answer. */
  readonly pods: string[];
  /** Longest time without an answer (including from the start and until the end). */
  readonly maxGapMs: number;
}

export interface StreamReport {
  readonly durationMs: number;
  readonly intervalMs: number;
  readonly flows: StreamFlow[];
}

type Args = Record<string, string>;

function parseArgs(argv: string[]): { mode: string; args: Args } {
  const [mode = '', ...rest] = argv;
  const args: Args = {};
  for (let i = 0; i < rest.length; i += 2) {
    const k = rest[i];
    if (!k?.startsWith('--') || rest[i + 1] === undefined) throw new Error(`probe: expected --option value, got "${k ?? ''}"`);
    args[k.slice(2)] = rest[i + 1]!;
  }
  return { mode, args };
}

/** IP:PORT, an IPv6 address with or without brackets ([2001:db8::1]:80 or 2001:db8::1:80). */
function target(args: Args): { host: string; port: number } {
  const t = args.target ?? '';
  const i = t.lastIndexOf(':');
  const port = Number(t.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port)) throw new Error(`probe: --target must be IP:PORT, got "${t}"`);
  return { host: t.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port };
}

const udpType = (host: string): 'udp4' | 'udp6' => (isIP(host) === 6 ? 'udp6' : 'udp4');

function num(args: Args, key: string, def: number): number {
  const v = args[key] === undefined ? def : Number(args[key]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`probe: --${key} must be a non-negative number`);
  return v;
}

function tcpFlow(host: string, port: number, timeoutMs: number): Promise<FlowResult> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let buf = '';
    const done = (r: FlowResult): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        const g = parseGreeting(buf.slice(0, nl));
        done({ ok: true, ...(g.pod ? { pod: g.pod } : {}), ...(g.client ? { client: g.client } : {}) });
      }
    });
    sock.on('error', (e) => done({ ok: false, error: e.message }));
  });
}

function udpFlow(host: string, port: number, timeoutMs: number): Promise<FlowResult> {
  return new Promise((resolve) => {
    const s = createSocket(udpType(host));
    const done = (r: FlowResult): void => {
      clearTimeout(timer);
      s.close();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs);
    s.on('message', (msg) => {
      const g = parseGreeting(msg.toString('utf8'));
      done({ ok: true, ...(g.pod ? { pod: g.pod } : {}), ...(g.client ? { client: g.client } : {}) });
    });
    s.on('error', (e) => done({ ok: false, error: e.message }));
    s.connect(port, host, () => s.send('probe'));
  });
}

export function summarise(results: readonly FlowResult[]): FlowsReport {
  const perPod: Record<string, number> = {};
  const clients = new Set<string>();
  const errors: string[] = [];
  for (const r of results) {
    if (r.ok && r.pod) perPod[r.pod] = (perPod[r.pod] ?? 0) + 1;
    if (r.client) clients.add(r.client.slice(0, r.client.lastIndexOf(':')));
    if (r.error && errors.length < 5) errors.push(r.error);
  }
  const ok = results.filter((r) => r.ok).length;
  return { count: results.length, ok, failed: results.length - ok, perPod, clientAddresses: [...clients].sort(), errors };
}

async function flows(args: Args): Promise<FlowsReport> {
  const { host, port } = target(args);
  const count = num(args, 'count', 32);
  const timeoutMs = num(args, 'timeout', 2000);
  const concurrency = Math.max(1, num(args, 'concurrency', 8));
  const proto = args.proto ?? 'tcp';
  if (proto !== 'tcp' && proto !== 'udp') throw new Error(`probe: --proto must be tcp or udp, got "${proto}"`);
  const results: FlowResult[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next += 1;
      results.push(await (proto === 'tcp' ? tcpFlow(host, port, timeoutMs) : udpFlow(host, port, timeoutMs)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return summarise(results);
}

async function stream(args: Args): Promise<StreamReport> {
  const { host, port } = target(args);
  const nFlows = Math.max(1, num(args, 'flows', 16));
  const intervalMs = Math.max(1, num(args, 'interval', 20));
  const durationMs = num(args, 'duration', 5000);
  // Flow i from source port P + i (default: ephemeral ports, the kernel's choice).
  const firstPort = num(args, 'source-port', 0);
  const start = Date.now();
  const flowsOut = await Promise.all(
    Array.from({ length: nFlows }, (_, i) => new Promise<StreamFlow>((resolve) => {
      const s = createSocket(udpType(host));
      if (firstPort > 0) s.bind(firstPort + i);
      let sent = 0;
      let received = 0;
      let last = start;
      let maxGap = 0;
      const pods: string[] = [];
      s.on('message', (msg) => {
        const now = Date.now();
        received += 1;
        maxGap = Math.max(maxGap, now - last);
        last = now;
        const pod = parseGreeting(msg.toString('utf8')).pod;
        if (pod && !pods.includes(pod)) pods.push(pod);
      });
      s.on('error', () => undefined); // ICMP unreachable while a path is down: just a gap
      s.connect(port, host, () => {
        const localPort = s.address().port;
        const timer = setInterval(() => {
          s.send(String(sent), () => undefined);
          sent += 1;
        }, intervalMs);
        setTimeout(() => {
          clearInterval(timer);
          // Let the last answers arrive before closing.
          setTimeout(() => {
            maxGap = Math.max(maxGap, Date.now() - 200 - last);
            s.close();
            resolve({ localPort, sent, received, pods, maxGapMs: maxGap });
          }, 200);
        }, durationMs);
      });
    })),
  );
  return { durationMs, intervalMs, flows: flowsOut };
}

async function http(args: Args): Promise<{ status: number; body: unknown }> {
  const method = args.method ?? 'GET';
  const url = args.url;
  if (!url) throw new Error('probe: --url is required');
  let body: string | undefined;
  if (method !== 'GET' && method !== 'DELETE') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    body = Buffer.concat(chunks).toString('utf8');
  }
  const contentType = args['content-type'] ?? 'application/json';
  const res = await fetch(url, { method, ...(body !== undefined ? { body, headers: { 'content-type': contentType } } : {}), signal: AbortSignal.timeout(num(args, 'timeout', 5000)) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: parsed };
}

async function main(): Promise<void> {
  const { mode, args } = parseArgs(process.argv.slice(2));
  const out = mode === 'flows' ? await flows(args) : mode === 'stream' ? await stream(args) : mode === 'http' ? await http(args) : undefined;
  if (out === undefined) throw new Error(`probe: unknown mode "${mode}" (flows, stream, http)`);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (process.argv[1]?.endsWith('probe.js')) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
