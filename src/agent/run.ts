// Builds the real parts from the configuration and runs the agent until a signal.
import { hostname } from 'node:os';
import { ConfigFileWatcher, type Config, type ConfigSources } from '../config/index.js';
import { IncrementalModel } from '../model/index.js';
import type { ClusterSnapshot, DesiredState, IpAddress } from '../model/index.js';
import { ClusterWatcher, KubeEventSink, LeaderElector, LoadBalancerStatusWriter, SecretReader, leaseIdentity, leaseNamespace, loadKubeConfig } from '../kube/index.js';
import { TunnelDataplane } from '../dataplane/index.js';
import { NamespaceFinder, PodNetworks } from '../podnet/index.js';
import { bgpSpeakerFromConfig, gracefulRestartSpec, type BgpSpeaker, type GobgpClient } from '../bgp/index.js';
import { BfdBgpBinding, ThreadedBfdManager, bfdSessionsFor, ensureGtsm, localAddressTowards, type BfdSessionRunner } from '../bfd/index.js';
import { ObserveServer, collectProcessMetrics, memoryReport, registerMemoryMetrics, type Logger, type ThreadMemoryReport } from '../observe/index.js';
import { ReconcileLoop, startAll, stopAll, type Component, type LoopHealth, type PassOutcome } from '../system/index.js';
import { Agent, type LoadBalancerStatusInput } from './agent.js';
import { bfdReadiness, bgpReadiness, dataplaneReadiness, livenessOf } from './health.js';
import { labPodScope } from './lab-scope.js';
import { PeerSessions } from './peer-sessions.js';
import { buildStatusReport, kubeReadiness, kubeReport } from './status.js';
import { registerAgentMetrics } from './metrics.js';
import { BucketTableWriter } from '../kube/table-writer.js';
import { probeFlowHash, reportFlowHash } from '../dataplane/flow-hash-probe.js';
import { probeAndAssess, registerKernelMetrics, reportKernel } from './kernel-report.js';
import { LiveConfig } from './live-config.js';

/** Events closer than this become one snapshot (see the watcher's construction). */
const WATCH_BURST_MS = 5;

export interface RunAgentOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly kubeconfigPath?: string;
  /** Namespace of the leader-election Lease; default the pod's own (POD_NAMESPACE, kube/lease-identity.ts). */
  readonly leaseNamespace?: string;
  /** How `config` was loaded: the file is watched and reloaded from the same sources (live-config.ts). */
  readonly sources?: ConfigSources;
}

