// The lab's small tools: argument parsing, reply parsing and the flow summary (pure), and
// the echo server answering real TCP and UDP on loopback.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { parseApiServerArgs } from '../../src/lab/apiserver-main.js';
import { greeting, parseGreeting } from '../../src/lab/echo-server.js';
import { summarise } from '../../src/lab/probe.js';
import { repoRoot } from '../../src/lab/paths.js';

describe('lab tools (pure)', () => {
  it('round-trips the echo greeting', () => {
    expect(parseGreeting(`${greeting('worker-1-a', '198.51.100.10', 40001)} data=7\n`)).toEqual({ pod: 'worker-1-a', client: '198.51.100.10:40001', data: '7' });
  });

  it('summarises flows per pod and client address', () => {
    const s = summarise([
      { ok: true, pod: 'a', client: '198.51.100.10:1' },
      { ok: true, pod: 'a', client: '198.51.100.10:2' },
      { ok: true, pod: 'b', client: '198.51.100.11:3' },
      { ok: false, error: 'timeout' },
    ]);
    expect(s).toEqual({ count: 4, ok: 3, failed: 1, perPod: { a: 2, b: 1 }, clientAddresses: ['198.51.100.10', '198.51.100.11'], errors: ['timeout'] });
  });

  it('parses the API server\'s command line and names bad input', () => {
    expect(parseApiServerArgs(['--listen', '192.0.2.2:6443', '--seed', '/s', '--kubeconfig', '/k'])).toEqual({ host: '192.0.2.2', port: 6443, seedDir: '/s', kubeconfig: '/k' });
    expect(() => parseApiServerArgs(['--listen', '192.0.2.2'])).toThrow(/--listen must be HOST:PORT/);
    expect(() => parseApiServerArgs(['--seed'])).toThrow(/--seed needs a value/);
    expect(() => parseApiServerArgs(['--bogus', 'x'])).toThrow(/unknown argument "--bogus"/);
    expect(parseApiServerArgs(['--state', '/st', '--replaced-at-resource-version', '5'])).toMatchObject({ stateFile: '/st', replacedAtResourceVersion: 5 });
    expect(() => parseApiServerArgs(['--replaced-at-resource-version', '-1'])).toThrow(/positive integer/);
  });
});

describe('echo server (real sockets on loopback)', () => {
  const script = join(repoRoot(), 'dist/src/lab/echo-server.js');
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  it('answers TCP and UDP with its name and the client address', async () => {
    if (!existsSync(script)) throw new Error(`${script} missing: run \`npm run build\` first (npm test does)`);
    const port = 20000 + (process.pid % 20000);
    child = spawn(process.execPath, [script, '--name', 'pod-x', '--port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.once('data', () => resolve());
      child!.once('exit', (code) => reject(new Error(`echo-server exited ${code}`)));
    });
    const tcpLine = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => undefined);
      s.setEncoding('utf8');
      s.once('data', (d: string) => {
        s.destroy();
        resolve(d);
      });
      s.once('error', reject);
    });
    expect(parseGreeting(tcpLine)).toMatchObject({ pod: 'pod-x', client: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    const udp = await new Promise<{ line: string; from: string }>((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('message', (m, rinfo) => {
        s.close();
        resolve({ line: m.toString(), from: rinfo.address });
      });
      s.once('error', reject);
      s.send('42', port, '127.0.0.1');
    });
    expect(parseGreeting(udp.line)).toMatchObject({ pod: 'pod-x', data: '42' });
    expect(udp.from).toBe('127.0.0.1');
  });
});
