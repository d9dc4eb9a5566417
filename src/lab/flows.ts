// The hitless drills of issue 7 on a running lab: long-lived TCP connections through the
// VIP while (1) a tunnel node dies, (2) an endpoint is added, (3) an endpoint is removed
// gracefully (terminating + serving for a grace period, then gone) and (4) the agent on
// every tunnel node restarts one by one. Counts survivors (SURVIVAL_DEFINITION) and where
// new connections land. One lab runs the scenarios in the order add, drain, restart, kill,
// each with its own connections and from a settled system (the VIP over every tunnel node),
// so the kill, which leaves the lab damaged, comes last.
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand, type CommandRunner } from '../system/index.js';
import { STALL_MS, SURVIVAL_DEFINITION, type FlowConn } from './flow-client.js';
import {
  addSparePod, DRAINING, FlowClient, killTunnelNode, reachable, removeEndpoint, restartAgent, setEndpointConditions, settled,
} from './flow-ops.js';
import { crashGobgpd, FibWatch, refreshed, restartAllNodes, tunnelNodeHops, upgradeNode, type FibGaps } from './restart-ops.js';
import { changeConfigLive } from './live-config-ops.js';
import { rollingUpdate } from './runtime/rollout.js';
import { labPaths, readState } from './state.js';
import { buildTopology, hostsByRole, primaryIp } from './topology.js';
import { vipNextHops, type Ctx } from './traffic.js';

// The graceful-restart drills (gobgpd-crash, upgrade, restart-all) come before the kill,
// which leaves the lab damaged. `rollout` (a rolling image update of the DaemonSet) runs in
// container mode only (`kst lab up --runtime podman`).
export const SCENARIO_KEYS = ['add', 'drain', 'restart', 'gobgpd-crash', 'upgrade', 'restart-all', 'live-config', 'rollout', 'kill'] as const;
export type ScenarioKey = (typeof SCENARIO_KEYS)[number];

export interface ScenarioResult {
  readonly key: ScenarioKey;
  readonly name: string;
  /** Connections held through the event (opened before it). */
  readonly connections: number;
  readonly survived: number;
  /** Reset, errored or closed by the far side after the event, or answered by another pod. */
  readonly broken: number;
  /** Of the broken: answered by another pod than the one that greeted them. */
  readonly changedPod: number;
  /** Still open but silent for STALL_MS or more. */
  readonly stalled: number;
  /** The pod the scenario adds or drains, and how the connections on it fared. */
  readonly targetPod?: string;
  readonly onTarget?: number;
  readonly onTargetSurvived?: number;
  /** Connections opened after the event, and how many of them reached the target pod. */
  readonly newConnections?: number;
  readonly newToTarget?: number;
  readonly perPodBefore: Record<string, number>;
  /**
   * Graceful-restart drills: the longest time the router's FIB had no next hop for the
   * VIP or lacked a restarting node's next hop (FibWatch, polled every ~20 ms).
   */
  readonly fibGapMs?: number;
  /**
   * Kill only: from the node's death until the router's FIB stopped using its next hop;
   * undefined when it still did at the count (a router that kept the dead node's routes).
   */
  readonly deadHopGoneMs?: number;
  /** The longest time between two FIB reads (the resolution of fibGapMs). */
  readonly fibSampleMaxMs?: number;
  readonly detail: string;
  readonly error?: string;
}

export interface FlowsOptions {
  readonly prefix: string;
  /** Long-lived connections per scenario (the issue: at least 200). */
  readonly connections?: number;
  /** Connections opened after an add or a drain to see where new flows go. */
  readonly newConnections?: number;
  /** Termination grace of the graceful removal (the issue: 30 s). */
  readonly graceSeconds?: number;
  readonly only?: readonly ScenarioKey[];
  readonly progress?: (line: string) => void;
  readonly run?: CommandRunner;
}

export interface FlowsReport {
  readonly prefix: string;
  readonly definition: string;
  readonly scenarios: ScenarioResult[];
}

const STEADY_MS = 2000;

function count(conns: readonly FlowConn[]): Pick<ScenarioResult, 'connections' | 'survived' | 'broken' | 'changedPod' | 'stalled' | 'perPodBefore'> {
  const perPodBefore: Record<string, number> = {};
  for (const c of conns) if (c.pod) perPodBefore[c.pod] = (perPodBefore[c.pod] ?? 0) + 1;
  return {
    connections: conns.length,
    survived: conns.filter((c) => c.survived).length,
    broken: conns.filter((c) => c.state === 'broken').length,
    changedPod: conns.filter((c) => c.changedPod).length,
    stalled: conns.filter((c) => c.state !== 'broken' && !c.survived).length,
    perPodBefore,
  };
}

function podsText(p: Record<string, number>): string {
  return Object.entries(p).sort().map(([k, v]) => `${k}=${v}`).join(' ');
}

