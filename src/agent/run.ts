// Builds the real parts from the configuration and runs the agent until a signal.
import { hostname } from 'node:os';
import { basename } from 'node:path';
import type { Config } from '../config/index.js';
import { IncrementalModel } from '../model/index.js';
import type { ClusterSnapshot, DesiredState, IpAddress } from '../model/index.js';
import { ClusterWatcher, KubeEventSink, LeaderElector, LoadBalancerStatusWriter, SecretReader, leaseIdentity, leaseNamespace, loadKubeConfig } from '../kube/index.js';
import { TunnelDataplane } from '../dataplane/index.js';
import { NamespaceFinder, PodNetworks } from '../podnet/index.js';
import { bgpSpeakerFromConfig, type BgpSpeaker, type GobgpClient } from '../bgp/index.js';
import { BfdBgpBinding, ThreadedBfdManager, bfdSessionsFor, ensureGtsm, localAddressTowards, type BfdSessionRunner } from '../bfd/index.js';
import { ObserveServer, collectProcessMetrics, type Logger } from '../observe/index.js';
import { Agent } from './agent.js';
import { PeerSessions } from './peer-sessions.js';
import { buildStatusReport, kubeReadiness, kubeReport } from './status.js';
import { registerAgentMetrics } from './metrics.js';
import { BucketTableWriter } from './table-writer.js';
import { probeFlowHash, reportFlowHash } from './flow-hash-probe.js';
import { probeAndAssess, registerKernelMetrics, reportKernel } from './kernel-report.js';

/** Events closer than this become one snapshot (see the watcher's construction). */
const WATCH_BURST_MS = 5;

export interface RunAgentOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly kubeconfigPath?: string;
  /** Namespace of the leader-election Lease; default the pod's own (POD_NAMESPACE, kube/lease-identity.ts). */
  readonly leaseNamespace?: string;
}

