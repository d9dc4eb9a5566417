// `npm run bench -- flows`: issue 7's proof of hitless failover and draining. Builds the lab
// three times (on: stored tables and pinning of established flows, the defaults; tables:
// pinning off; off: --set storedTables=false --set dataplane.pinEstablishedFlows=false;
// FLOWS_FEATURES=on,off picks some), holds
// FLOWS_CONNECTIONS (default 200) long-lived TCP connections through the VIP, each
// exchanging a line every 100 ms, and counts survivors of: killing a tunnel node, adding
// an endpoint, removing one gracefully (30 s grace), restarting every tunnel node's
// agent one by one, and the graceful-restart drills (issue 14: gobgpd SIGKILLed and
// restarted; agent and gobgpd restarted together node by node; all of them at once), for
// which it also reports fibGapMs (router FIB polled every ~20 ms); for the kill, deadHopGoneMs
// (when the dead node's next hop left the router's FIB; null: not by the count). FLOWS_SCENARIOS picks
// scenarios, FLOWS_PREFIX the lab prefix, FLOWS_RUNTIME=podman runs the lab in container
// mode. Needs root and a build (`npm run build`). Prints a table, then one JSON line with
// every count.
import { labDown, labFlows, labUp, parseOverride, type FlowsReport, type ScenarioKey, type ScenarioResult } from '../src/lab/index.js';

const CONNECTIONS = Number(process.env.FLOWS_CONNECTIONS ?? 200);
const GRACE_SECONDS = Number(process.env.FLOWS_GRACE_SECONDS ?? 30);
const PREFIX = process.env.FLOWS_PREFIX ?? `kstbf${(process.pid % 1296).toString(36)}-`;
// FLOWS_SCENARIOS=gobgpd-crash,upgrade,restart-all runs only those (default: all).
const ONLY = process.env.FLOWS_SCENARIOS ? (process.env.FLOWS_SCENARIOS.split(',') as ScenarioKey[]) : undefined;
// FLOWS_RUNTIME=podman: the agents and pods as containers of the image (docs/lab.md, container mode).
const RUNTIME = process.env.FLOWS_RUNTIME === 'podman' ? 'podman' : 'process';

// "tables" isolates what pinning adds on top of stored tables.
const FEATURES = [
  { name: 'on', overrides: [] as string[] },
  { name: 'tables', overrides: ['dataplane.pinEstablishedFlows=false'] },
  { name: 'off', overrides: ['storedTables=false', 'dataplane.pinEstablishedFlows=false'] },
  // Graceful restart is on by default (docs/bgp.md); "nogr" is the control for the restart drills (5)-(7), opt-in.
  { name: 'nogr', overrides: ['bgp.gracefulRestart.enabled=false'], optIn: true },
].filter((f) => (process.env.FLOWS_FEATURES ? process.env.FLOWS_FEATURES.split(',').includes(f.name) : !('optIn' in f)));

function row(features: string, s: ScenarioResult): string[] {
  const pct = s.connections ? `${((100 * s.survived) / s.connections).toFixed(1)}%` : '-';
  const target = s.onTarget !== undefined ? `${s.onTargetSurvived}/${s.onTarget}` : '-';
  const fresh = s.newConnections !== undefined ? `${s.newToTarget}/${s.newConnections}` : '-';
  const gap = s.fibGapMs !== undefined ? `${s.fibGapMs} ms` : '-';
  return [s.name, features, String(s.connections), `${s.survived} (${pct})`, String(s.broken), String(s.changedPod), String(s.stalled), target, fresh, gap, s.error ? `FAILED: ${s.error}` : ''];
}

async function main(): Promise<void> {
  const runs: Array<{ features: string; overrides: string[]; report?: FlowsReport; error?: string; seconds: number }> = [];
  for (const f of FEATURES) {
    const t0 = Date.now();
    console.error(`bench flows: lab ${PREFIX} with features ${f.name} ${f.overrides.join(' ')}`);
    try {
      const up = await labUp({ prefix: PREFIX, runtime: RUNTIME, configOverrides: f.overrides.map(parseOverride), progress: (l) => console.error(`  lab: ${l}`) });
      if (!up.state.agents.running) throw new Error(`agents not running: ${up.state.agents.note}`);
      const report = await labFlows({ prefix: PREFIX, ...(ONLY ? { only: ONLY } : {}), connections: CONNECTIONS, newConnections: Math.ceil(CONNECTIONS / 2), graceSeconds: GRACE_SECONDS, progress: (l) => console.error(`  ${l}`) });
      runs.push({ features: f.name, overrides: f.overrides, report, seconds: (Date.now() - t0) / 1000 });
    } catch (err) {
      runs.push({ features: f.name, overrides: f.overrides, error: err instanceof Error ? err.message : String(err), seconds: (Date.now() - t0) / 1000 });
    } finally {
      await labDown(PREFIX).catch(() => undefined);
    }
  }
  const head = ['SCENARIO', 'FEATURES', 'CONNS', 'SURVIVED', 'BROKEN', 'CHANGED POD', 'STALLED', 'ON TARGET SURVIVED', 'NEW TO TARGET', 'FIB GAP', ''];
  const rows = runs.flatMap((r) => r.report ? r.report.scenarios.map((s) => row(r.features, s)) : [[`(lab failed: ${r.error ?? '?'})`, r.features, '', '', '', '', '', '', '', '', '']]);
  rows.sort((a, b) => a[0]!.localeCompare(b[0]!)); // stable: features stay in run order within a scenario
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(`hitless failover and draining: ${CONNECTIONS} long-lived TCP connections per scenario, a line every 100 ms, grace ${GRACE_SECONDS} s`);
  console.log('features: on = the defaults (storedTables, dataplane.pinEstablishedFlows, bgp.gracefulRestart); tables = storedTables only; off = neither; nogr = the defaults without graceful restart');
  console.log(`target: the added pod (2), the drained pod (3); NEW TO TARGET = new connections after the event that reached it`);
  console.log(`${runs[0]?.report?.definition ?? ''}\n`);
  console.log(fmt(head));
  for (const r of rows) console.log(fmt(r));
  for (const r of runs) for (const s of r.report?.scenarios ?? []) console.log(`  ${r.features} ${s.name}: ${s.detail}; connections per pod before: ${Object.entries(s.perPodBefore).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  const figures = Object.fromEntries(runs.map((r) => [r.features, {
    seconds: Math.round(r.seconds), ...(r.error ? { error: r.error } : {}),
    scenarios: Object.fromEntries((r.report?.scenarios ?? []).map((s) => [s.key, {
      connections: s.connections, survived: s.survived, broken: s.broken, changedPod: s.changedPod, stalled: s.stalled,
      ...(s.onTarget !== undefined ? { onTarget: s.onTarget, onTargetSurvived: s.onTargetSurvived } : {}),
      ...(s.newConnections !== undefined ? { newConnections: s.newConnections, newToTarget: s.newToTarget } : {}),
      ...(s.fibGapMs !== undefined ? { fibGapMs: s.fibGapMs, fibSampleMaxMs: s.fibSampleMaxMs } : {}),
      ...(s.key === 'kill' ? { deadHopGoneMs: s.deadHopGoneMs ?? null } : {}),
      ...(s.error ? { error: s.error } : {}),
    }])),
  }]));
  console.log(JSON.stringify({ bench: 'flows', runtime: RUNTIME, connections: CONNECTIONS, graceSeconds: GRACE_SECONDS, ...figures }));
}

main().catch((err: unknown) => {
  console.error(`bench flows: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exit(1);
});
