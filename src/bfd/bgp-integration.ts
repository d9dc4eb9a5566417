// Ties BFD to BGP and to local health.
// - BFD Down (after having been Up) -> the BGP peer is disabled in gobgpd, so our side
//   drops the session as fast as the router does and both converge; BFD Up -> re-enabled.
// - Local health (data plane cannot be programmed, graceful shutdown, maintenance): the
//   announcements are withdrawn FIRST, then the sessions go AdminDown, so routers move
//   traffic away on the withdrawal and then stop BFD without treating it as a failure.
// - BGP -> BFD (the gate, `gatedPeers`): bgp-gate.ts.
import type { Logger } from '../observe/index.js';
import { silentLogger } from '../observe/index.js';
import type { BfdSessionRunner, BfdStateEvent } from './manager.js';
import { BfdGate } from './bgp-gate.js';

/** What BFD needs from the BGP speaker; the bgp area's GobgpClient implements it. */
export interface PeerControl {
  disablePeer(address: string, reason: string): Promise<void>;
  enablePeer(address: string): Promise<void>;
}

export class BfdBgpBinding {
  /** Peers we disabled because of BFD; only these are re-enabled by BFD. */
  private readonly disabledByBfd = new Set<string>();
  private readonly log: Logger;
  private readonly onState = (ev: BfdStateEvent): void => void this.handle(ev);
  /** Serialises peer operations so a quick Down/Up pair is applied in order. */
  private queue: Promise<void> = Promise.resolve();
  /** Pending disables, cancelled when the session is Up again within the hold-down. */
  private readonly holdDown = new Map<string, NodeJS.Timeout>();
  private readonly holdDownMs: number;
  /** Gated peers; empty: BFD runs regardless of BGP. */
  private readonly gate: BfdGate;

  /**
   * `holdDownMs`: how long a session must stay down before the BGP peer is disabled.
   * The router acts on its own BFD at once, so this costs no failover time; it spares
   * the BGP session when the router merely re-creates its BFD session (FRR does so
   * when BGP comes up and learns the source address: Up -> Down -> Up within ~1-2 s).
   * `gatedPeers`: BFD peers whose session runs only while `bgpSessionState` says the BGP
   * session is Established (for `openDelayMs`, default 1 s: FRR's re-registration goes
   * bgpd -> zebra -> bfdd and must be done before our session comes Up). The binding then
   * owns those sessions' admin state: drain/restore go through it too.
   */
  constructor(
    private readonly bfd: BfdSessionRunner,
    private readonly peers: PeerControl,
    logger?: Logger,
    opts: { readonly holdDownMs?: number; readonly gatedPeers?: readonly string[]; readonly openDelayMs?: number } = {},
  ) {
    this.log = (logger ?? silentLogger()).child({ component: 'bfd-bgp' });
    this.holdDownMs = opts.holdDownMs ?? 3000;
    this.gate = new BfdGate({
      bfd, log: this.log, openDelayMs: opts.openDelayMs ?? 1000, peers: opts.gatedPeers ?? [],
      heldByBfd: (peer) => this.disabledByBfd.has(peer),
    });
  }

  /** Listens to BFD; gated sessions are put AdminDown now (call before `setSessions`, so they start so). */
  start(): void {
    this.bfd.on('state', this.onState);
    this.gate.applyAll();
  }

  stop(): void {
    this.bfd.off('state', this.onState);
    for (const t of this.holdDown.values()) clearTimeout(t);
    this.holdDown.clear();
    this.gate.stop();
  }

  /**
   * gobgpd's state of the BGP session to `address` (the speaker's `peer` events): opens
   * the gate `openDelayMs` after 'established', closes it at once on anything else
   * ('unknown' after a gobgpd restart included). Addresses without a gated session are ignored.
   */
  bgpSessionState(address: string, state: string): void {
    this.gate.bgpSessionState(address, state);
  }

  /**
   * The gated peers, when they change (per-node peers: model/peers.ts). A new one starts
   * held AdminDown until its BGP session is Established; one that left loses its gate.
   * Call before the BFD sessions are set, so a new session starts AdminDown.
   */
  setGatedPeers(peers: readonly string[]): void {
    this.gate.setPeers(peers);
  }

  /** Resolves when every peer operation triggered so far has finished. */
  settled(): Promise<void> {
    return this.queue;
  }

  /**
   * Local health says stop attracting traffic: `withdraw` removes the announcements (and
   * waits as long as it needs, e.g. the configured grace), then BFD goes AdminDown.
   */
  async drain(withdraw: () => Promise<void>, peer?: string): Promise<void> {
    await withdraw();
    this.setDrained(true, peer);
  }

  /** Healthy again: sessions leave AdminDown; announcements are the caller's to restore. */
  restore(peer?: string): void {
    this.setDrained(false, peer);
  }

  /** AdminDown for local health (true) or not (false), for one peer or all; gated sessions still wait for BGP. */
  setDrained(drained: boolean, peer?: string): void {
    if (!this.gate.empty) {
      this.gate.setDrained(drained, peer);
      return;
    }
    if (drained) this.bfd.adminDown(peer);
    else this.bfd.adminUp(peer);
  }

  private handle(ev: BfdStateEvent): Promise<void> {
    // AdminDown is our own decision (drain); it says nothing about the path to the peer.
    if (ev.to === 'AdminDown' || ev.from === 'AdminDown') return this.queue;
    if (ev.to === 'Up') {
      this.cancelHoldDown(ev.peer);
      return this.enqueue(ev.peer, 'enable', 'BFD Up');
    }
    // Only a session that was Up can fail; Down -> Init -> Down during bring-up is not news.
    if (ev.from === 'Up') this.disableAfterHoldDown(ev.peer, `BFD down: ${ev.diag}`);
    return this.queue;
  }

  /** Back Up within the hold-down: the pending disable is dropped, the BGP peer left alone. */
  private cancelHoldDown(peer: string): void {
    const pending = this.holdDown.get(peer);
    if (!pending) return;
    clearTimeout(pending);
    this.holdDown.delete(peer);
    this.log.info('BFD session back up within the hold-down: BGP peer left alone', { peer });
  }

  /** Disables the BGP peer once the session has stayed down for `holdDownMs` (at once when 0). */
  private disableAfterHoldDown(peer: string, reason: string): void {
    if (this.holdDownMs <= 0) {
      void this.enqueue(peer, 'disable', reason);
      return;
    }
    if (this.holdDown.has(peer)) return;
    const timer = setTimeout(() => {
      this.holdDown.delete(peer);
      void this.enqueue(peer, 'disable', reason);
    }, this.holdDownMs);
    timer.unref();
    this.holdDown.set(peer, timer);
  }

  private enqueue(peer: string, op: 'enable' | 'disable', reason: string): Promise<void> {
    this.queue = this.queue.then(async () => {
      try {
        if (op === 'disable') {
          await this.peers.disablePeer(peer, reason);
          this.disabledByBfd.add(peer);
          this.log.warn('BGP peer disabled: BFD session down', { peer, reason });
          this.gate.apply(peer);
        } else if (this.disabledByBfd.has(peer)) {
          await this.peers.enablePeer(peer);
          this.disabledByBfd.delete(peer);
          this.log.info('BGP peer re-enabled: BFD session up', { peer });
          // Gated: back to AdminDown until the new BGP session is Established (same reason as at start).
          this.gate.apply(peer);
        }
      } catch (err) {
        this.log.error(`BGP peer ${op} after BFD change failed`, { peer, reason, error: (err as Error).message });
      }
    });
    return this.queue;
  }
}
