// `kst cleanup --netns NAME` removes what the data plane programmed there, and only that;
// on a tunnel node and a serving node it leaves nothing of the project anywhere: no nft
// table, rule, route, link or nexthop in the node namespace, no pod-side object in any pod
// namespace.
import { stat } from 'node:fs/promises';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { ensureGtsm } from '../../src/bfd/index.js';
import { main } from '../../src/cli/main.js';
import { TunnelDataplane } from '../../src/dataplane/index.js';
import { NetnsSet } from '../../src/lab/index.js';
import type { IpAddress, PodSetup } from '../../src/model/index.js';
import { NamespaceFinder, PodNetworks } from '../../src/podnet/index.js';
import { runCommand } from '../../src/system/index.js';
import { desiredState, testConfig } from './fixtures.js';

const sets = new NetnsSet();
let ns: string;

beforeAll(async () => {
  ns = await sets.create('kclk');
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

/** Captures console output while `fn` runs. */
async function quietly(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const [log, error] = [console.log, console.error];
  const lines: string[] = [];
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  console.error = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    return { code: await fn(), out: lines.join('\n') };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

/** Everything of the project's in one namespace, as text (empty: nothing left). */
async function projectObjects(netns: string): Promise<string[]> {
  const ip = async (...a: string[]) => (await runCommand('ip', ['-n', netns, ...a], { allowFailure: true })).stdout;
  const left: string[] = [];
  const tables = (await runCommand('nft', ['list', 'tables'], { netns })).stdout;
  for (const t of tables.split('\n')) if (t.includes('kube_service_tunnel')) left.push(`nft ${t.trim()}`);
  for (const fam of ['-4', '-6']) {
    for (const r of (await ip(fam, 'rule', 'show')).split('\n')) if (/fwmark|proto 245|proto kst/.test(r)) left.push(`rule ${r.trim()}`);
    for (const r of (await ip(fam, 'route', 'show', 'table', 'all', 'proto', '245')).split('\n')) if (r.trim()) left.push(`route ${r.trim()}`);
  }
  for (const n of (await ip('nexthop', 'show')).split('\n')) if (/proto (245|kst)/.test(n)) left.push(`nexthop ${n.trim()}`);
  for (const l of JSON.parse((await ip('-j', 'link', 'show')) || '[]') as { ifname: string }[]) if (l.ifname.startsWith('kst')) left.push(`link ${l.ifname}`);
  for (const a of (await ip('addr', 'show', 'dev', 'lo')).split('\n')) if (a.includes('lo:kst')) left.push(`address ${a.trim()}`);
  return left;
}

test('kst cleanup on a tunnel node and a serving node leaves nothing of the project in the node or any pod namespace', async () => {
  const config = testConfig();
  // Tunnel node: the data plane and BFD's TTL table.
  const tunnel = await sets.create('kcltun');
  const dp = new TunnelDataplane({ config, netns: tunnel });
  dp.start();
  expect(await dp.set(desiredState({ bucketCount: 8, vips: [{ vip: '203.0.113.10', backends: ['192.0.2.11', '192.0.2.12'] }, { vip: '2001:db8::10', backends: ['2001:db8:1::11'] }] }))).toMatchObject({ ok: true });
  await dp.stop();
  await ensureGtsm({ netns: tunnel });

  // Serving node: two pods; one set up by PodNetworks (vxlan-lwt), one with an mpls-mode
  // leftover (a VIP on lo with the project's label) from an agent that is gone.
  const serving = await sets.create('kclsrv');
  const podA = await sets.create('kclpoda');
  const podB = await sets.create('kclpodb');
  await sets.link(podA, serving, { aIf: 'eth0', aAddrs: ['192.0.2.50/24'], bAddrs: ['192.0.2.1/24'] });
  await sets.link(podB, serving, { aIf: 'eth0', aAddrs: ['192.0.2.51/24'] });
  await runCommand('ip', ['-n', podB, 'addr', 'add', '203.0.113.11/32', 'dev', 'lo', 'label', 'lo:kst']);
  const mine = new Set(await Promise.all([podA, podB].map(async (n) => (await stat(`/run/netns/${n}`)).ino)));
  const nets = new PodNetworks({ encap: { mode: 'vxlan-lwt', vni: 4242, vxlanPort: 4789, mplsLabel: 100 }, finder: new NamespaceFinder({ accept: (c) => mine.has(c.inode) }) });
  nets.start();
  const setup: PodSetup = { pod: { namespace: 'shop', name: 'web-0', uid: 'uid-web-0' }, podIp: '192.0.2.50' as IpAddress, containerIds: ['c1'], vips: ['203.0.113.10' as IpAddress], mode: 'vxlan-lwt' };
  expect(await nets.set([setup])).toMatchObject({ ok: true });
  await nets.stop();

  // Something there is: the test can fail.
  expect((await projectObjects(tunnel)).length).toBeGreaterThan(3);
  expect(await projectObjects(tunnel)).toContainEqual(expect.stringMatching(/^nft .*kube_service_tunnel_bfd/));
  expect(await projectObjects(podA)).toContainEqual(expect.stringMatching(/^link kst/));
  expect(await projectObjects(podB)).toEqual([expect.stringMatching(/^address .*203\.0\.113\.11\/32.*lo:kst/)]);
  const podForeign = await podInterface(podA);

  const t = await quietly(() => main(['cleanup', '--netns', tunnel, '--pod-netns-prefix', 'kclpod-none']));
  expect(t).toMatchObject({ code: 0 });
  expect(t.out).toMatch(/dataplane: removed \d+ data-plane objects/);
  const sv = await quietly(() => main(['cleanup', '--netns', serving, '--pod-netns-prefix', 'kclpod']));
  expect(sv.code).toBe(0);
  expect(sv.out).toMatch(/podnet: removed \d+ pod-side objects in 2 pod namespace\(s\)/);

  for (const n of [tunnel, serving, podA, podB]) expect({ netns: n, left: await projectObjects(n) }).toEqual({ netns: n, left: [] });
  // What is not ours stays: the pod's own interface and address.
  expect(await podInterface(podA)).toEqual(podForeign);
}, 120_000);

/** The pod's own interface: name, state and addresses (not DAD's passing `tentative` flag). */
async function podInterface(netns: string): Promise<unknown> {
  const links = JSON.parse((await runCommand('ip', ['-n', netns, '-j', 'addr', 'show', 'dev', 'eth0'])).stdout) as Array<{ ifname: string; operstate: string; address: string; addr_info: Array<{ family: string; local: string; prefixlen: number }> }>;
  return links.map((l) => ({ ifname: l.ifname, operstate: l.operstate, address: l.address, addresses: l.addr_info.map((a) => `${a.family} ${a.local}/${a.prefixlen}`) }));
}
