// Issue 14's "config change applied live" on the real lab (agents, gobgpd, FRR from
// src/lab/router-config.ts, the lab API server): the lab starts with IPv4 sessions only;
// the agents' config file is then renamed over with the IPv6 sessions added and a new
// community on the pool. With 200 long-lived connections through the VIP: FRR establishes
// the new sessions and has the community on every path, the agents are the same processes,
// and every connection survives. Then an invalid version: rejected, the agents keep running
// generation 2 (kst status), the router keeps the routes.
import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from '@jest/globals';
import { agentConfig, buildTopology, host, hostsByRole, labDown, labFlows, labPaths, labUp, parseOverride, type ScenarioResult } from '../../src/lab/index.js';
import { routerPeers } from '../../src/lab/status.js';
import { distFile } from '../../src/lab/paths.js';
import { runCommand } from '../../src/system/index.js';
import type { StatusReport } from '../../src/observe/index.js';

const prefix = `${process.env.NETNS_TAG ?? ''}ksttest-lc${(process.pid % 46656).toString(36)}-`;
const CONNECTIONS = Number(process.env.LIVE_CONFIG_CONNECTIONS ?? 200);

async function agentStatus(netns: string): Promise<StatusReport> {
  const r = await runCommand(process.execPath, [distFile('src/cli/main.js'), 'status', '--json'], { netns, timeoutMs: 10000 });
  return JSON.parse(r.stdout) as StatusReport;
}

describe('a config change applied live on the lab', () => {
  const topo = buildTopology({ prefix });
  const paths = labPaths(prefix);
  const routerNs = host(topo, topo.router.host).netns;
  const tunnels = hostsByRole(topo, 'tunnel-node');
  afterAll(async () => {
    await labDown(prefix).catch(() => undefined);
    const left = (await runCommand('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
    for (const ns of left) await runCommand('ip', ['netns', 'del', ns], { allowFailure: true });
    rmSync(paths.dir, { recursive: true, force: true });
  }, 60000);

  let scenario: ScenarioResult | undefined;

  it('adds the IPv6 sessions and a community without a restart; every connection survives', async () => {
    const v4Peers = ((agentConfig(topo) as { bgp: { peers: Array<{ address: string }> } }).bgp.peers).filter((p) => !p.address.includes(':'));
    const up = await labUp({ prefix, configOverrides: [parseOverride(`bgp.peers=${JSON.stringify(v4Peers)}`)] });
    expect(up.state.agents).toMatchObject({ running: true });
    // vtysh may not answer within its 5 s on a loaded machine: read until it does.
    let before = await routerPeers(routerNs, paths.frrDir, runCommand);
    for (let i = 0; i < 10 && Object.keys(before.bgp).length < 2 * tunnels.length; i++) before = await routerPeers(routerNs, paths.frrDir, runCommand);
    const v6 = Object.keys(before.bgp).filter((a) => a.includes(':'));
    expect(v6.length).toBe(tunnels.length); // FRR has the neighbours (router-config.ts) ...
    expect(v6.map((a) => before.bgp[a])).not.toContain('Established'); // ... the agents do not dial them yet
    const status0 = await agentStatus(tunnels[0]!.netns);
    expect(status0.config).toMatchObject({ generation: 1 });

    const report = await labFlows({ prefix, only: ['live-config'], connections: CONNECTIONS, progress: (l) => console.log(l) });
    scenario = report.scenarios[0];
    console.log(`live config: ${scenario?.survived}/${scenario?.connections} survived, ${scenario?.broken} broken, ${scenario?.stalled} stalled; ${scenario?.detail}${scenario?.error ? `; FAILED: ${scenario.error}` : ''}`);
    expect(scenario?.key).toBe('live-config');
    expect(scenario?.error).toBeUndefined();
    expect(scenario!.connections).toBeGreaterThanOrEqual(CONNECTIONS * 0.9);
    expect({ survived: scenario!.survived, broken: scenario!.broken }).toEqual({ survived: scenario!.connections, broken: 0 });

    const after = await routerPeers(routerNs, paths.frrDir, runCommand);
    expect(v6.map((a) => after.bgp[a])).toEqual(v6.map(() => 'Established'));
    for (const t of tunnels) expect((await agentStatus(t.netns)).config).toMatchObject({ generation: 2, lastReload: { result: 'ok' } });
  }, 240000);

  it('an invalid version is rejected: generation 2 stays, the routes stay', async () => {
    if (!scenario) return;
    writeFileSync(paths.agentConfig, 'pools: [\n');
    const deadline = Date.now() + 15000;
    let s = await agentStatus(tunnels[0]!.netns);
    while (s.config?.lastReload?.result !== 'invalid' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      s = await agentStatus(tunnels[0]!.netns);
    }
    expect(s.config).toMatchObject({ generation: 2, lastReload: { result: 'invalid' } });
    expect(s.config!.lastReload!.message).toMatch(/YAML/);
    const r = await runCommand('vtysh', ['--vty_socket', paths.frrDir, '-c', `show bgp ipv4 unicast ${topo.vips[0]!.address}/32 json`], { netns: routerNs });
    expect(((JSON.parse(r.stdout) as { paths?: unknown[] }).paths ?? []).length).toBe(tunnels.length);
  }, 60000);
});
