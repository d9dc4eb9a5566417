// Runs the BFD sessions of one node: declarative `setSessions(desired)` diffs against the
// running sessions, the pure state machine (session.ts) decides, this class only turns its
// actions into datagrams and timers, counts, and reports state changes.
import { EventEmitter } from 'node:events';
// Nothing here imports a logger or metrics library: this module is loaded on the BFD
// worker thread too, where each library costs memory again (telemetry.ts).
import { BfdState, decodeControlPacket, diagName, encodeControlPacket, stateNames, type BfdStateName, type DropReason } from './codec.js';
import { noMetrics, quietLog, type BfdLog, type BfdMetricSink } from './telemetry.js';
import { createSession, detectionTimeUs, startActions, step, txIntervalUs, type Session, type SessionAction, type SessionEvent, type SessionTimers } from './session.js';
import { canonicalAddress, ControlReceiver, ControlSender, type ReceivedDatagram } from './transport.js';
import { HeldPeers } from './admin-down.js';

export interface BfdProfile {
  readonly minTxMs: number;
  readonly minRxMs: number;
  readonly multiplier: number;
}

export interface BfdSessionSpec {
  /** The router's address (single hop: directly connected). */
  readonly peer: string;
  /** Our address on the link towards the peer; packets are sent from and received on it. */
  readonly local: string;
  readonly profile: BfdProfile;
}

export interface BfdStateEvent {
  readonly peer: string;
  readonly local: string;
  readonly from: BfdStateName;
  readonly to: BfdStateName;
  /** Our diagnostic: why the state changed. */
  readonly diag: string;
  readonly remoteDiag: string;
}

export interface BfdSessionCounters {
  readonly rxPackets: number;
  readonly txPackets: number;
  readonly dropped: Readonly<Partial<Record<DropReason, number>>>;
  readonly stateChanges: number;
}

export interface BfdSessionStatus {
  readonly peer: string;
  readonly local: string;
  readonly state: BfdStateName;
  readonly remoteState: BfdStateName;
  readonly localDiag: string;
  readonly remoteDiag: string;
  readonly localDiscriminator: number;
  readonly remoteDiscriminator: number;
  /** Milliseconds since the session came Up; absent when not Up. */
  readonly uptimeMs?: number;
  /** Negotiated interval between our packets (0 = not transmitting periodically). */
  readonly txIntervalMs: number;
  /** Negotiated interval between the peer's packets: max(their Desired Min TX, our Required Min RX). */
  readonly rxIntervalMs: number;
  readonly detectionTimeMs: number;
  readonly profile: BfdProfile;
  readonly counters: BfdSessionCounters;
  /** Why the session's sockets could not be opened (retried). */
  readonly lastError?: string;
}

export interface BfdManagerOptions {
  /** Default: silent. The agent's winston logger fits. */
  readonly logger?: BfdLog;
  /** Default: nothing is counted; `bfdMetrics()` (metrics.ts) counts in the agent's registry. */
  readonly metrics?: BfdMetricSink;
  /** Source of jitter, discriminators and source ports; injectable for reproducible runs. */
  readonly random?: () => number;
  readonly now?: () => number;
  /** How often sessions whose sockets failed to open are retried. */
  readonly retryMs?: number;
}

interface RunningSession {
  readonly spec: BfdSessionSpec;
  session: Session;
  sender?: ControlSender;
  txTimer?: NodeJS.Timeout;
  detectionTimer?: NodeJS.Timeout;
  upSince?: number;
  rx: number;
  tx: number;
  dropped: Partial<Record<DropReason, number>>;
  stateChanges: number;
  lastError?: string;
  closed: boolean;
}

const usFromMs = (ms: number): number => Math.round(ms * 1000);

function timersOf(p: BfdProfile): SessionTimers {
  return { desiredMinTxUs: usFromMs(p.minTxMs), requiredMinRxUs: usFromMs(p.minRxMs), detectMult: p.multiplier };
}

export type BfdEvents = { state: [BfdStateEvent]; error: [Error] };

/**
 * What the agent uses to run its sessions: `BfdManager` on the calling thread, or
 * `ThreadedBfdManager` (threaded-manager.ts) on a worker thread of its own.
 */
