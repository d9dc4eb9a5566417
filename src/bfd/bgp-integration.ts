// Ties BFD to BGP and to local health.
// - BFD Down (after having been Up) -> the BGP peer is disabled in gobgpd, so our side
//   drops the session as fast as the router does and both converge; BFD Up -> re-enabled.
// - Local health (data plane cannot be programmed, graceful shutdown, maintenance): the
//   announcements are withdrawn FIRST, then the sessions go AdminDown, so routers move
//   traffic away on the withdrawal and then stop BFD without treating it as a failure.
import type { Logger } from '../observe/index.js';
import { silentLogger } from '../observe/index.js';
import type { BfdSessionRunner, BfdStateEvent } from './manager.js';

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

  /**
   * `holdDownMs`: how long a session must stay down before the BGP peer is disabled.
   * The router acts on its own BFD at once, so this costs no failover time; it spares
   * the BGP session when the router merely re-creates its BFD session (FRR does so
   * when BGP comes up and learns the source address: Up -> Down -> Up within ~1-2 s).
   */
  constructor(
    private readonly bfd: BfdSessionRunner,
    private readonly peers: PeerControl,
    logger?: Logger,
    opts: { readonly holdDownMs?: number } = {},
  ) {
    this.log = (logger ?? silentLogger()).child({ component: 'bfd-bgp' });
    this.holdDownMs = opts.holdDownMs ?? 3000;
  }

  start(): void {
    this.bfd.on('state', this.onState);
  }

  stop(): void {
    this.bfd.off('state', this.onState);
    for (const t of this.holdDown.values()) clearTimeout(t);
    this.holdDown.clear();
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
    this.bfd.adminDown(peer);
  }

  /** Healthy again: sessions leave AdminDown; announcements are the caller's to restore. */
  restore(peer?: string): void {
    this.bfd.adminUp(peer);
  }

  private handle(ev: BfdStateEvent): Promise<void> {
    // AdminDown is our own decision (drain); it says nothing about the path to the peer.
    if (ev.to === 'AdminDown' || ev.from === 'AdminDown') return this.queue;
    if (ev.to === 'Up') {
      const pending = this.holdDown.get(ev.peer);
      if (pending) {
        clearTimeout(pending);
        this.holdDown.delete(ev.peer);
        this.log.info('BFD session back up within the hold-down: BGP peer left alone', { peer: ev.peer });
      }
      return this.enqueue(ev.peer, 'enable', 'BFD Up');
    }
    // Only a session that was Up can fail; Down -> Init -> Down during bring-up is not news.
    if (ev.from === 'Up') {
      const reason = `BFD down: ${ev.diag}`;
      if (this.holdDownMs <= 0) return this.enqueue(ev.peer, 'disable', reason);
      if (!this.holdDown.has(ev.peer)) {
        const timer = setTimeout(() => {
          this.holdDown.delete(ev.peer);
          void this.enqueue(ev.peer, 'disable', reason);
        }, this.holdDownMs);
        timer.unref();
        this.holdDown.set(ev.peer, timer);
      }
    }
    return this.queue;
  }

  private enqueue(peer: string, op: 'enable' | 'disable', reason: string): Promise<void> {
    this.queue = this.queue.then(async () => {
      try {
        if (op === 'disable') {
          await this.peers.disablePeer(peer, reason);
          this.disabledByBfd.add(peer);
          this.log.warn('BGP peer disabled: BFD session down', { peer, reason });
        } else if (this.disabledByBfd.has(peer)) {
          await this.peers.enablePeer(peer);
          this.disabledByBfd.delete(peer);
          this.log.info('BGP peer re-enabled: BFD session up', { peer });
        }
      } catch (err) {
        this.log.error(`BGP peer ${op} after BFD change failed`, { peer, reason, error: (err as Error).message });
      }
    });
    return this.queue;
  }
}
