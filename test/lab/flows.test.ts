// Issue 7's hitless claims on the real lab (agents, gobgpd, FRR, the lab API server), a
// faster version of `npm run bench -- flows`: 60 long-lived TCP connections per scenario
// instead of 200, and an 8 s termination grace instead of 30 s (FLOWS_TEST_GRACE_SECONDS).
// With the features on (the defaults) it asserts what must hold: no connection breaks when
// a tunnel node dies or the agents restart one by one; new connections reach an added
// endpoint and never a draining one; a drain moves no other endpoint's connections. Survival
// of connections whose bucket moves (add, drain) needs pinning of established flows in the
// dataplane; until the dataplane implements it, that is printed as pending, not asserted.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { agentConfig, agentConfigYaml, applyOverrides, buildTopology, labDown, labFlows, labPaths, labUp, parseOverride, type FlowsReport, type ScenarioResult } from '../../src/lab/index.js';
import { withoutDynamicElements } from '../../src/lab/drill.js';
import { repoRoot } from '../../src/lab/paths.js';
import { runCommand } from '../../src/system/index.js';

// NETNS_TAG (a developer's id) makes concurrent labs on one machine recognisable.
const prefix = `${process.env.NETNS_TAG ?? ''}ksttest-f${(process.pid % 46656).toString(36)}-`;
const GRACE_SECONDS = Number(process.env.FLOWS_TEST_GRACE_SECONDS ?? 8);
const CONNECTIONS = 60;

/** Whether the compiled dataplane reads the pinning switch at all (issue 7 part B landed). */
function pinningLanded(): boolean {
  const dir = join(repoRoot(), 'dist/src/dataplane');
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some((f) => f.endsWith('.js') && readFileSync(join(dir, f), 'utf8').includes('pinEstablishedFlows'));
}