export interface BfdSessionRunner extends EventEmitter<BfdEvents> {
  setSessions(desired: readonly BfdSessionSpec[]): Promise<void>;
  adminDown(peer?: string): void;
  adminUp(peer?: string): void;
  status(): BfdSessionStatus[];
  unmatchedDrops(): Readonly<Partial<Record<DropReason, number>>>;
  stop(opts?: { adminDown?: boolean }): Promise<void>;
}

export class BfdManager extends EventEmitter<BfdEvents> implements BfdSessionRunner {
  private readonly sessions = new Map<string, RunningSession>();
  private readonly byDiscriminator = new Map<number, RunningSession>();
  private readonly receivers = new Map<string, ControlReceiver>();
  /** Peers held AdminDown for local health (a session made later starts so). */
  private readonly heldDown = new HeldPeers();
  private retryTimer?: NodeJS.Timeout;
  private readonly log: BfdLog;
  private readonly metrics: BfdMetricSink;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly retryMs: number;
  /** Drops that could not be attributed to a session. */
  private readonly unattributedDrops: Partial<Record<DropReason, number>> = {};
  private stopped = false;

  constructor(opts: BfdManagerOptions = {}) {
    super();
    this.log = (opts.logger ?? quietLog).child({ component: 'bfd' });
    this.metrics = opts.metrics ?? noMetrics;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
    this.retryMs = opts.retryMs ?? 5000;
  }

  /**
   * Makes the running sessions exactly `desired` (one per peer): new peers start in Down
   * (or AdminDown if `adminDown()` is in force), changed profiles renegotiate with a Poll
   * Sequence, removed peers are told AdminDown and closed. Invalid entries are logged and
   * skipped, never thrown, so one bad peer cannot stop the others.
   */
  async setSessions(desired: readonly BfdSessionSpec[]): Promise<void> {
    if (this.stopped) throw new Error('BFD: manager is stopped');
    const wanted = new Map<string, BfdSessionSpec>();
    for (const spec of desired) {
      try {
        const normal = { ...spec, peer: canonicalAddress(spec.peer), local: canonicalAddress(spec.local) };
        createSession(1, timersOf(spec.profile)); // validates the profile
        if (wanted.has(normal.peer)) throw new Error('duplicate peer');
        wanted.set(normal.peer, normal);
      } catch (err) {
        this.log.error('invalid BFD session, skipped', { peer: spec.peer, local: spec.local, error: (err as Error).message });
      }
    }
    for (const [peer, running] of [...this.sessions]) {
      const spec = wanted.get(peer);
      if (!spec || spec.local !== running.spec.local) this.remove(running, true);
    }
    for (const spec of wanted.values()) {
      const running = this.sessions.get(spec.peer);
      if (!running) this.add(spec);
      else if (JSON.stringify(running.spec.profile) !== JSON.stringify(spec.profile)) {
        (running as { spec: BfdSessionSpec }).spec = spec;
        this.apply(running, { type: 'setTimers', timers: timersOf(spec.profile) });
      }
    }
    this.closeUnusedReceivers();
    await this.openMissingSockets();
  }

  /** Local health: puts one peer's session (or all, now and future) into AdminDown (diag 7). */
  adminDown(peer?: string): void {
    this.heldDown.hold(peer);
    for (const s of this.targets(peer)) this.apply(s, { type: 'adminDown' });
  }

  adminUp(peer?: string): void {
    this.heldDown.release(peer);
    for (const s of this.targets(peer)) {
      if (!this.heldDown.has(s.spec.peer)) this.apply(s, { type: 'adminUp' });
    }
  }

