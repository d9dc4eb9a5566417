// One FRR router and one gobgpd "node" in namespaces of their own (names from NetnsSet,
// which adds NETNS_TAG when set), for the per-node peer, per-VIP peer and password
// tests. The node's sessions come from the model's plan through the agent's PeerSessions,
// as in the agent.
//
//   node (gobgpd)  192.0.2.130/30, 2001:db8:82::2/64  <--veth-->  router (FRR, AS 65100)
//                                                               192.0.2.129/30, 2001:db8:82::1/64
import { FrrRouter, NetnsSet, waitFor } from '../../src/lab/index.js';
import { silentLogger, createLogger, type Logger } from '../../src/observe/index.js';
import { BgpSpeaker, GobgpClient, GobgpdProcess } from '../../src/bgp/index.js';
import { localAddressTowards } from '../../src/bfd/index.js';
import { nodeBgp, type BgpSettings, type NodeInput } from '../../src/model/index.js';
import { PeerSessions } from '../../src/agent/peer-sessions.js';

export const ROUTER_ASN = 65100;
export const NODE = { v4: '192.0.2.130', v6: '2001:db8:82::2' };
export const ROUTER = { v4: '192.0.2.129', v6: '2001:db8:82::1' };

/**
 * The router's bgpd lines: AS `routerAsn`, the node as a neighbour on both families with
 * 3/9 s timers and a 1 s connect retry. `ebgp` drops FRR's "no policy, no routes" default.
 */
export function routerBgpdConfig(opts: { routerAsn: number; nodeAsn4: number; nodeAsn6: number; ebgp: boolean }): string {
  return [
    `router bgp ${opts.routerAsn}`,
    ` bgp router-id ${ROUTER.v4}`,
    ...(opts.ebgp ? [' no bgp ebgp-requires-policy'] : []),
    ' no bgp default ipv4-unicast',
    ` neighbor ${NODE.v4} remote-as ${opts.nodeAsn4}`,
    ` neighbor ${NODE.v4} timers 3 9`,
    ` neighbor ${NODE.v4} timers connect 1`,
    ` neighbor ${NODE.v6} remote-as ${opts.nodeAsn6}`,
    ` neighbor ${NODE.v6} timers 3 9`,
    ` neighbor ${NODE.v6} timers connect 1`,
    ' address-family ipv4 unicast',
    `  neighbor ${NODE.v4} activate`,
    ' exit-address-family',
    ' address-family ipv6 unicast',
    `  neighbor ${NODE.v6} activate`,
    ' exit-address-family',
  ].join('\n');
}

export interface NodePeersLab {
  readonly routerNs: string;
  readonly nodeNs: string;
  readonly router: FrrRouter;
  readonly gobgpd: GobgpdProcess;
  readonly client: GobgpClient;
  readonly speaker: BgpSpeaker;
  readonly sessions: PeerSessions;
  /** Applies the node plan for these labels/annotations, as the agent does on each desired state (`force`: re-read passwords). */
  apply(node: Partial<NodeInput>, force?: boolean): Promise<void>;
  /** FRR's view of one neighbor ("Established", "Active", ...). */
  neighborState(address: string): Promise<string>;
  destroy(): Promise<void>;
}

export async function createNodePeersLab(opts: { bgp: BgpSettings; routerBgpd: string; readSecret?: (name: string, key: string) => Promise<string>; verbose?: boolean; logger?: Logger }): Promise<NodePeersLab> {
  const netns = new NetnsSet();
  const logger = opts.logger ?? (opts.verbose ? createLogger('debug') : silentLogger());
  let router: FrrRouter | undefined;
  let gobgpd: GobgpdProcess | undefined;
  let client: GobgpClient | undefined;
  let speaker: BgpSpeaker | undefined;
  const destroy = async (): Promise<void> => {
    speaker?.stop();
    client?.close();
    await gobgpd?.destroy();
    await router?.stop();
    await netns.destroy();
  };
  try {
    const routerNs = await netns.create('knpr');
    const nodeNs = await netns.create('knpn');
    await netns.link(routerNs, nodeNs, { aAddrs: [`${ROUTER.v4}/30`, `${ROUTER.v6}/64`], bAddrs: [`${NODE.v4}/30`, `${NODE.v6}/64`] });
    router = new FrrRouter({ netns: routerNs, bgpdConf: opts.routerBgpd, withBfd: false });
    await router.start();
    gobgpd = new GobgpdProcess({ netns: nodeNs });
    await gobgpd.start();
    client = new GobgpClient({ target: gobgpd.target, callTimeoutMs: 5000, reconnectBackoffMs: { initial: 50, max: 500 } });
    speaker = new BgpSpeaker({ client, global: { asn: 64512, routerId: NODE.v4, listenPort: -1 }, logger, resyncMs: 2000, backoff: { initialMs: 100, maxMs: 1000 } });
    const sessions = new PeerSessions({
      speaker,
      logger,
      listenPort: -1,
      ...(opts.readSecret ? { readSecret: opts.readSecret } : {}),
      localAddressTowards: (peer) => localAddressTowards(peer, { netns: nodeNs }),
    });
    const r = router;
    return {
      routerNs,
      nodeNs,
      router: r,
      gobgpd,
      client,
      speaker,
      sessions,
      async apply(over, force = false) {
        const node: NodeInput = { name: 'n1', labels: {}, internalIps: [], ready: true, unschedulable: false, taintKeys: [], ...over };
        const { plan, problems } = nodeBgp(opts.bgp, 'n1', node);
        if (problems.length) throw new Error(problems.map((p) => p.message).join('; '));
        await sessions.set(plan, force);
      },
      async neighborState(address) {
        const j = await r.vtyshJson<Record<string, { bgpState?: string }>>(`show bgp neighbors ${address} json`);
        return j[address]?.bgpState ?? 'absent';
      },
      destroy,
    };
  } catch (e) {
    await destroy();
    throw e;
  }
}

export async function waitNeighbor(lab: NodePeersLab, address: string, want: (s: string) => boolean, timeoutMs: number): Promise<void> {
  let last = '';
  try {
    await waitFor(async () => want((last = await lab.neighborState(address))), timeoutMs, 200);
  } catch {
    throw new Error(`FRR neighbor ${address} is ${last} after ${timeoutMs} ms\n${lab.router.logs().slice(-3000)}`);
  }
}
