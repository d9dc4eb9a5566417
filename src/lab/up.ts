// `kst lab up`: builds the lab from its topology: namespaces and links, the FRR router,
// the API server seeded with the lab's objects, echo servers in the pods and, per node,
// gobgpd and `kst agent` exactly as the DaemonSet runs them. Idempotent: a complete lab
// is left alone, leftovers of a broken one are removed first.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand, type CommandRunner } from '../system/index.js';
import { agentConfig, agentConfigYaml, agentEnv, type ConfigOverride } from './agent-config.js';
import { alive, startDaemon } from './daemon.js';
import { labDown, labNamespaces } from './down.js';
import { containerPreflight, startEchoPods, startNodePods, type LabRuntime } from './runtime/container-lab.js';
import { Podman } from './runtime/podman.js';
import { withoutPods } from './runtime/pod-wiring.js';
import { BirdRouter } from './bird.js';
import { FrrRouter, waitFor } from './frr.js';
import { networkPlan, runPlan } from './network-plan.js';
import { distFile, repoRoot, tail } from './paths.js';
import { preflight } from './preflight.js';
import { spineConfig, torBirdConfig, torFrrConfig } from './racks-router-config.js';
import { buildLabTopology } from './racks-topology.js';
import { routerConfig, type RouterConfig } from './router-config.js';
import { waitVipsRouted, type RoutedResult } from './routed.js';
import { seedYaml } from './seed.js';
import { labPaths, readState, torDir, writeState, type LabPaths, type LabProcess, type LabState } from './state.js';
import { host, hostsByRole, kubeNodes, type LabTopology, type TopologyKind } from './topology.js';

export interface UpOptions {
  readonly prefix: string;
  /** Start gobgpd and `kst agent` on every node (default true). */
  readonly agents?: boolean;
  readonly progress?: (line: string) => void;
  /** How long an agent must stay alive to count as started. */
  readonly agentSettleMs?: number;
  readonly run?: CommandRunner;
  /** Changes to the generated agent config (`--set storedTables=false`). */
  readonly configOverrides?: readonly ConfigOverride[];
  /** How long to wait for every VIP to be routed over every tunnel node (default 60 s). */
  readonly routedTimeoutMs?: number;
  /** Host processes (default) or podman containers from deploy/base's DaemonSet (runtime/container-lab.ts). */
  readonly runtime?: LabRuntime;
  /** `default` (one router) or `racks` (two racks with their own ToR, and a spine: racks-topology.ts). */
  readonly topology?: TopologyKind;
}

export interface UpResult {
  readonly alreadyUp: boolean;
  readonly state: LabState;
  /** With the agents: whether the router had every VIP over every tunnel node before `up` returned. */
  readonly routed?: RoutedResult;
}

export class LabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabError';
  }
}