  status(): BfdSessionStatus[] {
    const now = this.now();
    return [...this.sessions.values()]
      .sort((a, b) => a.spec.peer.localeCompare(b.spec.peer))
      .map((r) => {
        const s = r.session;
        return {
          peer: r.spec.peer,
          local: r.spec.local,
          state: stateNames[s.state],
          remoteState: stateNames[s.remoteState],
          localDiag: diagName(s.localDiag),
          remoteDiag: diagName(s.remoteDiag),
          localDiscriminator: s.localDiscr,
          remoteDiscriminator: s.remoteDiscr,
          ...(r.upSince !== undefined ? { uptimeMs: now - r.upSince } : {}),
          txIntervalMs: txIntervalUs(s) / 1000,
          rxIntervalMs: s.remoteDesiredMinTxUs === 0 ? 0 : Math.max(s.remoteDesiredMinTxUs, s.rxRequiredInEffectUs) / 1000,
          detectionTimeMs: detectionTimeUs(s) / 1000,
          profile: r.spec.profile,
          counters: { rxPackets: r.rx, txPackets: r.tx, dropped: { ...r.dropped }, stateChanges: r.stateChanges },
          ...(r.lastError ? { lastError: r.lastError } : {}),
        };
      });
  }

  /** Drops not attributable to any session (unknown discriminator, unknown peer). */
  unmatchedDrops(): Readonly<Partial<Record<DropReason, number>>> {
    return { ...this.unattributedDrops };
  }

  /**
   * Closes every socket and timer. With `adminDown`, first tells each peer AdminDown so the
   * routers do not treat the stop as a failure; without, the peers detect it as one.
   */
  async stop(opts: { adminDown?: boolean } = {}): Promise<void> {
    for (const s of [...this.sessions.values()]) this.remove(s, opts.adminDown ?? false);
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.closeUnusedReceivers();
    // Let the last AdminDown datagrams leave before the sockets close.
    await new Promise((r) => setImmediate(r));
  }

  // ---------------------------------------------------------------------------------------

  private targets(peer?: string): RunningSession[] {
    if (peer === undefined) return [...this.sessions.values()];
    const s = this.sessions.get(canonicalAddress(peer));
    return s ? [s] : [];
  }

  private newDiscriminator(): number {
    for (;;) {
      const d = 1 + Math.floor(this.random() * 0xfffffffe);
      if (!this.byDiscriminator.has(d)) return d;
    }
  }

  private add(spec: BfdSessionSpec): void {
    let session = createSession(this.newDiscriminator(), timersOf(spec.profile));
    if (this.heldDown.has(spec.peer)) session = step(session, { type: 'adminDown' }).session;
    const running: RunningSession = { spec, session, rx: 0, tx: 0, dropped: {}, stateChanges: 0, closed: false };
    this.sessions.set(spec.peer, running);
    this.byDiscriminator.set(session.localDiscr, running);
    this.metrics.sessionState.set({ peer: spec.peer }, session.state);
    this.log.info('BFD session added', { peer: spec.peer, local: spec.local, ...spec.profile });
  }

  private remove(running: RunningSession, tellPeer: boolean): void {
    if (tellPeer && running.sender && running.session.state !== BfdState.AdminDown) this.apply(running, { type: 'adminDown' });
    running.closed = true;
    clearTimeout(running.txTimer);
    clearTimeout(running.detectionTimer);
    running.sender?.close();
    this.sessions.delete(running.spec.peer);
    this.byDiscriminator.delete(running.session.localDiscr);
    this.metrics.sessionState.remove({ peer: running.spec.peer });
    this.log.info('BFD session removed', { peer: running.spec.peer });
  }

  private closeUnusedReceivers(): void {
    const used = new Set([...this.sessions.values()].map((s) => s.spec.local));
    for (const [local, receiver] of this.receivers) {
      if (!used.has(local)) {
        receiver.close();
        this.receivers.delete(local);
      }
    }
  }