export async function runAgent(opts: RunAgentOptions): Promise<number> {
  const { config, logger: log } = opts;
  const nodeName = config.nodeName ?? process.env.NODE_NAME ?? hostname();
  collectProcessMetrics();

  const { kubeConfig, origin, where } = loadKubeConfig(opts.kubeconfigPath ? { path: opts.kubeconfigPath } : {});
  log.info(`node ${nodeName}: mode ${config.encapsulation.mode}, Kubernetes API from ${origin} (${where})`);

  const events = new KubeEventSink({ kubeConfig, host: nodeName, logger: log });

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
    ...(labPrefix ? { finder: new NamespaceFinder({ accept: (c) => basename(c.path).startsWith(labPrefix) && /\/run\/netns\//.test(c.path) }) } : {}),
    encap: { mode: config.encapsulation.mode, vni: config.encapsulation.vni, vxlanPort: config.encapsulation.vxlanPort, mplsLabel: config.encapsulation.mplsLabel },
    events,
    logger: log,
    // The orphan sweep only visits namespaces holding a pod IP the API places on this node.
    podRanges: () => (watcher.snapshot?.localPods ?? []).filter((p) => !p.hostNetwork).flatMap((p) => p.podIps),
  });

  let speaker: BgpSpeaker | undefined;
  let gobgp: GobgpClient | undefined;
  let bfd: BfdSessionRunner | undefined;
  let binding: BfdBgpBinding | undefined;
  let peerSessions: PeerSessions | undefined;
  if (config.bgp.enabled) {
    // AS, router id and peers are this node's (model/peers.ts): the speaker starts once the
    // first desired state names them (PeerSessions).
    ({ client: gobgp, speaker } = bgpSpeakerFromConfig(config.bgp, { routerId: config.bgp.routerId ?? '0.0.0.0', logger: log }));
    const bgpSpeaker = speaker;
    const needsBfd = config.bgp.peers.some((p) => p.bfdProfile !== undefined);
    if (needsBfd) {
      try {
        await ensureGtsm();
      } catch (err) {
        log.warn(`bfd: could not install the TTL-255 filter (RFC 5881): ${err instanceof Error ? err.message : String(err)}`);
      }
      // On a worker thread: a busy main thread (resync, relist, GC) cannot delay BFD (docs/bfd.md).
      bfd = new ThreadedBfdManager({ logger: log });
      // Declarative on the speaker, so a peer held down by BFD stays down across a gobgpd restart.
      binding = new BfdBgpBinding(
        bfd,
        {
          disablePeer: async (address, reason) => bgpSpeaker.setPeerAdminDown(address, true, reason),
          enablePeer: async (address) => bgpSpeaker.setPeerAdminDown(address, false),
        },
        log,
      );
      binding.start();
    }
    const secrets = new SecretReader({ kubeConfig, namespace: opts.leaseNamespace ?? leaseNamespace() });
    const bfdRunner = bfd;
    peerSessions = new PeerSessions({
      speaker,
      logger: log,
      listenPort: config.bgp.listenPort,
      readSecret: (name, key) => secrets.read(name, key),
      localAddressTowards: (peer) => localAddressTowards(peer),
      ...(bfdRunner
        ? {
            setBfdPeers: async (peers) => {
              const locals = new Map<string, string | undefined>();
              for (const p of peers) locals.set(p.address, p.sourceAddress ?? (await localAddressTowards(p.address)));
              const plan = bfdSessionsFor(peers, config.bfd.profiles, (peer) => locals.get(peer));
              for (const problem of plan.problems) log.warn(`bfd: ${problem}`);
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
    kubeConfig,
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
  const lbWriter = new LoadBalancerStatusWriter({ kubeConfig, loadBalancerClass: config.loadBalancerClass, isLeader, events, logger: log });
  // Stored bucket tables (issue 7): written by the Lease holder only, read by every node.
  const tableWriter = new BucketTableWriter({ kubeConfig, annotationKey: config.annotationKey, isLeader, events, logger: log });

  const agent = new Agent(
    {
      model,
      events,
      logger: log,
      dataplane,
      podnet,
      ...(speaker ? { bgp: speaker } : {}),
      ...(peerSessions ? { peers: peerSessions } : {}),
      writeLoadBalancerStatus: async (snapshot: ClusterSnapshot, ingress: ReadonlyMap<string, readonly string[]>) => {
        const r = await lbWriter.set(snapshot.services, ingress as ReadonlyMap<string, readonly IpAddress[]>);
        if (r.failed.length > 0) throw new Error(r.failed.map((f) => `${f.key}: ${f.error}`).join('; '));
      },
      isLeader,
      ...(config.storedTables ? { writeBucketTables: (desired: DesiredState, snapshot: ClusterSnapshot) => tableWriter.offer(desired, snapshot.services) } : {}),
      ...(bfd ? { drainBfd: () => bfd!.adminDown(), restoreBfd: () => bfd!.adminUp() } : {}),
    },
    { withdrawGraceSeconds: config.bgp.withdrawGraceSeconds, unhealthyAfterFailures: 3 },
  );

  registerAgentMetrics({ desired: () => agent.current(), vipCounters: () => dataplane.vipCounters(), logger: log });
  // The watcher only merges the events of one burst (a list applied, a rollout's slices);
  // coalescing changes into kernel batches is the data plane's job (coalesceMs after each
  // batch), so a lone change is not held back by a second, longer window here.
  const watcher = new ClusterWatcher({
    kubeConfig,
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
  // Not ready while a feed is stale; the data path and announcements stay as they are.
  server.addReadinessCheck('kubernetes', () => kubeReadiness(watcher.status()));
  server.setStatusProvider(() =>
    buildStatusReport({
      nodeName,
      agent,
      flowHash: { backend: flowHash, reason: flowHashReason },
      kernel: kernel.report,
      kube: () => kubeReport(watcher.status(), { leading: elector.isLeader, ...(elector.leader ? { holder: elector.leader } : {}) }),
      ...(speaker ? { speaker } : {}),
      ...(bfd ? { bfd } : {}),
    }),
  );

  // A rotated password Secret (or file) takes effect within a minute: re-read, and gobgpd's
  // peer updated only if the password changed (the speaker diffs).
  const passwordRefresh = peerSessions
    ? setInterval(() => void peerSessions!.refresh().catch((err: unknown) => log.warn(`bgp: password refresh: ${err instanceof Error ? err.message : String(err)}`)), 60_000)
    : undefined;
  passwordRefresh?.unref();
  await server.start();
  dataplane.start();
  podnet.start();
  // The speaker starts with the first desired state (PeerSessions): its AS, router id and
  // peers depend on this node's labels and annotations.
  elector.start();
  await watcher.start();
  log.info('agent started');

  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      log.info(`${sig}: graceful shutdown`);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });

  if (passwordRefresh) clearInterval(passwordRefresh);
  await watcher.stop();
  await agent.shutdown();
  binding?.stop();
  await bfd?.stop();
  speaker?.stop();
  gobgp?.close();
  await tableWriter.stop();
  await elector.stop();
  // The data path stays in the kernel: a restarted agent adopts it; `kst cleanup` removes it.
  await dataplane.stop();
  await podnet.stop();
  await server.stop();
  log.info('agent stopped (data path left in place)');
  return 0;
}