interface Env {
  readonly ctx: Ctx;
  readonly client: FlowClient;
  readonly opts: Required<Pick<FlowsOptions, 'connections' | 'newConnections' | 'graceSeconds'>>;
  readonly paths: ReturnType<typeof labPaths>;
  readonly progress: (line: string) => void;
}

/** Opens the scenario's connections, lets them settle and marks the event's start. */
async function hold(env: Env, label: string): Promise<void> {
  await settled(env.ctx);
  const o = await env.client.open(env.opts.connections, label);
  if (o.opened < env.opts.connections * 0.9) throw new Error(`only ${o.opened} of ${env.opts.connections} connections opened (${o.failed} failed)`);
  await sleep(STEADY_MS);
  await env.client.mark();
}

async function held(env: Env, label: string): Promise<FlowConn[]> {
  const snap = await env.client.snapshot();
  // Connections that had already failed before the event are not part of it.
  return snap.conns.filter((c) => c.label === label && (c.state !== 'broken' || c.brokenSinceMark));
}

async function newcomers(env: Env, label: string): Promise<FlowConn[]> {
  await env.client.open(env.opts.newConnections, label);
  return (await env.client.snapshot()).conns.filter((c) => c.label === label);
}

async function scenarioAdd(env: Env): Promise<Omit<ScenarioResult, 'key' | 'name'>> {
  await hold(env, 'add');
  const spare = await addSparePod(env.ctx, env.paths);
  const programmed = await reachable(env.ctx, spare, 15000);
  const fresh = await newcomers(env, 'add-new');
  await sleep(3000);
  const conns = await held(env, 'add');
  const c = count(conns);
  const newToTarget = fresh.filter((x) => x.pod === spare).length;
  return {
    ...c, targetPod: spare, newConnections: fresh.length, newToTarget,
    detail: `${spare} joined${programmed ? '' : ' (no short probe reached it within 15 s)'}; new connections: ${podsText(count(fresh).perPodBefore)}`,
  };
}

async function scenarioDrain(env: Env, victim: string): Promise<Omit<ScenarioResult, 'key' | 'name'>> {
  await hold(env, 'drain');
  const t0 = Date.now();
  await setEndpointConditions(env.ctx, victim, DRAINING);
  await sleep(3000);
  const fresh = await newcomers(env, 'drain-new');
  // The victim's clients finish before the grace runs out; then the pod is gone.
  const endAt = t0 + env.opts.graceSeconds * 1000 - 2000;
  await sleep(Math.max(0, endAt - Date.now()));
  await env.client.close(victim);
  await sleep(Math.max(0, t0 + env.opts.graceSeconds * 1000 - Date.now()));
  await removeEndpoint(env.ctx, victim);
  await sleep(3000);
  const conns = await held(env, 'drain');
  const on = conns.filter((x) => x.pod === victim);
  return {
    ...count(conns), targetPod: victim, onTarget: on.length, onTargetSurvived: on.filter((x) => x.survived).length,
    newConnections: fresh.length, newToTarget: fresh.filter((x) => x.pod === victim).length,
    detail: `${victim} terminating for ${env.opts.graceSeconds} s, its ${on.length} connections ended by the client at ${env.opts.graceSeconds - 2} s, then removed; new connections: ${podsText(count(fresh).perPodBefore)}`,
  };
}

async function scenarioRestart(env: Env): Promise<Omit<ScenarioResult, 'key' | 'name'>> {
  await hold(env, 'restart');
  for (const n of hostsByRole(env.ctx.topo, 'tunnel-node')) await restartAgent(env.ctx, env.paths, n.name, env.progress);
  await sleep(2000);
  const c = count(await held(env, 'restart'));
  return { ...c, detail: `agents on ${hostsByRole(env.ctx.topo, 'tunnel-node').map((n) => n.name).join(', ')} restarted one by one (SIGTERM, exit, start, ready)` };
}

function gapText(g: FibGaps): string {
  return `router FIB: longest gap ${g.fibGapMs} ms (VIP without next hop ${g.vipGapMs} ms, restarting node's next hop missing ${g.nodeGapMs} ms; ${g.samples} samples, at most ${g.maxSampleIntervalMs} ms apart)`;
}

async function scenarioGobgpdCrash(env: Env): Promise<Omit<ScenarioResult, 'key' | 'name'>> {
  await hold(env, 'gobgpd-crash');
  const victim = hostsByRole(env.ctx.topo, 'tunnel-node')[0]!.name;
  const watch = new FibWatch(env.ctx, tunnelNodeHops(env.ctx, [victim]));
  const t0 = Date.now();
  let gaps: FibGaps;
  try {
    await crashGobgpd(env.ctx, env.paths, victim, 2000);
    await refreshed(env.ctx, env.paths);
  } finally {
    gaps = await watch.stop();
  }
  const backMs = Date.now() - t0;
  await sleep(1000);
  const c = count(await held(env, 'gobgpd-crash'));
  return { ...c, fibGapMs: gaps.fibGapMs, fibSampleMaxMs: gaps.maxSampleIntervalMs, targetPod: victim, detail: `${victim}: gobgpd SIGKILLed, restarted 2 s later, fresh paths at the router ${(backMs / 1000).toFixed(1)} s after the kill; ${gapText(gaps)}` };
}