export async function labUp(opts: UpOptions): Promise<UpResult> {
  const progress = opts.progress ?? (() => undefined);
  const run = opts.run ?? runCommand;
  const kind = opts.topology ?? 'default';
  const topo = buildLabTopology(opts.prefix, kind);
  const paths = labPaths(opts.prefix);
  const root = repoRoot();

  const present = await labNamespaces(opts.prefix, run);
  const previous = readState(paths);
  if (previous?.complete && (previous.topology ?? 'default') === kind && topo.hosts.every((h) => present.includes(h.netns))) {
    progress(`lab "${opts.prefix}" is already up (since ${previous.startedAt}); \`kst lab down\` removes it`);
    return { alreadyUp: true, state: previous };
  }
  const containers = opts.runtime === 'podman';
  // The container runtime wires pods to the default topology's single router network.
  if (containers && kind !== 'default') throw new LabError(`--runtime podman builds the default topology only; use --topology ${kind} with the process runtime`);
  const problems = [...await preflight(root, `${opts.prefix}preflight`, run), ...(containers ? await containerPreflight(new Podman(run)) : [])];
  if (problems.length) {
    throw new LabError(`cannot build the lab:\n${problems.map((p) => `  - ${p.what}: ${p.fix}`).join('\n')}`);
  }
  if (present.length || previous) {
    progress('found leftovers of an earlier lab: removing them first');
    await labDown(opts.prefix, progress, run);
  }

  let state: LabState = {
    prefix: opts.prefix, startedAt: new Date().toISOString(), frrDir: paths.frrDir, processes: [],
    agents: { running: false, note: 'not started yet' }, complete: false, runtime: containers ? 'podman' : 'process',
    ...(kind !== 'default' ? { topology: kind } : {}),
  };
  let routed: RoutedResult | undefined;
  const record = (p: LabProcess): void => {
    state = { ...state, processes: [...state.processes, p] };
    writeState(paths, state);
  };
  try {
    for (const d of [paths.dir, paths.logDir, paths.seedDir]) mkdirSync(d, { recursive: true });
    writeState(paths, state);
    // The cluster the agents see is the YAML under deploy/examples/lab/ (edit it to try
    // other Services); a test keeps it in step with the topology's real addresses.
    const seed = join(root, 'deploy/examples/lab/cluster.yaml');
    // The racks lab's cluster is generated: its Nodes carry rack labels and ASN annotations.
    writeFileSync(join(paths.seedDir, 'lab-cluster.yaml'), kind === 'default' && existsSync(seed) ? readFileSync(seed, 'utf8') : seedYaml(topo));
    writeFileSync(paths.agentConfig, agentConfigYaml(topo, opts.configOverrides ?? []));

    // With a container runtime the pods' namespaces are the runtime's: wired when each pod starts.
    const network = containers ? withoutPods(topo) : topo;
    progress(`network: ${network.hosts.length} namespaces, ${network.links.length} links`);
    await runPlan(networkPlan(network), run);

    if (topo.racks) {
      progress(`routers: spine (FRR), ${topo.racks.map((r) => `${r.tor} (${r.torImpl === 'bird' ? 'BIRD 2' : 'FRR'}, AS ${r.torAsn})`).join(', ')}`);
      await startRackRouters(topo, paths, run, record);
    } else {
      progress('router: FRR zebra, bfdd, bgpd');
      await startRouter(topo, paths, run, record);
    }

    progress(`API server: ${topo.apiServer.url}`);
    await startApiServer(topo, paths, record);

    if (containers) {
      const pods = await startEchoPods(topo, paths, record, run);
      state = { ...state, pods: [...(state.pods ?? []), ...pods] };
      writeState(paths, state);
    }
    for (const pod of containers ? [] : hostsByRole(topo, 'pod')) {
      const logFile = join(paths.logDir, `echo-${pod.name}.log`);
      const argv = [process.execPath, distFile('src/lab/echo-server.js'), '--name', pod.name, '--port', String(topo.echoPort)];
      record({ kind: 'echo', host: pod.name, netns: pod.netns, pid: startDaemon({ netns: pod.netns, argv, logFile }), logFile });
    }
    progress(`pods: ${hostsByRole(topo, 'pod').length} echo servers on port ${topo.echoPort}`);

    if (opts.agents ?? true) {
      // Not `{ ...state, agents: await ... }`: the spread would be taken before the await,
      // dropping the processes `record` adds meanwhile.
      const agentsAt = Date.now();
      const agents = await startAgents(topo, paths, root, opts.agentSettleMs ?? 3000, record, containers
        ? async () => {
          const pods = await startNodePods(topo, paths, readFileSync(paths.agentConfig, 'utf8'), record, run);
          state = { ...state, pods: [...(state.pods ?? []), ...pods] };
          writeState(paths, state);
        }
        : undefined);
      state = { ...state, agents };
      progress(state.agents.running ? 'agents: running on every node' : `agents could NOT start: ${state.agents.note}`);
      if (state.agents.running) {
        // Up means routed: the router has every VIP over every tunnel node, so a client's
        // first packet is answered. Else say plainly what is still missing.
        routed = await waitVipsRouted(topo, run, { timeoutMs: opts.routedTimeoutMs ?? 60000, frrDir: paths.frrDir, torDir: (r) => torDir(paths, r.tor, r.torImpl) });
        const where = topo.racks ? 'each ToR has every VIP over its own tunnel node and the spine over every rack' : 'the router has every VIP over every tunnel node';
        progress(routed.ok ? `routes: ${where}, ${((Date.now() - agentsAt) / 1000).toFixed(1)} s after the agents were started` : `routes: NOT complete: ${routed.waitingFor}`);
      }
    } else {
      state = { ...state, agents: { running: false, note: 'not started (--no-agents)' } };
      progress('agents: not started (--no-agents)');
    }
    state = { ...state, complete: true };
    writeState(paths, state);
    return { alreadyUp: false, state, ...(routed ? { routed } : {}) };
  } catch (err) {
    progress(`lab up failed: ${err instanceof Error ? err.message : String(err)}; removing what was built`);
    await labDown(opts.prefix, progress, run).catch(() => undefined);
    throw err;
  }
}

