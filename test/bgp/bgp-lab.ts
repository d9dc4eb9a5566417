// A router namespace running FRR and N tunnel-node namespaces each running gobgpd driven
// by a BgpSpeaker: the topology of the BGP tests and of bench/bgp.ts.
//
//   node i (AS 64512)  192.0.2.(4i-2)/30, 2001:db8:i::2/64  <--veth-->  router (AS 65000)
//                                                                     192.0.2.(4i-3)/30, 2001:db8:i::1/64
import { FrrRouter, NetnsSet, waitFor } from '../../src/lab/index.js';
import { runCommand } from '../../src/system/index.js';
import { createLogger, silentLogger, type Logger } from '../../src/observe/index.js';
import { BgpSpeaker, GobgpClient, GobgpdProcess, type PeerSpec } from '../../src/bgp/index.js';

export const NODE_ASN = 64512;
export const ROUTER_ASN = 65000;

export interface LabNode {
  readonly ns: string;
  readonly v4: string;
  readonly v6: string;
  readonly peers: readonly PeerSpec[];
  readonly gobgpd: GobgpdProcess;
  client: GobgpClient;
  speaker: BgpSpeaker;
}

export interface BgpLab {
  readonly routerNs: string;
  readonly router: FrrRouter;
  readonly nodes: LabNode[];
  destroy(): Promise<void>;
  /** Replaces a node's client and speaker (an agent restart with gobgpd still running). */
  restartAgent(node: LabNode): BgpSpeaker;
}

export interface RouteView {
  readonly dst: string;
  readonly protocol?: string;
  readonly gateway?: string;
  readonly nexthops?: Array<{ gateway: string }>;
}

function nodeAddrs(i: number): { v4: string; r4: string; v6: string; r6: string } {
  return { v4: `192.0.2.${4 * i - 2}`, r4: `192.0.2.${4 * i - 3}`, v6: `2001:db8:${i}::2`, r6: `2001:db8:${i}::1` };
}

function routerConf(n: number): string {
  const lines = ['router bgp 65000', ' bgp router-id 192.0.2.254', ' no bgp ebgp-requires-policy', ' no bgp default ipv4-unicast', ' bgp bestpath as-path multipath-relax'];
  for (let i = 1; i <= n; i++) {
    const a = nodeAddrs(i);
    for (const peer of [a.v4, a.v6]) lines.push(` neighbor ${peer} remote-as ${NODE_ASN}`, ` neighbor ${peer} timers 3 9`, ` neighbor ${peer} timers connect 1`);
  }
  for (const [af, fam] of [['ipv4', 'v4'], ['ipv6', 'v6']] as const) {
    lines.push(` address-family ${af} unicast`, '  maximum-paths 16');
    for (let i = 1; i <= n; i++) lines.push(`  neighbor ${nodeAddrs(i)[fam]} activate`);
    lines.push(' exit-address-family');
  }
  return lines.join('\n');
}

export function labPeers(i: number): PeerSpec[] {
  const a = nodeAddrs(i);
  const base = { asn: ROUTER_ASN, holdTimeSeconds: 9, keepaliveSeconds: 3, connectRetrySeconds: 1 };
  return [{ ...base, address: a.r4 }, { ...base, address: a.r6 }];
}

export function makeSpeaker(node: { v4: string; peers: readonly PeerSpec[] }, client: GobgpClient, logger: Logger, resyncMs = 2000): BgpSpeaker {
  const speaker = new BgpSpeaker({
    client,
    global: { asn: NODE_ASN, routerId: node.v4, listenPort: -1 },
    logger,
    resyncMs,
    backoff: { initialMs: 100, maxMs: 1000 },
  });
  speaker.setPeers(node.peers);
  return speaker;
}

/** `resyncMs`: the speakers' periodic full read (short in tests to exercise it; the agent's default in benchmarks). */
export async function createBgpLab(nodeCount: number, opts: { verbose?: boolean; resyncMs?: number } = {}): Promise<BgpLab> {
  const netns = new NetnsSet();
  const logger = opts.verbose ? createLogger('debug') : silentLogger();
  const nodes: LabNode[] = [];
  let router: FrrRouter | undefined;
  const destroy = async (): Promise<void> => {
    for (const n of nodes) {
      n.speaker.stop();
      n.client.close();
      await n.gobgpd.destroy();
    }
    await router?.stop();
    await netns.destroy();
  };
  try {
    const routerNs = await netns.create('kstbr');
    for (let i = 1; i <= nodeCount; i++) {
      const ns = await netns.create('kstbn');
      const a = nodeAddrs(i);
      await netns.link(routerNs, ns, { aAddrs: [`${a.r4}/30`, `${a.r6}/64`], bAddrs: [`${a.v4}/30`, `${a.v6}/64`] });
      const gobgpd = new GobgpdProcess({ netns: ns });
      const peers = labPeers(i);
      const client = new GobgpClient({ target: gobgpd.target, callTimeoutMs: 5000, reconnectBackoffMs: { initial: 50, max: 500 } });
      nodes.push({ ns, v4: a.v4, v6: a.v6, peers, gobgpd, client, speaker: makeSpeaker({ v4: a.v4, peers }, client, logger, opts.resyncMs) });
    }
    router = new FrrRouter({ netns: routerNs, bgpdConf: routerConf(nodeCount), withBfd: false });
    await router.start();
    for (const n of nodes) await n.gobgpd.start();
    const r = router;
    return {
      routerNs,
      router: r,
      nodes,
      destroy,
      restartAgent(node) {
        node.speaker.stop();
        node.client.close();
        node.client = new GobgpClient({ target: node.gobgpd.target, callTimeoutMs: 5000, reconnectBackoffMs: { initial: 50, max: 500 } });
        node.speaker = makeSpeaker(node, node.client, logger, opts.resyncMs);
        return node.speaker;
      },
    };
  } catch (e) {
    await destroy();
    throw e;
  }
}

/** The router's kernel route for `prefix`, or undefined. */
export async function fibRoute(routerNs: string, prefix: string): Promise<RouteView | undefined> {
  const fam = prefix.includes(':') ? '-6' : '-4';
  const r = await runCommand('ip', [fam, '-j', 'route', 'show', prefix], { netns: routerNs });
  const routes = JSON.parse(r.stdout || '[]') as RouteView[];
  return routes[0];
}

/** Next hops of the router's kernel route for `prefix` (sorted; empty when absent). */
export async function fibNextHops(routerNs: string, prefix: string): Promise<string[]> {
  const route = await fibRoute(routerNs, prefix);
  if (!route) return [];
  const hops = route.nexthops?.map((h) => h.gateway) ?? (route.gateway ? [route.gateway] : []);
  return hops.sort();
}

export async function waitForNextHops(routerNs: string, prefix: string, want: readonly string[], timeoutMs: number): Promise<void> {
  const sorted = [...want].sort().join(',');
  let last: string[] = [];
  try {
    await waitFor(async () => (last = await fibNextHops(routerNs, prefix)).join(',') === sorted, timeoutMs, 50);
  } catch {
    throw new Error(`router FIB: ${prefix} has next hops [${last.join(', ')}], expected [${sorted}] within ${timeoutMs} ms`);
  }
}

/** Waits until every desired peer of every node is established. */
export async function waitEstablished(lab: BgpLab, timeoutMs: number): Promise<void> {
  await waitFor(() => lab.nodes.every((n) => n.speaker.peerStates().every((p) => p.state === 'established')), timeoutMs, 100);
}
