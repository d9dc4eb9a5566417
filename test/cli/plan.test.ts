// `kst plan`: readable and JSON output for the example cluster, identical on every run.
import { expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { main } from '../../src/cli/main.js';
import { captureConsole } from '../support/console.js';
import type { DesiredState } from '../../src/model/index.js';

const out = captureConsole();

const args = ['plan', '--config', 'deploy/examples/config.yaml', '--objects', 'deploy/examples/objects'];

async function run(extra: string[]): Promise<string> {
  out.length = 0;
  expect(await main([...args, ...extra])).toBe(0);
  return out.join('\n');
}

test('tunnel-1: announcements, buckets per endpoint, draining endpoint', async () => {
  const text = await run(['--node', 'tunnel-1']);
  expect(text).toContain('node tunnel-1: tunnel node; mode vxlan-lwt; 256 buckets; hash seed 0x4b535431');
  expect(text).toMatch(/203\.0\.113\.10 +default\/web +public +yes +ready endpoints +198\.51\.100\.130@worker-1=128, 198\.51\.100\.194@worker-2=128, 198\.51\.100\.195@worker-2=draining/);
  expect(text).toContain('Announcements (3):');
  expect(text).toMatch(/2001:db8:2::1\/128 +shop\/api +- +64512:1:2/);
  expect(text).toContain('Problems (0):');
});

test('worker-2: pod set-ups, nothing announced', async () => {
  const text = await run(['--node', 'worker-2']);
  expect(text).toContain('Announcements (0):');
  expect(text).toMatch(/default\/worker-2-b +198\.51\.100\.195 +203\.0\.113\.10/);
  expect(text).toMatch(/shop\/api-1 +198\.51\.100\.196 +203\.0\.113\.129, 2001:db8:2::1/);
});

test('--json is the DesiredState with full bucket tables, and identical across runs', async () => {
  const a = await run(['--node', 'tunnel-2', '--json']);
  const b = await run(['--node', 'tunnel-2', '--json']);
  expect(a).toBe(b);
  const state = JSON.parse(a) as DesiredState;
  expect(state.node).toBe('tunnel-2');
  expect(state.vips.map((v) => v.vip)).toEqual(['203.0.113.10', '203.0.113.129', '2001:db8:2::1']);
  for (const v of state.vips) expect(v.table.buckets).toHaveLength(256);
});

test('identical output from a separate process', () => {
  const cli = 'dist/src/cli/main.js';
  if (!existsSync(cli)) {
    console.warn('skipped: dist/src/cli/main.js missing (npm test builds it first)');
    return;
  }
  const runs = [0, 1].map(() => spawnSync(process.execPath, [cli, ...args, '--node', 'tunnel-1', '--json'], { encoding: 'utf8' }));
  for (const r of runs) expect(r.status).toBe(0);
  expect(runs[0]!.stdout).toBe(runs[1]!.stdout);
  const human = [0, 1].map(() => spawnSync(process.execPath, [cli, ...args, '--node', 'tunnel-1'], { encoding: 'utf8' }).stdout);
  expect(human[0]).toBe(human[1]);
  expect(human[0]).toContain('203.0.113.10/32');
});

test('usage and input errors', async () => {
  expect(await main(['plan', '--config', 'deploy/examples/config.yaml'])).toBe(2);
  expect(await main([...args])).toBe(2); // no node: not in config, not given
  expect(out.join('\n')).toContain('nodes in the objects: tunnel-1, tunnel-2, worker-1, worker-2');
  expect(await main(['plan', '--config', 'deploy/examples/bad/config.yaml', '--objects', 'deploy/examples/objects', '--node', 'x'])).toBe(1);
  expect(await main(['plan', '--help'])).toBe(0);
});
