// The lab operations of the hitless drills (issue 7): the long-lived flow client, a spare
// pod that joins the Service, EndpointSlice conditions (draining, removal), killing a
// tunnel node outright and restarting agents one by one. Everything acts on one lab
// (its prefix): namespaces it creates carry the prefix, so `kst lab down` removes them.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, startDaemon } from './daemon.js';
import { Podman } from './runtime/podman.js';
import type { FlowConn } from './flow-client.js';
import { waitFor } from './frr.js';
import { distFile } from './paths.js';
import { endpointSliceName, labUid } from './seed.js';
import { readState, writeState, type LabPaths } from './state.js';
import { host, hostsByRole, POD_GATEWAY, primaryIp } from './topology.js';
import { clientNs, flows, probe, routerNs, routerPortOf, StepFailed, vipNextHops, type Ctx } from './traffic.js';

export interface Snapshot {
  readonly at: number;
  readonly markAt: number;
  readonly conns: FlowConn[];
}

/**
 * The flow client as a child process in the client's namespace, one command at a time.
 * Spawned directly rather than through runCommand: it is interactive (commands on stdin
 * while it runs), which runCommand, waiting for a program to end, cannot drive.
 */
export class FlowClient {
  private readonly child: ChildProcess;
  private readonly lines: Interface;
  private readonly waiting: Array<(line: string) => void> = [];
  private stderr = '';

  constructor(ctx: Ctx) {
    this.child = spawn('ip', ['netns', 'exec', clientNs(ctx), process.execPath, distFile('src/lab/flow-client.js'), '--target', ctx.target], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString('utf8')).slice(-2000);
    });
    this.lines = createInterface({ input: this.child.stdout! });
    this.lines.on('line', (l) => this.waiting.shift()?.(l));
  }

  private async send<T>(cmd: string, timeoutMs = 60000): Promise<T> {
    if (this.child.exitCode !== null) throw new StepFailed(`the flow client exited (${this.child.exitCode}): ${this.stderr.trim()}`);
    const answer = new Promise<string>((resolve) => this.waiting.push(resolve));
    this.child.stdin!.write(`${cmd}\n`);
    // Cancelled once answered: a pending 60 s timer per command would keep the caller alive.
    const timeout = new AbortController();
    const line = await Promise.race([answer, sleep(timeoutMs, undefined, { signal: timeout.signal }).catch(() => undefined)]).finally(() => timeout.abort());
    if (line === undefined) throw new StepFailed(`the flow client did not answer "${cmd}" within ${timeoutMs} ms: ${this.stderr.trim()}`);
    const o = JSON.parse(line) as T & { op: string; error?: string };
    if (o.op === 'error') throw new StepFailed(`flow client: ${o.error ?? '?'}`);
    return o;
  }

  open(n: number, label: string): Promise<{ opened: number; failed: number }> {
    return this.send(`open ${n} ${label}`);
  }
  mark(): Promise<{ at: number }> {
    return this.send('mark');
  }
  close(pod: string): Promise<{ closed: number }> {
    return this.send(`close ${pod}`);
  }
  closeAll(): Promise<{ closed: number }> {
    return this.send('closeall');
  }
  snapshot(): Promise<Snapshot> {
    return this.send('snapshot');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.stdin!.end('quit\n');
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    const timeout = new AbortController();
    const done = await Promise.race([exited.then(() => true), sleep(3000, false, { signal: timeout.signal }).catch(() => false)]).finally(() => timeout.abort());
    if (!done) this.child.kill('SIGKILL');
  }
}

// ---------- EndpointSlice ----------

interface SliceEndpoint {
  addresses: string[];
  conditions?: Record<string, boolean>;
  nodeName?: string;
  targetRef?: { kind?: string; namespace?: string; name?: string; uid?: string };
}

function sliceUrl(ctx: Ctx): string {
  const vip = ctx.topo.vips[0]!;
  return `${ctx.topo.apiServer.url}/apis/discovery.k8s.io/v1/namespaces/${vip.serviceNamespace}/endpointslices/${endpointSliceName(vip.serviceName)}`;
}

const apiNs = (ctx: Ctx): string => host(ctx.topo, ctx.topo.apiServer.host).netns;

/** Read-modify-write of the Service's EndpointSlice, as the EndpointSlice controller does. */
async function editSlice(ctx: Ctx, edit: (eps: SliceEndpoint[]) => SliceEndpoint[]): Promise<void> {
  const url = sliceUrl(ctx);
  const got = await probe<{ status: number; body: { endpoints?: SliceEndpoint[] } }>(ctx, apiNs(ctx), ['http', '--method', 'GET', '--url', url]);
  if (got.status !== 200) throw new StepFailed(`GET ${url}: HTTP ${got.status}`);
  const slice = { ...got.body, endpoints: edit(got.body.endpoints ?? []) };
  const put = await probe<{ status: number; body: unknown }>(ctx, apiNs(ctx), ['http', '--method', 'PUT', '--url', url], JSON.stringify(slice));
  if (put.status !== 200) throw new StepFailed(`PUT ${url}: HTTP ${put.status} ${JSON.stringify(put.body).slice(0, 200)}`);
}

