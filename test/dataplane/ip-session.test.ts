// The long-lived `ip -force -batch -` process (ip-session.ts) against a real kernel: failed
// lines are reported by their line in the batch, the process survives them and is reused,
// a process that dies is replaced, and close() ends it.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { IpBatchSession } from '../../src/dataplane/ip-session.js';
import { NetnsSet } from '../../src/lab/index.js';
import { runCommand } from '../../src/system/index.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('IpBatchSession', () => {
  const sets = new NetnsSet();
  let ns: string;
  let session: IpBatchSession;
  const routes = async (): Promise<string> => (await runCommand('ip', ['-n', ns, 'route', 'show', 'table', '100'])).stdout;

  beforeAll(async () => {
    ns = await sets.create('kis');
    session = new IpBatchSession(['-n', ns]);
  });

  afterAll(async () => {
    session.close();
    await sets.destroy();
  });

  test('a failed line is reported by its line in the batch; the others are applied', async () => {
    const r = await session.apply(['route add 192.0.2.1/32 dev lo table 100', 'route add 192.0.2.2/32 dev kst-nosuch table 100', 'route add 192.0.2.3/32 dev lo table 100'], 10_000);
    expect(r.ok).toBe(false);
    expect(r.failed).toEqual([{ line: 2, message: expect.stringContaining('kst-nosuch') }]);
    expect(await routes()).toMatch(/192\.0\.2\.1 dev lo[\s\S]*192\.0\.2\.3 dev lo/);
    expect(await routes()).not.toContain('192.0.2.2');
  });

  test('the same process takes the next batches, in order, also when they are queued at once', async () => {
    const pid = session.pid!;
    const results = await Promise.all([
      session.apply(['route add 192.0.2.4/32 dev lo table 100'], 10_000),
      session.apply(['route add 192.0.2.4/32 dev lo table 100'], 10_000), // exists by then
      session.apply(['route del 192.0.2.4/32 dev lo table 100'], 10_000),
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(results[1]!.failed).toEqual([{ line: 1, message: expect.stringMatching(/File exists/) }]);
    expect(session.pid).toBe(pid);
    expect(await routes()).not.toContain('192.0.2.4');
  });

  test('a process that exits is reported and replaced; close() ends it', async () => {
    const pid = session.pid!;
    // ip exits on a line it cannot parse (iproute2's invarg()).
    const r = await session.apply(['route get 192.0.2.1 table nosuchtable fibmatch'], 10_000);
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(/exited/);
    const next = await session.apply(['route add 192.0.2.5/32 dev lo table 100'], 10_000);
    expect(next).toEqual({ ok: true, failed: [], stderr: '' });
    expect(session.pid).not.toBe(pid);
    const last = session.pid!;
    session.close();
    const deadline = Date.now() + 5_000;
    while (alive(last) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    expect(alive(last)).toBe(false);
  });
});