async function startRouter(topo: LabTopology, paths: LabPaths, run: CommandRunner, record: (p: LabProcess) => void): Promise<void> {
  await startFrr(topo, topo.router.host, routerConfig(topo), paths.frrDir, run, record);
}

/** The spine (FRR, in the lab's usual FRR directory, so `lab status` reads it) and each rack's ToR. */
async function startRackRouters(topo: LabTopology, paths: LabPaths, run: CommandRunner, record: (p: LabProcess) => void): Promise<void> {
  await startFrr(topo, topo.router.host, spineConfig(topo), paths.frrDir, run, record);
  for (const rack of topo.racks ?? []) {
    const dir = torDir(paths, rack.tor, rack.torImpl);
    if (rack.torImpl === 'frr') {
      await startFrr(topo, rack.tor, torFrrConfig(topo, rack), dir, run, record);
      continue;
    }
    const h = host(topo, rack.tor);
    const bird = new BirdRouter({ netns: h.netns, conf: torBirdConfig(topo, rack), dir }, run);
    await bird.start().catch((err: unknown) => {
      throw new LabError(`BIRD did not start in ${h.netns}: ${err instanceof Error ? err.message : String(err)}\n${bird.logs()}`);
    });
    const pid = bird.pid();
    if (!pid) throw new LabError(`BIRD in ${h.netns} wrote no pid file:\n${bird.logs()}`);
    record({ kind: 'bird', host: h.name, netns: h.netns, pid, logFile: join(dir, 'bird.log') });
  }
}

async function startFrr(topo: LabTopology, hostName: string, conf: RouterConfig, dir: string, run: CommandRunner, record: (p: LabProcess) => void): Promise<void> {
  const r = host(topo, hostName);
  const frr = new FrrRouter({ netns: r.netns, bgpdConf: conf.bgpdConf, bfddConf: conf.bfddConf, dir }, run);
  await frr.start();
  for (const d of ['zebra', 'bfdd', 'bgpd']) {
    await waitFor(() => frr.pid(d) !== undefined, 5000).catch(() => {
      throw new LabError(`FRR ${d} did not start in ${r.netns}:\n${frr.logs()}`);
    });
    record({ kind: `frr-${d}`, host: r.name, netns: r.netns, pid: frr.pid(d)!, logFile: join(dir, `${d}.log`) });
  }
}

async function startApiServer(topo: LabTopology, paths: LabPaths, record: (p: LabProcess) => void): Promise<void> {
  const h = host(topo, topo.apiServer.host);
  const logFile = join(paths.logDir, 'apiserver.log');
  const argv = [process.execPath, distFile('src/lab/apiserver-main.js'),
    '--listen', `${topo.apiServer.address}:${topo.apiServer.port}`, '--seed', paths.seedDir, '--kubeconfig', paths.kubeconfig,
    // A restarted API server keeps its objects and resourceVersions, as a real one (etcd) does.
    '--state', join(paths.dir, 'apiserver-state.jsonl')];
  const pid = startDaemon({ netns: h.netns, argv, logFile });
  record({ kind: 'apiserver', host: h.name, netns: h.netns, pid, logFile, argv });
  try {
    await waitFor(() => existsSync(paths.kubeconfig) || !alive(pid), 15000);
  } catch {
    throw new LabError(`the API server did not become ready within 15 s:\n${tail(logFile)}`);
  }
  if (!existsSync(paths.kubeconfig)) throw new LabError(`the API server exited:\n${tail(logFile)}`);
}