/** Draining as Kubernetes shows it: terminating but still serving, not ready for new traffic. */
export const DRAINING = { ready: false, serving: true, terminating: true } as const;
export const READY = { ready: true, serving: true, terminating: false } as const;

export function setEndpointConditions(ctx: Ctx, pod: string, conditions: Record<string, boolean>): Promise<void> {
  return editSlice(ctx, (eps) => {
    const ep = eps.find((e) => e.targetRef?.name === pod);
    if (!ep) throw new StepFailed(`EndpointSlice ${endpointSliceName(ctx.topo.vips[0]!.serviceName)} has no endpoint for pod ${pod}`);
    ep.conditions = { ...conditions };
    return eps;
  });
}

export function removeEndpoint(ctx: Ctx, pod: string): Promise<void> {
  return editSlice(ctx, (eps) => eps.filter((e) => e.targetRef?.name !== pod));
}

// ---------- the spare pod ----------

/** A pod that exists in no EndpointSlice at start: on worker-1, next to worker-1-a and -b. */
export const SPARE = { name: 'worker-1-c', ip: '198.51.100.132', node: 'worker-1', hostIf: 'veth-1c' } as const;

/**
 * Starts the spare pod (namespace, veth, routes, echo server), registers its Pod and adds
 * it to the EndpointSlice as ready: a scale-up as a Deployment would do it.
 */
