// The long-lived `ip -force -batch -` and `nft -i` processes (ip-session.ts,
// nft-session.ts) against a real kernel: failed lines are reported by their line in the
// batch, an nft script stays one transaction, the process survives failures and is
// reused, a process that dies is replaced, and close() ends it.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { IpBatchSession } from '../../src/dataplane/ip-session.js';
import { IpBatch } from '../../src/dataplane/ip-batch.js';
import { NftSession } from '../../src/dataplane/nft-session.js';
import { NetnsSet } from '../../src/lab/index.js';
import { runCommand } from '../../src/system/index.js';

async function ended(pid: number): Promise<boolean> {
  const deadline = Date.now() + 5_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
  return !alive(pid);
}

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

  test('a batch of many pieces (10,000 lines, written 4,096 at a time): failures keep their line, the next batch its numbering', async () => {
    // 198.51.100.0/24 as host routes in table 101, 40 times over: 10,000 lines.
    const lines = Array.from({ length: 10_000 }, (_, i) => `route replace 198.51.100.${i % 250}/32 dev lo table 101 metric ${Math.floor(i / 250)}`);
    lines[4095] = 'route add 198.51.100.1/32 dev kst-nosuch table 101';
    lines[9000] = 'route add 198.51.100.2/32 dev kst-nosuch table 101';
    const r = await session.apply(lines, 60_000);
    expect(r.failed.map((f) => f.line)).toEqual([4096, 9001]);
    const count = (await runCommand('ip', ['-n', ns, 'route', 'show', 'table', '101'])).stdout.trim().split('\n').length;
    expect(count).toBe(9_998);
    const next = await session.apply(['route add 198.51.100.1/32 dev lo table 101 metric 0', 'route flush table 101'], 10_000);
    expect(next.failed).toEqual([{ line: 1, message: expect.stringMatching(/File exists/) }]);
  }, 90_000);

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
    expect(await ended(last)).toBe(true);
  });
});

describe('IpBatchSession in chunks, replaced after its line limit (iproute2 keeps ~4 KB per route line)', () => {
  const sets = new NetnsSet();
  let ns: string;

  beforeAll(async () => {
    ns = await sets.create('kic');
  });

  afterAll(() => sets.destroy());

  test('a batch larger than a chunk: every line applied, a failure numbered within the whole batch, the process replaced between chunks', async () => {
    const session = new IpBatchSession(['-n', ns], { chunkLines: 4, recycleLines: 6 });
    try {
      const lines = Array.from({ length: 10 }, (_, i) => `route add 192.0.2.${i + 1}/32 dev lo table 101`);
      lines[6] = 'route add 192.0.2.7/32 dev kst-nosuch table 101';
      expect((await session.apply(['route add 192.0.2.100/32 dev lo table 101'], 10_000)).ok).toBe(true);
      const before = session.pid!;
      const r = await session.apply(lines, 10_000);
      expect(r.ok).toBe(false);
      expect(r.failed).toEqual([{ line: 7, message: expect.stringContaining('kst-nosuch') }]);
      const table = (await runCommand('ip', ['-n', ns, 'route', 'show', 'table', '101'])).stdout;
      expect(table.trim().split('\n')).toHaveLength(10);
      expect(session.linesTaken).toBe(11);
      // Chunks of 4, 4, 2 lines (each with its marker) after 1: a new process for each of them.
      expect(session.pid).not.toBe(before);
      expect(await ended(before)).toBe(true);
      const after = session.pid!;
      expect((await session.apply(['route del 192.0.2.1/32 dev lo table 101', 'route del 192.0.2.2/32 dev lo table 101', 'route del 192.0.2.3/32 dev lo table 101', 'route del 192.0.2.4/32 dev lo table 101'], 10_000)).ok).toBe(true);
      expect(session.pid).not.toBe(after);
      expect(await ended(after)).toBe(true);
    } finally {
      session.close();
    }
  });
});

