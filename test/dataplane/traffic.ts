// Real traffic for the data-plane tests: UDP echo servers in pod namespaces that report
// which pod answered and the client address they saw, and a client that opens many flows.
import { spawn, type ChildProcess } from 'node:child_process';
import { runCommand } from '../../src/system/index.js';

const ECHO = `
const dgram = require('node:dgram');
const [name, addr, port] = process.argv.slice(1);
const s = dgram.createSocket(addr.includes(':') ? 'udp6' : 'udp4');
s.on('message', (msg, rinfo) => s.send(JSON.stringify({ pod: name, peer: rinfo.address, port: rinfo.port }), rinfo.port, rinfo.address));
s.bind(Number(port), addr, () => console.log('ready'));
`;

export interface EchoServer {
  readonly pid: number;
  stop(): void;
}

/** Starts a UDP echo in `netns` bound to addr:port; resolves once it listens. */
export function startEcho(netns: string, name: string, addr: string, port: number): Promise<EchoServer> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', ECHO, name, addr, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.once('data', () => resolve({ pid: child.pid!, stop }));
    child.once('exit', (code) => reject(new Error(`echo server ${name} exited ${code}: ${err}`)));
  });
}

const CLIENT = `
const dgram = require('node:dgram');
const [vip, port, first, count, size] = process.argv.slice(1);
const payload = Buffer.alloc(Number(size) || 2, 104);
const results = {};
let pending = Number(count);
const sockets = [];
for (let i = 0; i < Number(count); i++) {
  const sport = Number(first) + i;
  const s = dgram.createSocket(vip.includes(':') ? 'udp6' : 'udp4');
  sockets.push(s);
  s.on('message', (m) => { if (!results[sport]) { results[sport] = JSON.parse(String(m)); pending--; if (!pending) done(); } });
  s.bind(sport, () => {
    const send = () => { if (!results[sport]) s.send(payload, Number(port), vip); };
    send(); setTimeout(send, 500); setTimeout(send, 1200);
  });
}
const timer = setTimeout(done, 3000);
function done() { clearTimeout(timer); for (const s of sockets) s.close(); console.log(JSON.stringify(results)); }
`;

export interface FlowResult {
  readonly pod: string;
  readonly peer: string;
  readonly port: number;
}

/**
 * Sends one datagram (of `size` bytes: larger than the MTU means fragments) per source port
 * first..first+count-1; returns source port -> answer. Unanswered flows are absent.
 */
export async function udpFlows(netns: string, vip: string, port: number, first: number, count: number, size = 2): Promise<Map<number, FlowResult>> {
  const r = await runCommand(process.execPath, ['-e', CLIENT, vip, String(port), String(first), String(count), String(size)], { netns, timeoutMs: 20_000 });
  const obj = JSON.parse(r.stdout) as Record<string, FlowResult>;
  return new Map(Object.entries(obj).map(([k, v]) => [Number(k), v]));
}

export function countBy<T>(values: Iterable<T>, key: (v: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(key(v), (m.get(key(v)) ?? 0) + 1);
  return m;
}