/** gobgpd as the sidecar, then the agent, on every node; agents that exit early are reported, not fatal. */
async function startAgents(topo: LabTopology, paths: LabPaths, root: string, settleMs: number, record: (p: LabProcess) => void,
  startPods?: () => Promise<void>): Promise<LabState['agents']> {
  const cli = join(root, 'dist/src/cli/main.js');
  const agents: Array<{ node: string; pid: number; logFile: string }> = [];
  // The container runtime starts each node's pod (gobgpd and the agent) from the DaemonSet.
  if (startPods) await startPods();
  for (const n of startPods ? [] : kubeNodes(topo)) {
    const gobgpLog = join(paths.logDir, `gobgpd-${n.name}.log`);
    const gobgpArgv = ['gobgpd', '--api-hosts', '127.0.0.1:50051', '--pprof-disable'];
    record({ kind: 'gobgpd', host: n.name, netns: n.netns, pid: startDaemon({ netns: n.netns, argv: gobgpArgv, logFile: gobgpLog }), logFile: gobgpLog, argv: gobgpArgv });
  }
  // gobgpd's gRPC port comes up within a fraction of a second; the agent retries anyway.
  if (!startPods) await sleep(300);
  for (const p of readState(paths)?.processes.filter((x) => x.kind === 'agent' && x.container) ?? []) {
    agents.push({ node: p.host, pid: p.pid, logFile: p.logFile ?? '' });
  }
  for (const n of startPods ? [] : kubeNodes(topo)) {
    const logFile = join(paths.logDir, `agent-${n.name}.log`);
    const argv = [process.execPath, cli, 'agent', '--config', paths.agentConfig];
    const env = agentEnv(topo, n.name, paths.kubeconfig);
    const pid = startDaemon({ netns: n.netns, argv, logFile, env });
    record({ kind: 'agent', host: n.name, netns: n.netns, pid, logFile, argv, env });
    agents.push({ node: n.name, pid, logFile });
  }
  await sleep(settleMs);
  const dead = agents.filter((a) => !alive(a.pid));
  if (!dead.length) {
    const ready = await agentsReady(topo, 20000);
    const waiting = kubeNodes(topo).filter((n) => !ready.has(n.name)).map((n) => n.name);
    const readiness = waiting.length ? `; /readyz not answering yet on ${waiting.join(', ')}` : '; ready on every node';
    return { running: true, note: `kst agent running on ${agents.length} nodes${readiness}` };
  }
  const first = dead[0]!;
  const why = tail(first.logFile, 3).replace(/\s*\n\s*/g, ' | ') || 'no output';
  return { running: false, note: `${dead.length} of ${agents.length} agents exited (${first.node}: ${why}); logs in ${paths.logDir}` };
}

/** Nodes whose agent answers /readyz (the DaemonSet's readiness probe) within the time. */
async function agentsReady(topo: LabTopology, timeoutMs: number, run: CommandRunner = runCommand): Promise<Set<string>> {
  const ready = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  const listen = String((agentConfig(topo).api as { listen: string }).listen);
  while (Date.now() < deadline && ready.size < kubeNodes(topo).length) {
    await Promise.all(kubeNodes(topo).filter((n) => !ready.has(n.name)).map(async (n) => {
      const r = await run(process.execPath, [distFile('src/lab/probe.js'), 'http', '--method', 'GET', '--url', `http://${listen}/readyz`, '--timeout', '1000'],
        { netns: n.netns, allowFailure: true, timeoutMs: 5000 });
      try {
        if ((JSON.parse(r.stdout) as { status: number }).status === 200) ready.add(n.name);
      } catch {
        /* not answering yet */
      }
    }));
    if (ready.size < kubeNodes(topo).length) await sleep(1000);
  }
  return ready;
}