describe('NftSession', () => {
  const sets = new NetnsSet();
  let ns: string;
  let session: NftSession;
  const elements = async (): Promise<string> => (await runCommand('nft', ['list', 'set', 'inet', 'kstx_t', 's'], { netns: ns })).stdout;

  beforeAll(async () => {
    ns = await sets.create('kns');
    await runCommand('nft', ['-f', '-'], { netns: ns, input: 'table inet kstx_t {\n set s { type ipv4_addr; }\n}\n' });
    session = new NftSession(ns);
  });

  afterAll(async () => {
    session.close();
    await sets.destroy();
  });

  test('a script is one transaction: one bad command and nothing is applied', async () => {
    await expect(session.apply('add element inet kstx_t s { 192.0.2.1 }\nadd element inet kstx_t nosuch { 192.0.2.2 }\n', 10_000)).rejects.toThrow(/nosuch/);
    expect(await elements()).not.toContain('192.0.2.1');
  });

  test('the same process takes the next scripts; close() ends it', async () => {
    const pid = session.pid!;
    await session.apply('add element inet kstx_t s { 192.0.2.1 }\nadd element inet kstx_t s { 192.0.2.3 }\n', 10_000);
    await session.apply('delete element inet kstx_t s { 192.0.2.3 }\n', 10_000);
    expect(await elements()).toMatch(/elements = \{ 192\.0\.2\.1 \}/);
    expect(session.pid).toBe(pid);
    session.close();
    expect(await ended(pid)).toBe(true);
  });

  test('failed lines are numbered by element when an element holds more than one ip line, across chunks', async () => {
    const session = new IpBatchSession(['-n', ns], { chunkLines: 3, recycleLines: 1000 });
    try {
      // ip reads 2 + 1 + 2 lines in the first chunk and 1 + 2 in the second.
      const lines = [
        'route add 192.0.2.21/32 dev lo table 102\nroute add 192.0.2.22/32 dev lo table 102',
        'route add 192.0.2.23/32 dev kst-nosuch1 table 102',
        'route add 192.0.2.24/32 dev lo table 102\nroute add 192.0.2.25/32 dev kst-nosuch2 table 102',
        'route add 192.0.2.26/32 dev lo table 102',
        'route add 192.0.2.27/32 dev kst-nosuch3 table 102\nroute add 192.0.2.28/32 dev lo table 102',
      ];
      const r = await session.apply(lines, 10_000);
      expect(r.failed.map((f) => [f.line, /kst-nosuch\d/.exec(f.message)?.[0]])).toEqual([
        [2, 'kst-nosuch1'],
        [3, 'kst-nosuch2'],
        [5, 'kst-nosuch3'],
      ]);
    } finally {
      session.close();
    }
  });

  test('an IpBatch is written chunk by chunk, its recipes made as they go, failures numbered within the whole batch', async () => {
    const session = new IpBatchSession(['-n', ns], { chunkLines: 4, recycleLines: 1000 });
    try {
      const batch = new IpBatch();
      batch.push('route add 192.0.2.40/32 dev lo table 103');
      let made = 0;
      for (const vip of ['192.0.2.41', '192.0.2.42', '192.0.2.43']) {
        batch.recipe({
          vip,
          count: 3,
          write(out) {
            made += 1;
            for (const t of [103, 104, 105]) out.push(`route add ${vip}/32 dev ${vip === '192.0.2.42' && t === 105 ? 'kst-nosuch' : 'lo'} table ${t}`);
          },
        });
      }
      expect(batch.size).toBe(10);
      const r = await session.apply(batch, 10_000);
      expect(made).toBe(3);
      expect(r.failed).toEqual([{ line: 7, message: expect.stringContaining('kst-nosuch') }]);
      expect(batch.pick([7])).toEqual(new Map([[7, { line: 'route add 192.0.2.42/32 dev kst-nosuch table 105', vip: '192.0.2.42' }]]));
      const shown = (await runCommand('ip', ['-n', ns, 'route', 'show', 'table', '105'])).stdout;
      expect(shown).toContain('192.0.2.41');
      expect(shown).toContain('192.0.2.43');
    } finally {
      session.close();
    }
  });
});