async function scenarioUpgrade(env: Env): Promise<Omit<ScenarioResult, 'key' | 'name'>> {
  await hold(env, 'upgrade');
  const nodes = hostsByRole(env.ctx.topo, 'tunnel-node').map((n) => n.name);
  const watch = new FibWatch(env.ctx, tunnelNodeHops(env.ctx));
  const took: string[] = [];
  let gaps: FibGaps;
  try {
    for (const n of nodes) {
      const ms = await upgradeNode(env.ctx, env.paths, n);
      await refreshed(env.ctx, env.paths);
      took.push(`${n} ready in ${(ms / 1000).toFixed(1)} s`);
      env.progress(`    ${n}: agent (SIGUSR2) and gobgpd (SIGKILL) restarted, ready in ${(ms / 1000).toFixed(1)} s, fresh paths at the router`);
    }
  } finally {
    gaps = await watch.stop();
  }
  await sleep(1000);
  const c = count(await held(env, 'upgrade'));
  return { ...c, fibGapMs: gaps.fibGapMs, fibSampleMaxMs: gaps.maxSampleIntervalMs, detail: `agent (SIGUSR2: restart in place) and gobgpd (SIGKILL) of each tunnel node restarted together, node by node (${took.join(', ')}); ${gapText(gaps)}` };
}

async function scenarioRestartAll(env: Env): Promise<Omit<ScenarioResult, 'key' | 'name'>> {
  await hold(env, 'restart-all');
  const watch = new FibWatch(env.ctx, tunnelNodeHops(env.ctx));
  const t0 = Date.now();
  let gaps: FibGaps;
  try {
    await restartAllNodes(env.ctx, env.paths);
    await refreshed(env.ctx, env.paths);
  } finally {
    gaps = await watch.stop();
  }
  const backMs = Date.now() - t0;
  await sleep(1000);
  const c = count(await held(env, 'restart-all'));
  return { ...c, fibGapMs: gaps.fibGapMs, fibSampleMaxMs: gaps.maxSampleIntervalMs, detail: `agent and gobgpd of every tunnel node SIGKILLed at once and restarted; fresh paths from all at the router after ${(backMs / 1000).toFixed(1)} s; ${gapText(gaps)}` };
}

async function scenarioLiveConfig(env: Env): Promise<Omit<ScenarioResult, 'key' | 'name'>> {
  await hold(env, 'live-config');
  const ch = await changeConfigLive(env.ctx, env.paths);
  await sleep(2000);
  const c = count(await held(env, 'live-config'));
  const peers = ch.addedPeers.length ? `peers ${ch.addedPeers.join(', ')} added and ` : '';
  return { ...c, detail: `config file renamed over with ${peers}community ${ch.community} on the pool: the router had the community on every path ${ch.communityMs} ms later${ch.addedPeers.length ? `, every session Established ${ch.routerSawItMs} ms later` : ''}; sessions there before that went down meanwhile: ${ch.resetSessions.join(', ') || 'none'}; agents (pids ${ch.agentPids.join(', ')}) not restarted` };
}

/** The DaemonSet's RollingUpdate to a new image tag, node by node (runtime/rollout.ts), with the flows held through it. */
async function scenarioRollout(env: Env): Promise<Omit<ScenarioResult, 'key' | 'name'>> {
  await hold(env, 'rollout');
  const steps = await rollingUpdate(env.ctx.topo, env.paths, (l) => env.progress(`    ${l}`), { run: env.ctx.run });
  await settled(env.ctx);
  await sleep(2000);
  const c = count(await held(env, 'rollout'));
  return { ...c, detail: `every node's pod replaced by the new image tag one node at a time, old pod stopped with its preStop hooks and grace period (${steps.map((s) => `${s.node} ready in ${(s.ms / 1000).toFixed(1)} s`).join(', ')})` };
}

