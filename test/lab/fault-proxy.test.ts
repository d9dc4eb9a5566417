// The fault proxy with real sockets on loopback: an echo server behind it, a client in
// front, and each fault switched on and off while connections are open.
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { FaultProxy } from '../../src/lab/fault-proxy.js';

let echo: net.Server;
const serverSide: net.Socket[] = [];
const serverSockets = async () => serverSide.splice(0);
let proxy: FaultProxy;
const sockets: net.Socket[] = [];

beforeEach(async () => {
  echo = net.createServer((s) => {
    serverSide.push(s);
    s.on('data', (d) => s.write(d)).on('error', () => undefined);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  proxy = new FaultProxy({ target: { host: '127.0.0.1', port: (echo.address() as net.AddressInfo).port } });
  await proxy.start();
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await proxy.stop();
  await new Promise<void>((r) => echo.close(() => r()));
});

/** A client with everything it received and how it ended. */
async function connect(): Promise<{ socket: net.Socket; received: () => string; ended: Promise<string> }> {
  const socket = net.connect(proxy.port, '127.0.0.1');
  sockets.push(socket);
  let data = '';
  socket.on('data', (d) => (data += d.toString()));
  const ended = new Promise<string>((resolve) => {
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    socket.on('close', () => resolve('closed'));
  });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return { socket, received: () => data, ended };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await sleep(5);
  return check();
}

describe('FaultProxy', () => {
  test('passes bytes both ways', async () => {
    const c = await connect();
    c.socket.write('hello');
    expect(await until(() => c.received() === 'hello')).toBe(true);
    expect(proxy.accepted).toBe(1);
  });

  test('blackhole: open and new connections get no answer, also after heal; connections made after heal work', async () => {
    const before = await connect();
    proxy.set({ kind: 'blackhole' });
    before.socket.write('lost');
    const during = await connect(); // accepted...
    during.socket.write('lost too');
    await sleep(200);
    expect(before.received()).toBe(''); // ...and never answered
    expect(during.received()).toBe('');
    proxy.heal();
    before.socket.write('still lost');
    during.socket.write('still lost');
    const after = await connect();
    after.socket.write('back');
    expect(await until(() => after.received() === 'back')).toBe(true);
    expect(before.received()).toBe('');
    expect(during.received()).toBe('');
    expect(proxy.openConnections).toBe(3); // the wedged ones are held open, not closed
    expect(proxy.wedgedConnections).toBe(2);
    before.socket.destroy(); // a client that gives up (a deadline) leaves nothing wedged behind
    expect(await until(() => proxy.wedgedConnections === 1)).toBe(true);
  });

  test('stall: connections open now go silent and stay open; new ones pass', async () => {
    const watch = await connect();
    watch.socket.write('a');
    expect(await until(() => watch.received() === 'a')).toBe(true);
    expect(proxy.stall()).toBe(1);
    watch.socket.write('b');
    const fresh = await connect();
    fresh.socket.write('c');
    expect(await until(() => fresh.received() === 'c')).toBe(true);
    await sleep(100);
    expect(watch.received()).toBe('a');
    expect(watch.socket.destroyed).toBe(false);
    expect(proxy.wedgedConnections).toBe(1);
    expect(proxy.openConnections).toBe(2);
  });

  test('a wedged connection stays open when the server closes its side', async () => {
    const c = await connect();
    proxy.stall();
    await new Promise<void>((r) => echo.close(() => r())); // stops accepting; open sockets stay
    for (const s of await serverSockets()) s.destroy();
    await sleep(100);
    expect(c.socket.destroyed).toBe(false);
    expect(proxy.openConnections).toBe(1);
    echo = net.createServer();
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  });

  test('reset: open connections and new ones are reset', async () => {
    const open = await connect();
    proxy.set({ kind: 'reset' });
    expect(await open.ended).toBe('ECONNRESET');
    const socket = net.connect(proxy.port, '127.0.0.1');
    sockets.push(socket);
    const code = await new Promise<string>((resolve) => socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')).on('close', () => resolve('closed')));
    expect(code).toBe('ECONNRESET');
    proxy.heal();
    const again = await connect();
    again.socket.write('ok');
    expect(await until(() => again.received() === 'ok')).toBe(true);
  });

  test('delay: each chunk arrives later, in order', async () => {
    const c = await connect();
    proxy.set({ kind: 'delay', ms: 150 });
    const t0 = Date.now();
    c.socket.write('1');
    await sleep(20);
    c.socket.write('2');
    expect(await until(() => c.received() === '12')).toBe(true);
    // Up and down each wait 150 ms: at least 300 ms for the echo of the first byte.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(Date.now() - t0).toBeLessThan(2000);
    proxy.heal();
    const t1 = Date.now();
    c.socket.write('3');
    expect(await until(() => c.received() === '123')).toBe(true);
    expect(Date.now() - t1).toBeLessThan(150);
  });

  test('rejects a negative delay', () => {
    expect(() => proxy.set({ kind: 'delay', ms: -1 })).toThrow(/delay must be >= 0/);
  });

  test('an HTTP request through the proxy', async () => {
    const http = await import('node:http');
    const server = http.createServer((_req, res) => res.end('pong'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const p = new FaultProxy({ target: { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port } });
    await p.start();
    try {
      const body = await (await fetch(`${p.url}/ping`)).text();
      expect(body).toBe('pong');
      p.set({ kind: 'blackhole' });
      const hung = await fetch(`${p.url}/ping`, { signal: AbortSignal.timeout(300) }).then(
        () => 'answered',
        (e: Error) => e.name,
      );
      expect(hung).toBe('TimeoutError');
    } finally {
      await p.stop();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('kubeConfig() points a Kubernetes client at the proxy', async () => {
    const http = await import('node:http');
    const paths: string[] = [];
    const server = http.createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'shop' } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const p = new FaultProxy({ target: { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port } });
    await p.start();
    try {
      const kc = p.kubeConfig();
      expect(kc.getCurrentCluster()?.server).toBe(p.url);
      const { CoreV1Api } = await import('@kubernetes/client-node');
      const ns = await kc.makeApiClient(CoreV1Api).readNamespace({ name: 'shop' });
      expect(ns.metadata?.name).toBe('shop');
      expect(paths).toEqual(['/api/v1/namespaces/shop']);
      expect(p.accepted).toBeGreaterThanOrEqual(1);
    } finally {
      await p.stop();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
