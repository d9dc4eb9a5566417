// Long-lived flows for the pinning test: a TCP+UDP server per pod that answers every
// message with the pod's name, and a client that holds TCP connections and UDP sockets
// open and, on request, pings each one and reports who answered (or how it died).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const SERVER = `
const net = require('node:net');
const dgram = require('node:dgram');
const [name, addr, port] = process.argv.slice(1);
const tcp = net.createServer((s) => { s.on('data', () => s.write(name + '\\n')); s.on('error', () => {}); });
const udp = dgram.createSocket(addr.includes(':') ? 'udp6' : 'udp4');
udp.on('message', (m, r) => udp.send(name, r.port, r.address));
tcp.listen(Number(port), addr, () => udp.bind(Number(port), addr, () => console.log('ready')));
`;

const CLIENT = `
const net = require('node:net');
const dgram = require('node:dgram');
const [vip, port, first, count] = process.argv.slice(1).map((x, i) => (i ? Number(x) : x));
const tcp = [];
const udp = [];
let connected = 0;
for (let i = 0; i < count; i++) {
  const c = { last: null, dead: null };
  c.s = net.connect({ host: vip, port, localPort: first + i }, () => { if (++connected === count) console.log(JSON.stringify({ ready: true })); });
  c.s.setNoDelay(true);
  c.s.on('data', (d) => (c.last = String(d).trim().split('\\n').pop()));
  c.s.on('error', (e) => (c.dead = c.dead || e.code));
  c.s.on('close', () => (c.dead = c.dead || 'closed'));
  tcp.push(c);
  const u = { last: null, s: dgram.createSocket(vip.includes(':') ? 'udp6' : 'udp4') };
  u.s.on('message', (m) => (u.last = String(m)));
  u.s.bind(first + count + i);
  udp.push(u);
}
setTimeout(() => { if (connected < count) console.log(JSON.stringify({ ready: false, connected })); }, 5000);
require('node:readline').createInterface({ input: process.stdin }).on('line', () => {
  for (const c of tcp) { c.last = null; if (!c.dead) c.s.write('x'); }
  for (const u of udp) u.last = null;
  const send = () => { for (const u of udp) if (!u.last) u.s.send('x', port, vip); };
  send(); setTimeout(send, 300);
  setTimeout(() => console.log(JSON.stringify({ tcp: tcp.map((c) => c.dead || c.last || 'silent'), udp: udp.map((u) => u.last || 'silent') })), 900);
});
`;

export interface Proc {
  stop(): void;
}

function nsNode(netns: string, script: string, args: readonly (string | number)[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', script, ...args.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] });
}

function stopper(child: ChildProcess): () => void {
  return () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
}

/** TCP and UDP on addr:port in `netns`, answering every message with `name`. */
export function startNamedServer(netns: string, name: string, addr: string, port: number): Promise<Proc> {
  const child = nsNode(netns, SERVER, [name, addr, port]);
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.once('data', () => resolve({ stop: stopper(child) }));
    child.once('exit', (code) => reject(new Error(`server ${name} exited ${code}: ${err}`)));
  });
}

/** Per flow: the pod that answered, 'silent', or how the TCP connection died (ECONNRESET...). */
export interface PingResult {
  readonly tcp: readonly string[];
  readonly udp: readonly string[];
}

export interface FlowClient extends Proc {
  ping(): Promise<PingResult>;
}

/**
 * Opens `count` TCP connections (source ports first..) and `count` UDP sockets (source
 * ports first+count..) to vip:port from `netns`, and keeps them open until stop().
 */
export async function openFlows(netns: string, vip: string, port: number, first: number, count: number): Promise<FlowClient> {
  const child = nsNode(netns, CLIENT, [vip, port, first, count]);
  const lines = createInterface({ input: child.stdout! });
  const queue: ((line: string) => void)[] = [];
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  lines.on('line', (line) => queue.shift()?.(line));
  const next = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`flow client: no answer (${err.trim()})`)), 10_000);
      queue.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  const stop = stopper(child);
  const ready = JSON.parse(await next()) as { ready: boolean; connected?: number };
  if (!ready.ready) {
    stop();
    throw new Error(`flow client: only ${ready.connected} of ${count} TCP connections established`);
  }
  return {
    stop,
    async ping() {
      const answer = next();
      child.stdin!.write('ping\n');
      return JSON.parse(await answer) as PingResult;
    },
  };
}

const ONE_SHOT = `
const net = require('node:net');
const [vip, port, first, count] = process.argv.slice(1).map((x, i) => (i ? Number(x) : x));
const out = new Array(count).fill('silent');
let left = count;
const finish = () => { if (--left === 0) console.log(JSON.stringify(out)); };
for (let i = 0; i < count; i++) {
  const s = net.connect({ host: vip, port, localPort: first + i }, () => s.write('x'));
  const timer = setTimeout(() => { s.destroy(); finish(); }, 4000);
  // An abortive close (RST): no TIME_WAIT on the client, so the same source port can
  // connect again at once, as a client reusing a 5-tuple does.
  s.once('data', (d) => { out[i] = String(d).trim(); clearTimeout(timer); s.resetAndDestroy(); finish(); });
  s.once('error', (e) => { out[i] = e.code; clearTimeout(timer); s.destroy(); finish(); });
}
`;

/**
 * One short TCP connection per source port first..first+count-1 to vip:port from `netns`:
 * connect, one message, the answer, then a reset. Returns, per port, the pod that
 * answered ('silent' or an error code otherwise).
 */
export async function connectOnce(netns: string, vip: string, port: number, first: number, count: number): Promise<string[]> {
  const child = nsNode(netns, ONE_SHOT, [vip, port, first, count]);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`one-shot client exited ${code}: ${err.trim()}`);
  return JSON.parse(out) as string[];
}
