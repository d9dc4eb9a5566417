// A tunnel node beside a test router, as the agent runs it: gobgpd (GTSM filter in place)
// driven by a BgpSpeaker, and the agent's BFD as a child process that a test can SIGKILL
// like a crashed agent. One router peer, addressed from the node's namespace.
import { BfdChild } from '../../src/bfd/child.js';
import { ensureGtsm } from '../../src/bfd/index.js';
import { BgpSpeaker, GobgpClient, GobgpdProcess, type HostRoute, type PeerSpec } from '../../src/bgp/index.js';
import { runCommand } from '../../src/system/index.js';

/** BFD at 100 ms x 3: 300 ms detection, far under a 9 s BGP hold time. */
export const FAST_BFD = { minTxMs: 100, minRxMs: 100, multiplier: 3 };
const NODE_ASN = 64512;
/** Drops everything the node sends or receives (a hung node, link still up). */
const SILENCE_TABLE = 'kst_t_silence';

export class BgpNode {
  readonly gobgpd: GobgpdProcess;
  client: GobgpClient | undefined;
  speaker: BgpSpeaker | undefined;
  bfd: BfdChild | undefined;

  /** `netns`: the node's namespace; `local`: its address towards `routerIp`. */
  private constructor(readonly netns: string, readonly local: string, readonly routerIp: string) {
    this.gobgpd = new GobgpdProcess({ netns });
  }

  /** GTSM filter, gobgpd and the BFD child (session to the router up); no speaker yet. */
  static async start(netns: string, local: string, routerIp: string): Promise<BgpNode> {
    const node = new BgpNode(netns, local, routerIp);
    await ensureGtsm({ netns });
    await node.gobgpd.start();
    await node.startBfd();
    return node;
  }

  /**
   * A new agent's speaker (the previous one stopped, its client closed): AS 64512 with the
   * node's address as router id, fail static at start. `routes` undefined: none given yet.
   */
  newSpeaker(peers: readonly PeerSpec[], routes?: readonly HostRoute[]): BgpSpeaker {
    void this.speaker?.stop();
    this.client?.close();
    this.client = new GobgpClient({ target: this.gobgpd.target, callTimeoutMs: 5000, reconnectBackoffMs: { initial: 50, max: 500 } });
    const s = new BgpSpeaker({ client: this.client, global: { asn: NODE_ASN, routerId: this.local, listenPort: -1 }, backoff: { initialMs: 100, maxMs: 500 }, waitForAnnouncements: true });
    s.setPeers(peers);
    if (routes) s.setRoutes(routes);
    s.start();
    this.speaker = s;
    return s;
  }

  /** A new BFD child with the one session to the router. */
  async startBfd(): Promise<BfdChild> {
    const bfd = await BfdChild.start(this.netns);
    await bfd.setSessions([{ peer: this.routerIp, local: this.local, profile: FAST_BFD }]);
    this.bfd = bfd;
    return bfd;
  }

  /** SIGKILLs the BFD child (an agent crash); a later startBfd brings a new one. */
  async killBfd(): Promise<void> {
    const dying = this.bfd;
    this.bfd = undefined;
    await dying?.kill();
  }

  /** An agent and its gobgpd dying together (restart-all, a crash): speaker stopped, both SIGKILLed. */
  async killAgentAndGobgpd(): Promise<void> {
    void this.speaker?.stop();
    await Promise.all([this.gobgpd.stop('SIGKILL'), this.killBfd()]);
  }

  /** The node goes silent with its link up: only BFD or the BGP hold timer can tell. */
  async silence(): Promise<void> {
    const script = `table inet ${SILENCE_TABLE} {\n chain in { type filter hook input priority -100; policy drop; }\n chain out { type filter hook output priority -100; policy drop; }\n}\n`;
    await runCommand('nft', ['-f', '-'], { netns: this.netns, input: script });
  }

  async unsilence(): Promise<void> {
    await runCommand('nft', ['delete', 'table', 'inet', SILENCE_TABLE], { netns: this.netns });
  }

  /** Everything stopped and removed, whatever state a failed test left (the namespace is the caller's). */
  async destroy(): Promise<void> {
    void this.speaker?.stop();
    this.client?.close();
    await this.bfd?.kill();
    await this.gobgpd.destroy();
    await runCommand('nft', ['delete', 'table', 'inet', SILENCE_TABLE], { netns: this.netns, allowFailure: true });
  }
}
