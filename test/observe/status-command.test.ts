// `kst status` against a real ObserveServer: tables, --json, and the errors a user sees.
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Registry } from 'prom-client';
import { ObserveServer } from '../../src/observe/index.js';
import { command, renderStatus } from '../../src/cli/commands/status.js';
import { sampleReport } from './fixtures.js';

let server: ObserveServer;
let address: string;

beforeAll(async () => {
  server = new ObserveServer({ listen: '127.0.0.1:0', registry: new Registry() });
  server.setStatusProvider(() => sampleReport);
  address = `127.0.0.1:${(await server.start()).port}`;
});
afterAll(() => server.stop());

/** Runs `kst status ARGS` in-process and captures what it prints. */
async function kstStatus(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
    stdout += `${a.join(' ')}\n`;
  });
  const err = jest.spyOn(console, 'error').mockImplementation((...a: unknown[]) => {
    stderr += `${a.join(' ')}\n`;
  });
  try {
    const code = await command.run(args);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    log.mockRestore();
    err.mockRestore();
  }
}

describe('kst status', () => {
  it('prints the agent\'s report as tables', async () => {
    const r = await kstStatus('--address', address);
    expect(r.code).toBe(0);
    // Same tables as the golden rendering, apart from the "ago" times, which depend on now
    // (and the column padding they cause).
    const strip = (t: string): string => t.replace(/\((?:in )?[\dsmhd]+(?: ago)?\)/g, '(…)').replace(/ +/g, ' ');
    expect(strip(r.stdout)).toBe(strip(renderStatus(sampleReport)));
    expect(r.stdout).toContain('203.0.113.10     shop/web');
  });

  it('prints the JSON report with --json', async () => {
    const r = await kstStatus('--address', address, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(sampleReport);
  });

  it('says which address it could not reach', async () => {
    const stopped = new ObserveServer({ listen: '127.0.0.1:0', registry: new Registry() });
    const { port } = await stopped.start();
    await stopped.stop();
    const r = await kstStatus('--address', `127.0.0.1:${port}`, '--timeout', '2000');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`kst status: cannot reach the agent at http://127.0.0.1:${port}/status: `);
    expect(r.stderr).toContain('ECONNREFUSED');
  });

  it('gives up after --timeout when the agent does not answer', async () => {
    const silent = createServer(() => undefined); // accepts, never replies
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const r = await kstStatus('--address', `127.0.0.1:${port}`, '--timeout', '200');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('no answer within 200 ms');
    } finally {
      silent.close();
    }
  });

  it('passes on the agent\'s own error', async () => {
    const starting = new ObserveServer({ listen: '127.0.0.1:0', registry: new Registry() });
    const { port } = await starting.start();
    try {
      const r = await kstStatus('--address', `127.0.0.1:${port}`);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('answered 503: status not available yet: the agent is starting');
    } finally {
      await starting.stop();
    }
  });

  it('rejects bad options with usage and exit code 2', async () => {
    expect((await kstStatus('--bogus')).code).toBe(2);
    const bad = await kstStatus('--address', 'nohost');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('api.listen: expected HOST:PORT');
    expect((await kstStatus('--timeout=0')).stderr).toContain('--timeout must be a positive number');
    const help = await kstStatus('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: kst status');
  });
});