export async function addSparePod(ctx: Ctx, paths: LabPaths): Promise<string> {
  const node = host(ctx.topo, SPARE.node);
  const ns = `${ctx.topo.prefix}${SPARE.name}`;
  const run = (args: string[], netns?: string): Promise<unknown> => ctx.run(args[0]!, args.slice(1), netns ? { netns } : {});
  await run(['ip', 'netns', 'add', ns]);
  await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  await run(['sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0'], ns);
  await run(['ip', '-n', node.netns, 'link', 'add', SPARE.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await run(['ip', '-n', node.netns, 'link', 'set', SPARE.hostIf, 'up']);
  await run(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
  await run(['ip', '-n', node.netns, 'address', 'add', `${POD_GATEWAY}/32`, 'dev', SPARE.hostIf]);
  await run(['ip', '-n', node.netns, 'route', 'add', `${SPARE.ip}/32`, 'dev', SPARE.hostIf, 'src', primaryIp(node)]);
  await run(['ip', '-n', ns, 'address', 'add', `${SPARE.ip}/32`, 'dev', 'eth0']);
  await run(['ip', '-n', ns, 'route', 'add', `${POD_GATEWAY}/32`, 'dev', 'eth0']);
  await run(['ip', '-n', ns, 'route', 'add', 'default', 'via', POD_GATEWAY, 'dev', 'eth0', 'onlink']);

  const logFile = join(paths.logDir, `echo-${SPARE.name}.log`);
  const argv = [process.execPath, distFile('src/lab/echo-server.js'), '--name', SPARE.name, '--port', String(ctx.topo.echoPort)];
  const pid = startDaemon({ netns: ns, argv, logFile });
  const state = readState(paths);
  if (state) writeState(paths, { ...state, processes: [...state.processes, { kind: 'echo', host: SPARE.name, netns: ns, pid, logFile, argv }] });
  const direct = { ...ctx, target: `${SPARE.ip}:${ctx.topo.echoPort}` };
  await waitFor(async () => (await flows(direct, 1).catch(() => undefined))?.ok === 1, 10000, 200)
    .catch(() => { throw new StepFailed(`the spare pod's echo server did not answer on ${SPARE.ip} within 10 s`); });

  const vip = ctx.topo.vips[0]!;
  const podsUrl = `${ctx.topo.apiServer.url}/api/v1/namespaces/${vip.serviceNamespace}/pods`;
  const pod = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: SPARE.name, namespace: vip.serviceNamespace, uid: labUid('Pod', vip.serviceNamespace, SPARE.name), labels: { app: 'echo' } },
    spec: { nodeName: SPARE.node, containers: [{ name: 'echo', image: 'kst-lab/echo-server', ports: [{ containerPort: ctx.topo.echoPort }] }] },
    status: {
      phase: 'Running', podIP: SPARE.ip, podIPs: [{ ip: SPARE.ip }], hostIP: primaryIp(node),
      conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: [{ name: 'echo', ready: true, containerID: `lab://${ns}` }],
    },
  };
  const created = await probe<{ status: number; body: unknown }>(ctx, apiNs(ctx), ['http', '--method', 'POST', '--url', podsUrl], JSON.stringify(pod));
  if (created.status !== 201) throw new StepFailed(`POST ${podsUrl}: HTTP ${created.status} ${JSON.stringify(created.body).slice(0, 200)}`);
  await editSlice(ctx, (eps) => [...eps, {
    addresses: [SPARE.ip], conditions: { ...READY }, nodeName: SPARE.node,
    targetRef: { kind: 'Pod', namespace: vip.serviceNamespace, name: SPARE.name, uid: labUid('Pod', vip.serviceNamespace, SPARE.name) },
  }]);
  return SPARE.name;
}

/** Short connections until one reaches `pod` (the agents have programmed it); false after the timeout. */
export function reachable(ctx: Ctx, pod: string, timeoutMs: number): Promise<boolean> {
  return waitFor(async () => ((await flows(ctx, 32).catch(() => undefined))?.perPod[pod] ?? 0) > 0, timeoutMs, 500).then(() => true, () => false);
}

// ---------- tunnel nodes and agents ----------

/** The VIP over every tunnel node again (each drill starts from a whole system). */
export async function settled(ctx: Ctx, timeoutMs = 45000): Promise<void> {
  const want = hostsByRole(ctx.topo, 'tunnel-node').length;
  await waitFor(async () => (await vipNextHops(ctx)).length >= want, timeoutMs, 250)
    .catch(() => { throw new StepFailed(`the router did not have ${ctx.vip} over all ${want} tunnel nodes within ${timeoutMs / 1000} s`); });
}

/**
 * A tunnel node dies (power, kernel panic, cable): its link goes down on both ends, then its
 * agent and gobgpd are SIGKILLed. Links first, because a dead node sends nothing more: the
 * other order lets the kernel deliver gobgpd's FIN first, which the router takes for a
 * restarting speaker and keeps its routes stale for the restart time (docs/bgp.md).
 */
export async function killTunnelNode(ctx: Ctx, paths: LabPaths, name: string): Promise<void> {
  const state = readState(paths);
  const procs = (state?.processes ?? []).filter((p) => p.host === name && (p.kind === 'agent' || p.kind === 'gobgpd') && alive(p.pid));
  if (procs.length < 2) throw new StepFailed(`${name}: expected a running agent and gobgpd in the lab state, found ${procs.map((p) => p.kind).join(', ') || 'none'}`);
  await ctx.run('ip', ['-n', host(ctx.topo, name).netns, 'link', 'set', 'eth0', 'down']);
  await ctx.run('ip', ['-n', routerNs(ctx), 'link', 'set', routerPortOf(ctx, name), 'down']);
  for (const p of procs) process.kill(p.pid, 'SIGKILL');
  await waitFor(() => procs.every((p) => !alive(p.pid)), 5000);
}

async function agentReady(ctx: Ctx, netns: string): Promise<boolean> {
  const r = await probe<{ status: number }>(ctx, netns, ['http', '--method', 'GET', '--url', 'http://127.0.0.1:9742/readyz', '--timeout', '1000']).catch(() => undefined);
  return r?.status === 200;
}

/** SIGTERM the agent (it withdraws and drains as in a rolling update), wait, start it as `lab up` did. */
export async function restartAgent(ctx: Ctx, paths: LabPaths, name: string, progress: (line: string) => void): Promise<void> {
  const state = readState(paths);
  const p = state?.processes.find((x) => x.kind === 'agent' && x.host === name);
  if (!state || !(p?.argv || p?.container) || !alive(p.pid)) throw new StepFailed(`${name}: no running agent with a known command line in the lab state`);
  const t0 = Date.now();
  process.kill(p.pid, 'SIGTERM');
  await waitFor(() => !alive(p.pid), 20000, 100).catch(() => { throw new StepFailed(`${name}: the agent did not exit within 20 s of SIGTERM`); });
  const stoppedMs = Date.now() - t0;
  // With --runtime podman the agent is a container: started again as the kubelet restarts it.
  const pid = p.container ? await new Podman(ctx.run).restart(p.container)
    : startDaemon({ netns: p.netns, argv: p.argv!, logFile: p.logFile ?? join(paths.logDir, `agent-${name}.log`), ...(p.env ? { env: p.env } : {}) });
  writeState(paths, { ...state, processes: state.processes.map((x) => (x === p ? { ...x, pid } : x)) });
  // 60 s as in restart-ops.ts: a container's start (podman, runc) adds seconds on a loaded machine.
  await waitFor(() => agentReady(ctx, p.netns), 60000, 500).catch(() => { throw new StepFailed(`${name}: the restarted agent was not ready within 60 s`); });
  await settled(ctx);
  progress(`    ${name}: agent stopped in ${stoppedMs} ms, back and announcing ${((Date.now() - t0) / 1000).toFixed(1)} s after SIGTERM`);
}
