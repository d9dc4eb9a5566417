// BGP -> BFD, the gate: a gated BFD session answers only while gobgpd's BGP session to
// that router is Established. FRR's bgpd re-registers its BFD session when BGP comes up
// (bgp_establish -> bgp_peer_bfd_update_source: the local address becomes known) and
// bfdd replaces the session; had it been Up already, bgpd sees Up -> Down and sends
// NOTIFICATION Cease/BFD Down to the session that just came up (docs/bfd.md).
// The gate owns the gated sessions' admin state, so local-health drain goes through it too.
import type { Logger } from '../observe/index.js';
import type { BfdSessionRunner } from './manager.js';
import { HeldPeers } from './admin-down.js';
import { canonicalAddress } from './transport.js';

/**
 * Whether a gated peer's BFD session should run (else it is held AdminDown): not drained,
 * and either the BGP session it protects is Established (and settled), or BFD itself holds
 * that BGP peer down (then BFD must run to see the path come back).
 */
export function gatedSessionRuns(s: { readonly drained: boolean; readonly bgpEstablished: boolean; readonly heldByBfd: boolean }): boolean {
  return !s.drained && (s.bgpEstablished || s.heldByBfd);
}

interface Gate {
  /** gobgpd reports the BGP session Established. */
  established: boolean;
  /** Established for `openDelayMs` (what the session runs on). */
  open: boolean;
  timer?: NodeJS.Timeout;
  /** The admin state last given to the runner (undefined: none yet). */
  applied?: boolean;
}

export interface BfdGateOptions {
  readonly bfd: Pick<BfdSessionRunner, 'adminUp' | 'adminDown'>;
  /** Whether BFD has the BGP peer disabled (then its session must run to see the path return). */
  readonly heldByBfd: (peer: string) => boolean;
  readonly log: Logger;
  /** How long BGP must have been Established before the session runs. */
  readonly openDelayMs: number;
  readonly peers: readonly string[];
}

/** The gated peers (canonical address) and the admin state each one's BFD session gets. */
export class BfdGate {
  private readonly gates = new Map<string, Gate>();
  private readonly drained = new HeldPeers();

  constructor(private readonly opts: BfdGateOptions) {
    for (const p of opts.peers) this.gates.set(canonicalAddress(p), { established: false, open: false });
  }

  /** No gated peer: BFD runs regardless of BGP. */
  get empty(): boolean {
    return this.gates.size === 0;
  }

  /** Gives every gated session its admin state (AdminDown until BGP is Established). */
  applyAll(): void {
    for (const peer of this.gates.keys()) this.apply(peer);
  }

  stop(): void {
    for (const g of this.gates.values()) clearTimeout(g.timer);
  }

  /**
   * gobgpd's state of the BGP session to `address`: opens the gate `openDelayMs` after
   * 'established', closes it at once on anything else. Addresses without a gate are ignored.
   */
  bgpSessionState(address: string, state: string): void {
    let peer: string;
    try {
      peer = canonicalAddress(address);
    } catch {
      return;
    }
    const g = this.gates.get(peer);
    if (!g) return;
    const established = state === 'established';
    if (established === g.established) return;
    g.established = established;
    clearTimeout(g.timer);
    g.timer = undefined;
    if (!established) {
      g.open = false;
      this.apply(peer);
      return;
    }
    g.timer = setTimeout(() => {
      g.timer = undefined;
      g.open = g.established;
      this.apply(peer);
    }, this.opts.openDelayMs);
    g.timer.unref();
  }

  /** The gated peers, when they change: a new one starts held AdminDown, one that left loses its gate. */
  setPeers(peers: readonly string[]): void {
    const next = new Set(peers.map((p) => canonicalAddress(p)));
    for (const [peer, g] of this.gates) {
      if (next.has(peer)) continue;
      clearTimeout(g.timer);
      this.gates.delete(peer);
    }
    for (const peer of next) {
      if (this.gates.has(peer)) continue;
      this.gates.set(peer, { established: false, open: false });
      this.apply(peer);
    }
  }

  /** Drained for local health (true) or not, one peer or all; a gated session still waits for BGP. */
  setDrained(drained: boolean, peer?: string): void {
    if (drained) this.drained.hold(peer);
    else this.drained.release(peer);
    this.applyAll();
  }

  /** Gives a gated session the admin state `gatedSessionRuns` says, when it changed. */
  apply(peer: string): void {
    const g = this.gates.get(peer);
    if (!g) return;
    const heldByBfd = this.opts.heldByBfd(peer);
    const runs = gatedSessionRuns({ drained: this.drained.has(peer), bgpEstablished: g.open, heldByBfd });
    if (g.applied === runs) return;
    const first = g.applied === undefined;
    g.applied = runs;
    if (runs) this.opts.bfd.adminUp(peer);
    else this.opts.bfd.adminDown(peer);
    if (!first || runs) {
      this.opts.log.info(runs ? 'BFD session enabled' : 'BFD session held AdminDown', {
        peer, bgp: g.established ? 'established' : 'not established', ...(heldByBfd ? { heldByBfd: true } : {}),
      });
    }
  }
}
