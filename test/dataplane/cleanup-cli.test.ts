// `kst cleanup --netns NAME` removes what the data plane programmed there, and only that.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { TunnelDataplane } from '../../src/dataplane/index.js';
import { NetnsSet } from '../../src/lab/index.js';
import { runCommand } from '../../src/system/index.js';
import { desiredState, testConfig } from './fixtures.js';

const sets = new NetnsSet();
let ns: string;

beforeAll(async () => {
  ns = await sets.create('kdk');
});
afterAll(() => sets.destroy());

test('kst cleanup --netns removes the data path and leaves the rest', async () => {
  const config = testConfig();
  const dp = new TunnelDataplane({ config, netns: ns });
  dp.start();
  expect(await dp.set(desiredState({ bucketCount: 8, vips: [{ vip: '203.0.113.10', backends: ['192.0.2.11'] }] }))).toMatchObject({ ok: true });
  await dp.stop();
  await runCommand('ip', ['-n', ns, 'route', 'add', '198.51.100.1/32', 'dev', 'lo', 'table', '100']);
  const log = console.log;
  const printed: string[] = [];
  console.log = (...a: unknown[]) => void printed.push(a.join(' '));
  try {
    expect(await main(['cleanup', '--netns', ns])).toBe(0);
  } finally {
    console.log = log;
  }
  expect(printed.join('\n')).toMatch(/removed \d+ data-plane objects/);
  const state = await dp.kernel.read(config.dataplane.tableBase);
  expect(state.routes.size + state.rules.size + state.links.size).toBe(0);
  expect(state.nft.structure).toBeUndefined();
  expect((await runCommand('ip', ['-n', ns, 'route', 'show', 'table', '100'])).stdout).toContain('198.51.100.1');
  // Idempotent: nothing left to remove.
  expect(await main(['cleanup', '--netns', ns])).toBe(0);
});