export async function runAgent(opts: RunAgentOptions): Promise<number> {
  const { config, logger: log } = opts;
  const nodeName = config.nodeName ?? process.env.NODE_NAME ?? hostname();
  collectProcessMetrics();

  const { client: kube, origin, where } = loadKubeConfig(opts.kubeconfigPath ? { path: opts.kubeconfigPath } : {});
  log.info(`node ${nodeName}: mode ${config.encapsulation.mode}, Kubernetes API from ${origin} (${where})`);

  const events = new KubeEventSink({ kubeConfig: kube, host: nodeName, logger: log });

  // Once, at start: the backend decides the marks of every VIP packet (docs/troubleshooting.md).
  const { decision: flowHashDecision, results: flowHashProbes } = await probeFlowHash(config.dataplane.flowHash);
  const flowHash = reportFlowHash(flowHashDecision, nodeName, log, events);
  // Once, at start: what this kernel can do against what the configuration needs; the model
  // neither announces nor programs what it cannot carry (docs/troubleshooting.md).
  const kernel = await probeAndAssess(config, flowHashProbes);
  reportKernel(kernel, nodeName, log, events);
  registerKernelMetrics(() => kernel);
  const model = new IncrementalModel(config, nodeName, { storedTables: config.storedTables, kernel: kernel.limits });
  const flowHashReason = flowHashDecision.ok ? (flowHashDecision.problem ?? flowHashDecision.reason) : flowHashDecision.error;
  const dataplane = new TunnelDataplane({ config, logger: log, events, flowHash });
  // The lab runs several "nodes" on one machine: each agent may only look at its own lab's
  // pod namespaces, never at other namespaces on the machine holding the same addresses.
  const labPrefix = process.env.KST_LAB_NETNS_PREFIX;
  const podnet = new PodNetworks({
    ...(labPrefix ? { finder: new NamespaceFinder({ accept: labPodScope(labPrefix) }) } : {}),
    encap: { mode: config.encapsulation.mode, vni: config.encapsulation.vni, vxlanPort: config.encapsulation.vxlanPort, mplsLabel: config.encapsulation.mplsLabel },
    events,
    logger: log,
    // The orphan sweep only visits namespaces holding a pod IP the API places on this node.
    podRanges: () => (watcher.snapshot?.localPods ?? []).filter((p) => !p.hostNetwork).flatMap((p) => p.podIps),
  });

  let speaker: BgpSpeaker | undefined;
  let gobgp: GobgpClient | undefined;
  let bfd: BfdSessionRunner | undefined;
  let bfdThread: ThreadedBfdManager | undefined;
  let binding: BfdBgpBinding | undefined;
  let peerSessions: PeerSessions | undefined;
  let needsBfd = false;
  // The BFD profiles in force: a live config change replaces them (live-config.ts).
  let bfdProfiles = config.bfd.profiles;
  if (config.bgp.enabled) {
    // AS, router id and peers are this node's (model/peers.ts): the speaker starts once the
    // first desired state names them (PeerSessions).
    ({ client: gobgp, speaker } = bgpSpeakerFromConfig(config.bgp, { routerId: config.bgp.routerId ?? '0.0.0.0', logger: log }));
    const bgpSpeaker = speaker;
    needsBfd = config.bgp.peers.some((p) => p.bfdProfile !== undefined);
    if (needsBfd) {
      try {
        await ensureGtsm();
      } catch (err) {
        log.warn(`bfd: could not install the TTL-255 filter (RFC 5881): ${err instanceof Error ? err.message : String(err)}`);
      }
      // On a worker thread: a busy main thread (resync, relist, GC) cannot delay BFD (docs/bfd.md).
      bfd = bfdThread = new ThreadedBfdManager({ logger: log });
      // Declarative on the speaker, so a peer held down by BFD stays down across a gobgpd restart.
      // Gated: each session answers only while its BGP session is Established, so FRR never
      // sees it Up before it re-registers the session on Established (docs/bfd.md).
      const bfdBgp = new BfdBgpBinding(
        bfd,
        {
          disablePeer: async (address, reason) => bgpSpeaker.setPeerAdminDown(address, true, reason),
          enablePeer: async (address) => bgpSpeaker.setPeerAdminDown(address, false),
        },
        log,
        // The gated peers are this node's, set with its BFD sessions (PeerSessions below).
        { gatedPeers: [] },
      );
      binding = bfdBgp;
      bgpSpeaker.on('peer', (p) => bfdBgp.bgpSessionState(p.address, p.state));
      binding.start();
    }
    const secrets = new SecretReader({ kubeConfig: kube, namespace: opts.leaseNamespace ?? leaseNamespace() });
    const bfdRunner = bfd;
    peerSessions = new PeerSessions({
      speaker,
      logger: log,
      listenPort: config.bgp.listenPort,
      peerDefaults: gracefulRestartSpec(config.bgp),
      readSecret: (name, key) => secrets.read(name, key),
      localAddressTowards: (peer) => localAddressTowards(peer),
      ...(bfdRunner
        ? {
            setBfdPeers: async (peers) => {
              const locals = new Map<string, string | undefined>();
              for (const p of peers) locals.set(p.address, p.sourceAddress ?? (await localAddressTowards(p.address)));
              const plan = bfdSessionsFor(peers, bfdProfiles, (peer) => locals.get(peer));
              for (const problem of plan.problems) log.warn(`bfd: ${problem}`);
              binding?.setGatedPeers(plan.sessions.map((s) => s.peer));
              await bfdRunner.setSessions(plan.sessions);
            },
          }
        : {}),
    });
  }

  // One writer of cluster-wide state (LoadBalancer status, stored bucket tables): the Lease
  // holder. Every writer asks the elector at the moment it writes; leadership ends by the
  // elector's own clock when a renew is overdue, even while the renew request still hangs.
  const leaseNs = opts.leaseNamespace ?? leaseNamespace();
  const elector = new LeaderElector({
    kubeConfig: kube,
    namespace: leaseNs,
    name: 'kube-service-tunnel',
    identity: leaseIdentity(),
    events,
    eventRef: { kind: 'Node', name: nodeName },
    logger: log,
    onStartedLeading: () => log.info('leading: this agent writes LoadBalancer status and stored bucket tables'),
    onStoppedLeading: () => log.info('not leading: LoadBalancer status and stored bucket tables are left to the Lease holder'),
  });
  const isLeader = () => elector.isLeader;
  log.info(`leader election: Lease ${leaseNs}/kube-service-tunnel as ${elector.identity}`);
  const lbWriter = new LoadBalancerStatusWriter({ kubeConfig: kube, loadBalancerClass: config.loadBalancerClass, isLeader, events, logger: log });
  // Stored bucket tables (issue 7): written by the Lease holder only, read by every node.
  const tableWriter = new BucketTableWriter({ kubeConfig: kube, annotationKey: config.annotationKey, isLeader, events, logger: log });
  // LoadBalancer status on its own loop: a failed write is retried there, not by the agent.
  const lbStatus = new ReconcileLoop<LoadBalancerStatusInput, PassOutcome>({
    name: 'lb-status',
    pass: async (input) => {
      if (!input) return { ok: true };
      const r = await lbWriter.set(input.snapshot.services, input.ingress as ReadonlyMap<string, readonly IpAddress[]>);
      return r.failed.length > 0 ? { ok: false, error: r.failed.map((f) => `${f.key}: ${f.error}`).join('; ') } : { ok: true };
    },
    failed: (error) => ({ ok: false, error }),
    resyncMs: config.kube.relistIntervalSeconds * 1000 || 300_000,
    backoff: { initialMs: 1000, maxMs: 30_000 },
  });

  const agent = new Agent(
    {
      model,
      events,
      logger: log,
      podnet,
      ...(speaker ? { bgp: speaker } : {}),
      dataplane: { set: (d) => dataplane.set(d), onResult: (l) => dataplane.reconcileLoop.onResult(l) },
      ...(peerSessions ? { peers: peerSessions } : {}),
      loadBalancerStatus: lbStatus,
      isLeader,
      ...(config.storedTables ? { writeBucketTables: (desired: DesiredState, snapshot: ClusterSnapshot) => tableWriter.offer(desired, snapshot.services) } : {}),
      ...(binding ? { drainBfd: () => binding!.setDrained(true), restoreBfd: () => binding!.setDrained(false) } : {}),
    },
    { withdrawGraceSeconds: config.bgp.withdrawGraceSeconds, unhealthyAfterFailures: 3 },
  );

  registerAgentMetrics({ desired: () => agent.current(), vipCounters: () => dataplane.vipCounters(), logger: log });
  // The watcher only merges the events of one burst (a list applied, a rollout's slices);
  // coalescing changes into kernel batches is the data plane's job (coalesceMs after each
  // batch), so a lone change is not held back by a second, longer window here.
  const watcher = new ClusterWatcher({
    kubeConfig: kube,
    nodeName,
    logger: log,
    events,
    debounceMs: Math.min(WATCH_BURST_MS, config.dataplane.coalesceMs),
    inactivityTimeoutMs: config.kube.watchInactivitySeconds * 1000,
    requestTimeoutMs: config.kube.listTimeoutSeconds * 1000,
    relistIntervalMs: config.kube.relistIntervalSeconds * 1000,
    staleAfterMs: config.kube.staleAfterSeconds * 1000,
    onChange: (s) => agent.onSnapshot(s),
  });
  const server = new ObserveServer({ listen: config.api.listen, logger: log });
  // Health from progress (health.ts): alive while every loop makes progress; ready while
  // the feeds are in sync, gobgpd answers with sessions up, BFD is up and the kernel holds
  // the desired state. Not ready changes nothing in the data path or announcements.
  const loops = (): LoopHealth[] => [
    agent.reconcileLoop.health(),
    dataplane.reconcileLoop.health(),
    podnet.reconcileLoop.health(),
    ...(speaker ? [speaker.reconcileLoop.health()] : []),
    tableWriter.reconcileLoop.health(),
    lbStatus.health(),
  ];
  server.addLivenessCheck('loops', () => livenessOf(loops(), Date.now()));
  server.addReadinessCheck('kubernetes', () => kubeReadiness(watcher.status()));
  server.addReadinessCheck('dataplane', () => dataplaneReadiness(dataplane.reconcileLoop.health()));
  // Sessions matter where the node announces: a tunnel node, or a serving node in mpls mode.
  const announces = () => agent.current()?.isTunnelNode === true || (agent.current()?.announcements.length ?? 0) > 0;
  if (speaker) server.addReadinessCheck('bgp', () => bgpReadiness(speaker!.lastResult(), speaker!.peerStates(), announces()));
  if (bfd) server.addReadinessCheck('bfd', () => bfdReadiness(bfd!.status(), announces()));
  // Each thread's heap apart: the BFD worker is an isolate of its own (docs/troubleshooting.md, "Memory").
  const workerMemory = (): ThreadMemoryReport[] => {
    const m = bfdThread?.memory();
    return m ? [{ thread: 'bfd', ...m }] : [];
  };
  registerMemoryMetrics(workerMemory);
  server.setStatusProvider(() =>
    buildStatusReport({
      nodeName,
      agent,
      flowHash: { backend: flowHash, reason: flowHashReason },
      kernel: kernel.report,
      kube: () => kubeReport(watcher.status(), { leading: elector.isLeader, ...(elector.leader ? { holder: elector.leader } : {}) }),
      ...(speaker ? { speaker } : {}),
      ...(bfd ? { bfd } : {}),
      loops,
      config: () => liveConfig.report(),
      memory: () => memoryReport(workerMemory()),
    }),
  );

  // Live configuration: the file (a mounted ConfigMap) is watched; a valid new version whose
  // changes are all live is applied whole, anything else is rejected with an Event and the
  // running config stays (live-config.ts, config/change.ts).
  const configFile = opts.sources?.file ?? opts.sources?.env?.KST_CONFIG;
  const liveConfig = new LiveConfig({
    initial: config,
    sources: opts.sources ?? {},
    running: { bfd: needsBfd },
    events,
    nodeRef: { kind: 'Node', name: nodeName },
    logger: log,
    apply: (next, change) => {
      log.level = next.logLevel;
      bfdProfiles = next.bfd.profiles;
      agent.applySettings(next);
      // Same peers, new BFD timers: the plan did not change, so PeerSessions re-applies it.
      if (change.changed.includes('bfd.profiles') && peerSessions) {
        const sessions = peerSessions;
        void agent.idle().then(() => sessions.refresh()).catch((err: unknown) => log.warn(`bfd: new profiles not applied: ${err instanceof Error ? err.message : String(err)}`));
      }
    },
  });
  const configWatch = configFile
    ? new ConfigFileWatcher({
        file: configFile,
        onChange: () => liveConfig.reload(),
        onError: (err) => log.warn(`config: cannot read ${configFile}: ${err.message}; the running configuration stays`, { area: 'config' }),
      })
    : undefined;

  // The composition root: started in this order, stopped in reverse, each stop guarded,
  // bounded and logged by name (system/lifecycle.ts). The data path stays in the kernel on
  // stop: a restarted agent adopts it; `kst cleanup` removes it.
  let restartInPlace = false; // set by the stop signal, read by the agent's stop
  const components: Component[] = [
    { name: 'observe-server', start: async () => void (await server.start()), stop: () => server.stop() },
    { name: 'podnet', start: () => podnet.start(), stop: () => podnet.stop() },
    { name: 'dataplane', start: () => dataplane.start(), stop: () => dataplane.stop() },
    ...(gobgp ? [{ name: 'gobgp-client', stop: () => gobgp!.close() }] : []),
    // Started by PeerSessions with the first desired state: its AS, router id and peers
    // depend on this node's labels and annotations (model/peers.ts).
    ...(speaker ? [{ name: 'bgp-speaker', stop: () => speaker!.stop() }] : []),
    ...(peerSessions ? [passwordRefresh(peerSessions, log)] : []),
    ...(bfd ? [{ name: 'bfd', stop: () => bfd!.stop() }] : []),
    ...(binding ? [{ name: 'bfd-bgp-binding', stop: () => binding!.stop() }] : []),
    { name: 'leader-election', start: () => elector.start(), stop: () => elector.stop() },
    { name: 'stored-tables', start: () => tableWriter.start(), stop: () => tableWriter.stop() },
    { name: 'lb-status', start: () => lbStatus.start(), stop: () => lbStatus.stop() },
    // Stops first but the watcher: withdraws, waits the grace time, then BFD AdminDown; or,
    // for a restart in place (SIGUSR2), leaves announcements and BFD as they are.
    { name: 'agent', stop: () => (restartInPlace ? agent.stopForRestart() : agent.shutdown()), stopDeadlineMs: (config.bgp.withdrawGraceSeconds + 20) * 1000 },
    { name: 'cluster-watcher', start: () => watcher.start(), stop: () => watcher.stop() },
    ...(configWatch ? [configWatchComponent(configWatch, liveConfig)] : []),
  ];
  try {
    await startAll(components, log);
  } catch (err) {
    log.error(`agent not started: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  log.info(`agent started: ${components.map((c) => c.name).join(', ')}`);

  // SIGTERM/SIGINT: a planned stop (withdraw first). SIGUSR2: a restart in place (an
  // upgrade): nothing is withdrawn and BFD sends no AdminDown; the routers keep this node's
  // routes (graceful restart if gobgpd restarts too) while the data path stays.
  const stopSignal = await new Promise<NodeJS.Signals>((resolve) => {
    const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGUSR2'];
    const onSignal = (sig: NodeJS.Signals) => {
      log.info(sig === 'SIGUSR2' ? `${sig}: stopping for a restart in place (announcements, BFD and data path left as they are)` : `${sig}: graceful shutdown`);
      for (const s of signals) process.off(s, onSignal);
      resolve(sig);
    };
    for (const s of signals) process.on(s, onSignal);
  });
  restartInPlace = stopSignal === 'SIGUSR2';

  const stopped = await stopAll(components, log);
  const failed = stopped.filter((o) => !o.ok);
  log.info(`agent stopped (data path left in place)${failed.length ? `; ${failed.length} component(s) did not stop cleanly: ${failed.map((f) => f.name).join(', ')}` : ''}`);
  return 0;
}

/** Last to start, first to stop: a new version is applied only to a running agent. */
function configWatchComponent(watch: ConfigFileWatcher, live: LiveConfig): Component {
  return {
    name: 'config-watch',
    start: async () => {
      await watch.start();
      // A version written between the load at start and the watcher's first read.
      live.reload({ quiet: true });
    },
    stop: () => watch.stop(),
  };
}

/** A rotated password Secret (or file) takes effect within a minute: re-read; gobgpd's peer is updated only if it changed. */
function passwordRefresh(peers: PeerSessions, log: Logger): Component {
  let timer: NodeJS.Timeout | undefined;
  return {
    name: 'bgp-password-refresh',
    start: () => {
      timer = setInterval(() => void peers.refresh().catch((err: unknown) => log.warn(`bgp: password refresh: ${err instanceof Error ? err.message : String(err)}`)), 60_000);
      timer.unref();
    },
    stop: () => clearInterval(timer),
  };
}