async function scenarioKill(env: Env): Promise<Omit<ScenarioResult, 'key' | 'name'>> {
  await hold(env, 'kill');
  const node = hostsByRole(env.ctx.topo, 'tunnel-node')[0]!;
  const victim = node.name;
  const t0 = Date.now();
  await killTunnelNode(env.ctx, env.paths, victim);
  // Until the count: when does the router stop forwarding to the dead node (BFD, not the
  // restart time of graceful restart)? One read per `ip` spawn: coarse on a loaded machine.
  let goneMs: number | undefined;
  while (Date.now() - t0 < STALL_MS + 3000) {
    if (goneMs === undefined && !(await vipNextHops(env.ctx).catch(() => [primaryIp(node)])).includes(primaryIp(node))) goneMs = Date.now() - t0;
    await sleep(goneMs === undefined ? 50 : 500);
  }
  const c = count(await held(env, 'kill'));
  const gone = goneMs === undefined ? `the router still had its next hop ${((Date.now() - t0) / 1000).toFixed(1)} s later` : `its next hop left the router's FIB ${goneMs} ms after`;
  return { ...c, targetPod: victim, ...(goneMs !== undefined ? { deadHopGoneMs: goneMs } : {}), detail: `${victim}: its link down on both ends, agent and gobgpd SIGKILLed; ${gone}` };
}

const NAMES: Record<ScenarioKey, string> = {
  kill: '(1) kill a tunnel node',
  add: '(2) add an endpoint',
  drain: '(3) graceful removal',
  restart: '(4) restart agents one by one',
  'gobgpd-crash': '(5) gobgpd crash (graceful restart)',
  upgrade: '(6) upgrade node by node (graceful restart)',
  'restart-all': '(7) restart every node at once (graceful restart)',
  'live-config': '(8) config change applied live (peer, communities)',
  rollout: '(9) rolling image update (container mode)',
};

export async function labFlows(opts: FlowsOptions): Promise<FlowsReport> {
  const progress = opts.progress ?? (() => undefined);
  const topo = buildTopology({ prefix: opts.prefix });
  const paths = labPaths(opts.prefix);
  const state = readState(paths);
  if (!state?.complete) throw new Error(`lab "${opts.prefix}" is not up: run \`kst lab up\` first`);
  // Its scenarios pull cables and read next hops at the default lab's single router.
  if (state.topology && state.topology !== 'default') throw new Error(`lab "${opts.prefix}" runs the ${state.topology} topology; the flow drills need the default one (\`kst lab up\` without --topology)`);
  if (!state.agents.running) throw new Error(`the flow drills need the agents, and they are not running: ${state.agents.note}`);
  const vip = topo.vips[0]!.address;
  const ctx: Ctx = { topo, run: opts.run ?? runCommand, vip, target: `${vip}:${topo.echoPort}` };
  const client = new FlowClient(ctx);
  const env: Env = {
    ctx, client, paths, progress,
    opts: { connections: opts.connections ?? 200, newConnections: opts.newConnections ?? 100, graceSeconds: opts.graceSeconds ?? 30 },
  };
  const victim = hostsByRole(topo, 'pod')[0]!.name;
  const runs: Record<ScenarioKey, () => Promise<Omit<ScenarioResult, 'key' | 'name'>>> = {
    add: () => scenarioAdd(env),
    drain: () => scenarioDrain(env, victim),
    restart: () => scenarioRestart(env),
    'gobgpd-crash': () => scenarioGobgpdCrash(env),
    upgrade: () => scenarioUpgrade(env),
    'restart-all': () => scenarioRestartAll(env),
    'live-config': () => scenarioLiveConfig(env),
    rollout: () => scenarioRollout(env),
    kill: () => scenarioKill(env),
  };
  const scenarios: ScenarioResult[] = [];
  try {
    // A rolling image update needs the image and its pods: container mode only.
    // rollout needs the containers; live-config rewrites the host's config file, which the
    // containers see only as the copy their ConfigMap directory was made from.
    const podman = state.runtime === 'podman';
    const runtimeHas = (k: ScenarioKey): boolean => (k === 'rollout' ? podman : k === 'live-config' ? !podman : true);
    for (const key of SCENARIO_KEYS.filter((k) => (!opts.only || opts.only.includes(k)) && runtimeHas(k))) {
      progress(`flows: ${NAMES[key]} with ${env.opts.connections} connections ...`);
      try {
        const r = { key, name: NAMES[key], ...(await runs[key]()) };
        scenarios.push(r);
        progress(`  ${r.survived}/${r.connections} survived, ${r.broken} broken (${r.changedPod} changed pod), ${r.stalled} stalled; ${r.detail}`);
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        scenarios.push({ key, name: NAMES[key], connections: 0, survived: 0, broken: 0, changedPod: 0, stalled: 0, perPodBefore: {}, detail: 'failed', error });
        progress(`  FAILED: ${error}`);
      }
      await client.closeAll().catch(() => undefined);
    }
  } finally {
    await client.stop();
  }
  scenarios.sort((a, b) => NAMES[a.key].localeCompare(NAMES[b.key]));
  return { prefix: opts.prefix, definition: SURVIVAL_DEFINITION.replace('STALL_MS', `${STALL_MS} ms`), scenarios };
}