  private async openMissingSockets(): Promise<void> {
    let failed = false;
    for (const running of [...this.sessions.values()]) {
      if (running.sender || running.closed) continue;
      const { local, peer } = running.spec;
      try {
        if (!this.receivers.has(local)) {
          this.receivers.set(local, await ControlReceiver.open(local, (d) => this.onDatagram(d), (e) => this.onSocketError(e)));
        }
        const sender = await ControlSender.open(local, peer, this.random, (e) => this.onSocketError(e));
        if (running.closed) {
          sender.close();
          continue;
        }
        running.sender = sender;
        delete running.lastError;
        this.run(running, startActions(running.session));
      } catch (err) {
        failed = true;
        if (running.lastError !== (err as Error).message) this.log.warn('BFD session cannot start; retrying', { peer, local, error: (err as Error).message });
        running.lastError = (err as Error).message;
      }
    }
    if (this.stopped) this.closeUnusedReceivers();
    if (failed && !this.retryTimer && !this.stopped) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        void this.openMissingSockets();
      }, this.retryMs);
      this.retryTimer.unref();
    }
  }

  private onSocketError(err: Error): void {
    this.log.warn('BFD socket error', { error: err.message });
  }

  private drop(reason: DropReason, running?: RunningSession): void {
    this.metrics.dropped.inc({ reason });
    const bucket = running ? running.dropped : this.unattributedDrops;
    bucket[reason] = (bucket[reason] ?? 0) + 1;
  }

  /** Demultiplexing (RFC 5880 6.8.6): by Your Discriminator, or by peer address when it is zero. */
  private onDatagram(d: ReceivedDatagram): void {
    const byAddress = this.sessions.get(d.from);
    const decoded = decodeControlPacket(d.payload);
    if (!decoded.ok) return this.drop(decoded.reason, byAddress?.spec.local === d.local ? byAddress : undefined);
    const p = decoded.packet;
    let running: RunningSession | undefined;
    if (p.yourDiscriminator !== 0) {
      running = this.byDiscriminator.get(p.yourDiscriminator);
      if (!running) return this.drop('unknown_session', byAddress);
      // Single hop: a known discriminator from another address or interface is not our peer.
      if (running.spec.peer !== d.from || running.spec.local !== d.local) return this.drop('peer_mismatch', running);
    } else {
      running = byAddress?.spec.local === d.local ? byAddress : undefined;
      if (!running) return this.drop('unknown_session');
    }
    if (!running.sender) return this.drop('unknown_session', running);
    running.rx += 1;
    this.metrics.packets.inc({ peer: running.spec.peer, direction: 'rx' });
    this.apply(running, { type: 'packet', packet: p });
  }

  private apply(running: RunningSession, ev: SessionEvent): void {
    if (running.closed) return;
    const result = step(running.session, ev);
    running.session = result.session;
    this.run(running, result.actions);
  }

  private run(running: RunningSession, actions: readonly SessionAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send':
          if (!running.sender) break;
          running.sender.send(encodeControlPacket(a.packet), (e) => this.onSocketError(e));
          running.tx += 1;
          this.metrics.packets.inc({ peer: running.spec.peer, direction: 'tx' });
          break;
        case 'armTx': {
          clearTimeout(running.txTimer);
          if (!running.sender) break;
          const factor = a.minFactor + this.random() * (a.maxFactor - a.minFactor);
          running.txTimer = setTimeout(() => this.apply(running, { type: 'txTimer' }), (a.intervalUs * factor) / 1000);
          break;
        }
        case 'stopTx':
          clearTimeout(running.txTimer);
          break;
        case 'armDetection':
          clearTimeout(running.detectionTimer);
          running.detectionTimer = setTimeout(() => this.apply(running, { type: 'detectionTimer' }), a.timeoutUs / 1000);
          break;
        case 'stopDetection':
          clearTimeout(running.detectionTimer);
          break;
        case 'stateChange':
          this.onStateChange(running, a.from, a.to, a.diag);
          break;
      }
    }
  }

  private onStateChange(running: RunningSession, from: BfdState, to: BfdState, diag: number): void {
    running.stateChanges += 1;
    if (to === BfdState.Up) running.upSince = this.now();
    else delete running.upSince;
    const { peer, local } = running.spec;
    this.metrics.sessionState.set({ peer }, to);
    this.metrics.stateChanges.inc({ peer, state: stateNames[to] });
    const event: BfdStateEvent = { peer, local, from: stateNames[from], to: stateNames[to], diag: diagName(diag), remoteDiag: diagName(running.session.remoteDiag) };
    this.log.info(`BFD session ${stateNames[from]} -> ${stateNames[to]}`, { peer, local, diag: event.diag, remoteDiag: event.remoteDiag });
    this.emit('state', event);
  }
}
