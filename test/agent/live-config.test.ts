// Live configuration in the agent: a new file version is loaded as at start and applied
// whole or rejected whole (Events, metrics, status), and the model resolves pools, peers
// and attributes again from the applied one.
import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config/index.js';
import { LiveConfig } from '../../src/agent/live-config.js';
import { MemoryEventSink, metricsRegistry, silentLogger } from '../../src/observe/index.js';
import { IncrementalModel } from '../../src/model/index.js';
import { Agent } from '../../src/agent/agent.js';
import { cluster, ep, settings, slice, tunnelService } from '../model/helpers.js';
import { emptyStatusReport, parseStatusReport } from '../../src/observe/index.js';
import { renderStatus } from '../../src/cli/commands/status.js';

const dir = mkdtempSync(join(tmpdir(), 'kst-live-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const good = (communities: string[], extraPeer = false, over = ''): string =>
  [
    'nodeName: tunnel-1',
    'pools:',
    '  - name: web',
    '    cidrs: [203.0.113.0/24]',
    `    communities: [${communities.map((c) => `"${c}"`).join(', ')}]`,
    'bgp:',
    '  asn: 64512',
    '  peers:',
    '    - {address: 192.0.2.1, asn: 65100}',
    ...(extraPeer ? ['    - {address: 2001:db8::1, asn: 65100}'] : []),
    over,
  ].join('\n');

async function metric(result: string): Promise<number> {
  const m = (await metricsRegistry.getSingleMetric('kst_config_reload_total')!.get()).values.find((v) => v.labels.result === result);
  return m?.value ?? 0;
}

function setup(text: string) {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  const sources = { file, env: {}, set: [] };
  const initial = loadConfig({ ...sources, resolveNodeName: true });
  const events = new MemoryEventSink();
  const applied: Array<{ config: Config; changed: readonly string[] }> = [];
  const live = new LiveConfig({ initial, sources, running: { bfd: false }, events, nodeRef: { kind: 'Node', name: 'tunnel-1' }, logger: silentLogger(), apply: (config, change) => applied.push({ config, changed: change.changed }) });
  return { file, live, events, applied, write: (t: string) => writeFileSync(file, t) };
}

describe('LiveConfig', () => {
  test('a valid live change is applied whole: generation, hash, Normal Event, metric, status', async () => {
    const s = setup(good([]));
    const before = s.live.report();
    expect(before).toMatchObject({ generation: 1, file: s.file });
    const ok0 = await metric('ok');
    s.write(good(['64512:100'], true));
    expect(s.live.reload()).toBe('ok');
    expect(s.applied.map((a) => a.changed)).toEqual([['bgp.peers', 'pools']]);
    expect(s.applied[0]!.config.pools[0]!.communities).toEqual(['64512:100']);
    expect(s.live.config.bgp.peers.map((p) => p.address)).toEqual(['192.0.2.1', '2001:db8::1']);
    const after = s.live.report();
    expect(after.generation).toBe(2);
    expect(after.hash).not.toBe(before.hash);
    expect(after.lastReload).toMatchObject({ result: 'ok' });
    expect(s.events.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'ConfigApplied', ref: { kind: 'Node', name: 'tunnel-1' } })]);
    expect(await metric('ok')).toBe(ok0 + 1);
    expect(await metricsRegistry.getSingleMetricAsString('kst_config_generation')).toMatch(/kst_config_generation 2/);
  });

  test('an invalid version is rejected with the loader\'s errors: running config kept, Warning Event, metric', async () => {
    const s = setup(good([]));
    const inv0 = await metric('invalid');
    s.write(good(['64512:99999999']));
    expect(s.live.reload()).toBe('invalid');
    s.write('pools: [\n');
    expect(s.live.reload()).toBe('invalid');
    expect(s.applied).toEqual([]);
    expect(s.live.report()).toMatchObject({ generation: 1, lastReload: { result: 'invalid' } });
    expect(s.live.config.pools[0]!.communities).toEqual([]);
    expect(s.events.events.map((e) => [e.type, e.reason])).toEqual([['Warning', 'InvalidConfig'], ['Warning', 'InvalidConfig']]);
    expect(s.events.events[0]!.message).toContain('pools[0].communities[0]');
    expect(s.events.events[1]!.message).toMatch(/YAML line/);
    expect(await metric('invalid')).toBe(inv0 + 2);
  });

  test('a plain password is rejected without its value in the Event, log or status', () => {
    const s = setup(good([]));
    s.write(good([]).replace('asn: 65100}', 'asn: 65100, password: 12345678}'));
    expect(s.live.reload()).toBe('invalid');
    expect(s.events.events[0]!.message).toContain('password');
    expect(JSON.stringify([s.events.events, s.live.report()])).not.toContain('12345678');
  });

  test('a version changing a field that needs a restart is rejected whole, live fields included', async () => {
    const s = setup(good([]));
    const r0 = await metric('needs_restart');
    s.write(good(['64512:100'], false, 'buckets: 128'));
    expect(s.live.reload()).toBe('needs_restart');
    expect(s.applied).toEqual([]);
    expect(s.live.config.buckets).toBe(256);
    expect(s.events.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'ConfigNeedsRestart' })]);
    expect(s.events.events[0]!.message).toContain('buckets');
    expect(await metric('needs_restart')).toBe(r0 + 1);
  });

  test('the same configuration written differently is unchanged: no Event, no apply', async () => {
    const s = setup(good([]));
    const u0 = await metric('unchanged');
    s.write(`# a comment\n${good([])}`);
    expect(s.live.reload()).toBe('unchanged');
    expect(s.applied).toEqual([]);
    expect(s.events.events).toEqual([]);
    expect(s.live.report().generation).toBe(1);
    expect(await metric('unchanged')).toBe(u0 + 1);
  });
});

