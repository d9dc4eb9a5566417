// Per-peer session history for `kst status` (what `show bgp summary` gives): how long a
// session has been up or down, prefix counts, and why it last went down. gobgpd's API
// has no reset reason, so it is inferred at the moment a drop is seen: our own
// admin-down reason, a gobgpd restart, or which side sent a NOTIFICATION (counters
// compared with those of the Established session); else the connection was lost.
import type { BgpPeerReport } from '../observe/index.js';
import type { PeerStatus } from './gobgp-client.js';

interface Track {
  up: boolean;
  /** ms epoch */
  establishedAt?: number;
  downSince?: number;
  /** NOTIFICATION counters while Established: a drop with more of them tells who ended it. */
  notificationsAtUp?: { readonly received: number; readonly sent: number };
  lastError?: string;
  lastErrorAt?: number;
  /** The drop was seen without counters (WatchEvent): refine the reason on the next ListPeer. */
  refine: boolean;
  /** Last seen prefix counts (ListPeer); advertised only from a status read. */
  received?: number;
  accepted?: number;
  advertised?: number;
}

function dropReason(p: PeerStatus, t: Track, given: string | undefined): { reason: string; final: boolean } {
  if (given) return { reason: given, final: true };
  if (p.adminDown) return { reason: 'administratively down', final: true };
  const s = p.session;
  const before = t.notificationsAtUp;
  if (!s || !before) return { reason: 'session went down', final: false };
  if (s.notificationsReceived > before.received) return { reason: 'NOTIFICATION received from the peer', final: true };
  if (s.notificationsSent > before.sent) return { reason: 'NOTIFICATION sent to the peer (e.g. hold timer expired)', final: true };
  return { reason: 'connection lost (TCP closed or reset, no NOTIFICATION)', final: true };
}

export class PeerHistory {
  private readonly tracks = new Map<string, Track>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Records what gobgpd said about a peer (ListPeer or WatchEvent). `reason`: why it is
   * down when the caller knows better than the counters (admin down for BFD, gobgpd restart).
   */
  note(p: PeerStatus, reason?: string): void {
    if (!p.address) return;
    const now = this.now();
    const t = this.tracks.get(p.address) ?? { up: false, refine: false };
    this.tracks.set(p.address, t);
    const s = p.session;
    if (s) {
      t.received = s.received;
      t.accepted = s.accepted;
      // Advertised counts come only with a status read; a down session advertises nothing.
      t.advertised = s.advertised ?? (p.state === 'established' ? t.advertised : 0);
    }
    if (p.state === 'established') {
      const since = s?.establishedAt !== undefined ? s.establishedAt * 1000 : undefined;
      // Up again before a read with counters (or down and up between two reads, which
      // gobgpd's newer uptime gives away): the counters still tell who ended the session.
      const flapped = t.up && since !== undefined && t.establishedAt !== undefined && since > t.establishedAt + 1000;
      if (s && (t.refine || flapped)) {
        t.lastError = dropReason({ ...p, adminDown: false }, t, undefined).reason;
        if (flapped) t.lastErrorAt = s.lastChangeAt !== undefined ? s.lastChangeAt * 1000 : since;
      }
      // gobgpd's own timestamp when we have it; else the moment we saw the change.
      t.establishedAt = since ?? (t.up ? t.establishedAt : now);
      if (s) t.notificationsAtUp = { received: s.notificationsReceived, sent: s.notificationsSent };
      t.up = true;
      t.downSince = undefined;
      t.refine = false;
      return;
    }
    if (t.up) {
      const { reason: why, final } = dropReason(p, t, reason);
      t.up = false;
      t.downSince = now;
      t.lastError = why;
      t.lastErrorAt = now;
      t.refine = !final;
    } else if (t.refine && (s || p.adminDown || reason)) {
      const { reason: why, final } = dropReason(p, t, reason);
      t.lastError = why;
      t.refine = !final;
    }
    // Seen down from the start: gobgpd's last state change is the best guess. It moves
    // on every Idle/Connect/Active step, so it is taken once, not followed.
    if (t.downSince === undefined) t.downSince = s?.lastChangeAt !== undefined ? Math.min(now, s.lastChangeAt * 1000) : now;
    if (p.adminDown && reason && t.lastError !== reason) {
      t.lastError = reason;
      t.lastErrorAt ??= now;
    }
    // Prefixes go with the session; gobgpd's counts say the same on its next read.
    if (!s && t.received !== undefined) t.received = t.accepted = t.advertised = 0;
  }

  forget(address: string): void {
    this.tracks.delete(address);
  }

  /** When the session became Established (ms epoch), undefined while it is not. */
  establishedAt(address: string): number | undefined {
    const t = this.tracks.get(address);
    return t?.up ? t.establishedAt : undefined;
  }

  /** One row of `kst status`'s BGP table, with the details observe's BgpPeerReport allows. */
  report(p: PeerStatus): BgpPeerReport {
    const t = this.tracks.get(p.address);
    const now = this.now();
    const secs = (since: number | undefined): number | undefined => (since === undefined ? undefined : Math.max(0, Math.floor((now - since) / 1000)));
    const up = p.state === 'established' ? secs(t?.establishedAt) : undefined;
    const down = p.state !== 'established' ? secs(t?.downSince) : undefined;
    return {
      address: p.address,
      asn: p.asn,
      state: p.state,
      adminDown: p.adminDown,
      ...(up !== undefined ? { uptimeSeconds: up } : {}),
      ...(down !== undefined ? { downtimeSeconds: down } : {}),
      ...(t?.received !== undefined ? { prefixesReceived: t.received } : {}),
      ...(t?.accepted !== undefined ? { prefixesAccepted: t.accepted } : {}),
      ...(t?.advertised !== undefined ? { prefixesAdvertised: t.advertised } : {}),
      ...(t?.lastError ? { lastError: t.lastError } : {}),
      ...(t?.lastError && t.lastErrorAt !== undefined ? { lastErrorAt: new Date(t.lastErrorAt).toISOString() } : {}),
    };
  }
}