describe('hitless failover and draining with long-lived connections (features on)', () => {
  let report: FlowsReport | undefined;
  afterAll(async () => {
    await labDown(prefix).catch(() => undefined);
    const left = (await runCommand('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
    for (const ns of left) await runCommand('ip', ['netns', 'del', ns], { allowFailure: true });
    rmSync(labPaths(prefix).dir, { recursive: true, force: true });
  }, 60000);

  const scenario = (key: ScenarioResult['key']): ScenarioResult => {
    const s = report!.scenarios.find((x) => x.key === key);
    expect({ key, error: s?.error }).toEqual({ key, error: undefined });
    expect(s!.connections).toBeGreaterThanOrEqual(CONNECTIONS * 0.9);
    return s!;
  };

  it('runs the four scenarios on a lab with the real agents, or says why not', async () => {
    if (!existsSync(join(repoRoot(), 'dist/src/lab/flow-client.js'))) throw new Error('dist/ missing: run `npm run build` first (npm test does)');
    const up = await labUp({ prefix });
    if (!up.state.agents.running) {
      console.log(`lab flows: SKIPPED, the agents could not start: ${up.state.agents.note}`);
      return;
    }
    // FLOWS_TEST_PROGRESS=1: each step with its time on stderr, live (where a slow run spends it).
    const progress = process.env.FLOWS_TEST_PROGRESS ? (l: string): void => void process.stderr.write(`flows.test ${new Date().toISOString()} ${l}\n`) : undefined;
    report = await labFlows({ prefix, only: ['add', 'drain', 'restart', 'kill'], connections: CONNECTIONS, newConnections: 30, graceSeconds: GRACE_SECONDS, ...(progress ? { progress } : {}) });
    console.log(`lab flows (${CONNECTIONS} connections, grace ${GRACE_SECONDS} s; ${report.definition}):\n${report.scenarios.map((s) =>
      `  ${s.name}: ${s.survived}/${s.connections} survived, ${s.broken} broken, ${s.stalled} stalled` +
      `${s.deadHopGoneMs !== undefined ? `; dead node's next hop gone after ${s.deadHopGoneMs} ms` : ''}` +
      `${s.onTarget !== undefined ? `; on ${s.targetPod}: ${s.onTargetSurvived}/${s.onTarget} survived` : ''}` +
      `${s.newConnections !== undefined ? `; new to ${s.targetPod}: ${s.newToTarget}/${s.newConnections}` : ''}${s.error ? `; FAILED: ${s.error}` : ''}`).join('\n')}`);
  }, 320000); // lab up (30-90 s) and four scenarios; 170 s ran out at a load average of 60 on 2 cores

  it('(1) a tunnel node dies: every connection survives, and the router drops its next hop within seconds (graceful restart on)', () => {
    if (!report) return;
    const s = scenario('kill');
    expect({ survived: s.survived, broken: s.broken }).toEqual({ survived: s.connections, broken: 0 });
    // BFD's detection time is 300 ms; a router keeping the dead node's routes stale would keep it until the count.
    expect(s.deadHopGoneMs).toBeDefined();
    expect(s.deadHopGoneMs!).toBeLessThan(3000);
  });

  it('(2) an endpoint is added: new connections reach it; established ones survive once pinning is in', () => {
    if (!report) return;
    const s = scenario('add');
    expect(s.newToTarget).toBeGreaterThan(0);
    if (pinningLanded()) expect({ survived: s.survived, broken: s.broken }).toEqual({ survived: s.connections, broken: 0 });
    else console.log(`lab flows: PENDING pinning (issue 7 part B): adding an endpoint broke ${s.broken}/${s.connections} connections (their buckets moved)`);
  });

  it('(3) graceful removal: no new connection reaches the draining pod; other pods keep theirs', () => {
    if (!report) return;
    const s = scenario('drain');
    expect(s.newConnections).toBeGreaterThan(0);
    expect(s.newToTarget).toBe(0);
    // Stored tables move only the drained endpoint's buckets: nobody else's connection breaks.
    expect(s.survived).toBeGreaterThanOrEqual(s.connections - s.onTarget!);
    if (pinningLanded()) expect(s.onTargetSurvived).toBe(s.onTarget);
    else console.log(`lab flows: PENDING pinning (issue 7 part B): ${s.onTarget! - s.onTargetSurvived!}/${s.onTarget} connections on the draining pod broke before their clients ended them`);
  });

  it('(4) the agents restart one by one: every connection survives', () => {
    if (!report) return;
    const s = scenario('restart');
    expect({ survived: s.survived, broken: s.broken }).toEqual({ survived: s.connections, broken: 0 });
  });
});

describe('lab config overrides (`kst lab up --set`)', () => {
  it('sets dotted paths into a copy of the generated config, values read as YAML', () => {
    const topo = buildTopology({ prefix: 'kstunit-' });
    const base = agentConfig(topo);
    const cfg = agentConfig(topo, [parseOverride('storedTables=false'), parseOverride('dataplane.pinEstablishedFlows=false'), parseOverride('buckets=64')]);
    expect(cfg.storedTables).toBe(false);
    expect(cfg.dataplane).toEqual({ pinEstablishedFlows: false });
    expect(cfg.buckets).toBe(64);
    expect(base.storedTables).toBeUndefined();
    expect(agentConfigYaml(topo, [parseOverride('storedTables=false')])).toContain('storedTables: false');
  });

  it('rejects malformed overrides and paths through non-objects with the offending text', () => {
    expect(() => parseOverride('storedTables')).toThrow(/--set "storedTables": use KEY=VALUE/);
    expect(() => parseOverride('=1')).toThrow(/use KEY=VALUE/);
    expect(() => applyOverrides({ buckets: 256 }, [parseOverride('buckets.x=1')])).toThrow(/--set buckets.x: "buckets" is not an object/);
  });
});

describe('the drill\'s kernel fingerprint with connection pinning', () => {
  it('leaves out the elements of dynamic maps (filled by the packet path) and keeps everything else', () => {
    const listing = [
      'table ip t {', '\tmap pins4 {', '\t\ttype ipv4_addr . ipv4_addr . inet_service . inet_service : mark', '\t\tsize 65536',
      '\t\tflags dynamic,timeout', '\t\ttimeout 10m', '\t\telements = { 1.2.3.4 . 5.6.7.8 . 1 . 2 : 0x00000001,', '\t\t\t     1.2.3.4 . 5.6.7.8 . 3 . 4 : 0x00000002 }',
      '\t}', '', '\tset vips {', '\t\ttype ipv4_addr', '\t\telements = { 203.0.113.10 }', '\t}', '}',
    ];
    const kept = withoutDynamicElements(listing);
    expect(kept.join('\n')).not.toContain('1.2.3.4');
    expect(kept).toContain('\t\telements = { 203.0.113.10 }');
    expect(kept).toContain('\tmap pins4 {');
    expect(kept).toHaveLength(listing.length - 2);
  });
});