describe('the agent converges on a configuration applied live', () => {
  const peers = [{ name: 'tor-a', address: '192.0.2.1', asn: 65100, holdTimeSeconds: 9, keepaliveSeconds: 3, nodeSelector: '' }];
  const cfg = (communities: string[], more: typeof peers = []) =>
    settings({
      bgp: { asn: 64512, maintenanceTaint: 'cmd.nu/tunnel-maintenance', peers: [...peers, ...more] },
      pools: [{ name: 'public', cidrs: ['203.0.113.0/25'], namespaces: ['*'], autoAssign: false, communities, largeCommunities: [] }],
    });
  const snapshot = { services: [tunnelService('web', '203.0.113.10')], endpointSlices: [slice('web', [ep('198.51.100.130', 'worker-1')])], nodes: cluster, localPods: [] };

  test('new peers and pool communities reach the desired state; the bucket table is the same', async () => {
    const model = new IncrementalModel(cfg([]), 'tunnel-1');
    const agent = new Agent({ model, events: new MemoryEventSink(), logger: silentLogger() }, { withdrawGraceSeconds: 0, unhealthyAfterFailures: 3 });
    agent.onSnapshot(snapshot);
    const before = agent.current()!;
    expect(before.announcements[0]!.communities).toEqual([]);
    expect(before.bgp!.peers.map((p) => p.address)).toEqual(['192.0.2.1']);
    agent.applySettings(cfg(['64512:100'], [{ name: 'tor-b', address: '192.0.2.5', asn: 65100, holdTimeSeconds: 9, keepaliveSeconds: 3, nodeSelector: '' }]));
    const after = agent.current()!;
    expect(after.announcements[0]!.communities).toEqual(['64512:100']);
    expect(after.bgp!.peers.map((p) => p.address)).toEqual(['192.0.2.1', '192.0.2.5']);
    expect(after.vips[0]!.table.buckets).toEqual(before.vips[0]!.table.buckets);
    await agent.idle();
    await agent.stopForRestart();
  });

  test('the model refuses a change of what shapes its tables (config/change.ts keeps those for a restart)', () => {
    const model = new IncrementalModel(cfg([]), 'tunnel-1');
    expect(() => model.setSettings({ ...cfg([]), buckets: 128 })).toThrow(/buckets cannot change/);
  });
});

describe('kst status', () => {
  test('shows the generation, hash and last reload, through the JSON an agent sends', () => {
    const s = setup(good([]));
    s.write(good(['64512:1']));
    s.live.reload();
    const body: unknown = JSON.parse(JSON.stringify({ ...emptyStatusReport('tunnel-1'), config: s.live.report() }));
    const report = parseStatusReport(body);
    const text = renderStatus(report, new Date(Date.parse(report.config!.lastReload!.at) + 5000));
    expect(text).toContain(`config: generation 2, hash ${s.live.report().hash}, from ${s.file}`);
    expect(text).toMatch(/config: last reload ok \(5s ago\): configuration generation 2 \([0-9a-f]{12}\) applied live: pools/);
    expect(() => parseStatusReport({ ...emptyStatusReport(), config: { generation: 1, hash: 'x', lastReload: { result: 'maybe', at: '', message: '' } } })).toThrow(/config.lastReload.result/);
  });
});
