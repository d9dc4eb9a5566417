// The BFD session state machine of RFC 5880 (asynchronous mode, no Echo, no Demand mode
// of our own) as a pure function `step(session, event) -> { session, actions }`. It owns no
// socket and no timer: the transport turns actions into packets and timers and feeds
// received packets and timer expiries back in, so tests drive every transition directly.
import { BfdDiag, BfdState, type ControlPacket } from './codec.js';

/** RFC 5880 6.8.3: while not Up, bfd.DesiredMinTxInterval is at least one second. */
export const SLOW_TX_US = 1_000_000;

export interface SessionTimers {
  /** Configured Desired Min TX (microseconds); what we advertise once Up. */
  readonly desiredMinTxUs: number;
  /** Configured Required Min RX (microseconds). */
  readonly requiredMinRxUs: number;
  readonly detectMult: number;
}

/** The RFC 5880 6.8.1 state variables plus what the transmit/poll rules need to remember. */
export interface Session {
  readonly config: SessionTimers;
  readonly state: BfdState;
  readonly remoteState: BfdState;
  readonly localDiscr: number;
  readonly remoteDiscr: number;
  readonly localDiag: number;
  /** Diag of the last packet received (for status and logs). */
  readonly remoteDiag: number;
  /** bfd.DesiredMinTxInterval: the value in our packets (>= 1 s while not Up). */
  readonly desiredMinTxUs: number;
  /** bfd.RequiredMinRxInterval: the value in our packets. */
  readonly requiredMinRxUs: number;
  /** bfd.RemoteMinRxInterval; initialised to 1 us (6.8.1). 0 = the peer wants no packets. */
  readonly remoteMinRxUs: number;
  /** Desired Min TX and Detect Mult of the last packet received (6.8.4). */
  readonly remoteDesiredMinTxUs: number;
  readonly remoteDetectMult: number;
  readonly remoteDemandMode: boolean;
  /**
   * The Desired Min TX used for the actual transmit interval. Differs from
   * desiredMinTxUs only while an increase made when Up awaits its Final (6.8.3).
   */
  readonly txDesiredInEffectUs: number;
  /** The Required Min RX used for the Detection Time; a decrease made when Up waits for the Final (6.8.3). */
  readonly rxRequiredInEffectUs: number;
  /** A Poll Sequence is in progress: our periodic packets carry P until a packet with F arrives. */
  readonly polling: boolean;
  /** Parameters changed again during a Poll Sequence: start another when this one ends. */
  readonly pollPending: boolean;
}

export type SessionEvent =
  | { readonly type: 'packet'; readonly packet: ControlPacket }
  | { readonly type: 'txTimer' }
  | { readonly type: 'detectionTimer' }
  | { readonly type: 'adminDown'; readonly diag?: number }
  | { readonly type: 'adminUp' }
  | { readonly type: 'setTimers'; readonly timers: SessionTimers };

export type SessionAction =
  | { readonly type: 'send'; readonly packet: ControlPacket }
  /**
   * (Re)arm the periodic transmit timer. The transport draws the actual delay uniformly from
   * [intervalUs * minFactor, intervalUs * maxFactor] (RFC 5880 6.8.7 jitter).
   */
  | { readonly type: 'armTx'; readonly intervalUs: number; readonly minFactor: number; readonly maxFactor: number }
  | { readonly type: 'stopTx' }
  | { readonly type: 'armDetection'; readonly timeoutUs: number }
  | { readonly type: 'stopDetection' }
  | { readonly type: 'stateChange'; readonly from: BfdState; readonly to: BfdState; readonly diag: number };

export interface StepResult {
  readonly session: Session;
  readonly actions: readonly SessionAction[];
}

/**
 * A new session in state Down (6.8.1 initial values). The caller arms the first
 * transmission with `startActions`; the local discriminator must be unique and non-zero.
 */
export function createSession(localDiscr: number, config: SessionTimers): Session {
  if (!Number.isInteger(localDiscr) || localDiscr < 1 || localDiscr > 0xffffffff) throw new Error(`BFD: local discriminator ${localDiscr} must be 1..2^32-1`);
  validateTimers(config);
  const desired = Math.max(config.desiredMinTxUs, SLOW_TX_US);
  return {
    config,
    state: BfdState.Down,
    remoteState: BfdState.Down,
    localDiscr,
    remoteDiscr: 0,
    localDiag: BfdDiag.None,
    remoteDiag: BfdDiag.None,
    desiredMinTxUs: desired,
    requiredMinRxUs: config.requiredMinRxUs,
    remoteMinRxUs: 1,
    remoteDesiredMinTxUs: 0,
    remoteDetectMult: 0,
    remoteDemandMode: false,
    txDesiredInEffectUs: desired,
    rxRequiredInEffectUs: config.requiredMinRxUs,
    polling: false,
    pollPending: false,
  };
}

export function validateTimers(t: SessionTimers): void {
  if (!Number.isInteger(t.desiredMinTxUs) || t.desiredMinTxUs < 1 || t.desiredMinTxUs > 0xffffffff) throw new Error(`BFD: desired min tx ${t.desiredMinTxUs} us out of range`);
  // Required Min RX 0 would mean "send me nothing"; a session we run always wants packets.
  if (!Number.isInteger(t.requiredMinRxUs) || t.requiredMinRxUs < 1 || t.requiredMinRxUs > 0xffffffff) throw new Error(`BFD: required min rx ${t.requiredMinRxUs} us out of range`);
  if (!Number.isInteger(t.detectMult) || t.detectMult < 1 || t.detectMult > 255) throw new Error(`BFD: detect multiplier ${t.detectMult} out of range 1..255`);
}

/** The actions that start a freshly created session: the first packet and the transmit timer. */
export function startActions(s: Session): readonly SessionAction[] {
  return [{ type: 'send', packet: controlPacket(s, {}) }, armTxAction(s)];
}

/** RFC 5880 6.8.2/6.8.7: 0 when we must not transmit periodically. */
export function txIntervalUs(s: Session): number {
  if (s.remoteMinRxUs === 0) return 0;
  // Demand mode active on the remote system (6.8.6): cease periodic transmission.
  if (s.remoteDemandMode && s.state === BfdState.Up && s.remoteState === BfdState.Up) return 0;
  return Math.max(s.txDesiredInEffectUs, s.remoteMinRxUs);
}

/** RFC 5880 6.8.4 (asynchronous mode): remote Detect Mult x max(our Required Min RX, their Desired Min TX). */
export function detectionTimeUs(s: Session): number {
  return s.remoteDetectMult * Math.max(s.rxRequiredInEffectUs, s.remoteDesiredMinTxUs);
}

/** RFC 5880 6.8.7: reduce each interval by 0-25%; with Detect Mult 1, to 75-90%. */
export function jitterFactors(detectMult: number): { minFactor: number; maxFactor: number } {
  return detectMult === 1 ? { minFactor: 0.75, maxFactor: 0.9 } : { minFactor: 0.75, maxFactor: 1 };
}

export function step(s: Session, ev: SessionEvent): StepResult {
  switch (ev.type) {
    case 'packet':
      return receive(s, ev.packet);
    case 'txTimer':
      return periodicTransmit(s);
    case 'detectionTimer':
      return detectionExpired(s);
    case 'adminDown':
      return adminDown(s, ev.diag ?? BfdDiag.AdministrativelyDown);
    case 'adminUp':
      return adminUp(s);
    case 'setTimers':
      return setTimers(s, ev.timers);
  }
}

// ---------------------------------------------------------------------------------------

function controlPacket(s: Session, bits: { poll?: boolean; final?: boolean }): ControlPacket {
  return {
    version: 1,
    diag: s.localDiag,
    state: s.state,
    poll: bits.poll ?? false,
    final: bits.final ?? false,
    // A user-space implementation shares fate with the control plane (6.8.7: C set only if independent).
    controlPlaneIndependent: false,
    authPresent: false,
    demand: false,
    multipoint: false,
    detectMult: s.config.detectMult,
    myDiscriminator: s.localDiscr,
    yourDiscriminator: s.remoteDiscr,
    desiredMinTxUs: s.desiredMinTxUs,
    requiredMinRxUs: s.requiredMinRxUs,
    // No Echo function: 0 tells the peer not to send Echo packets (6.8.9).
    requiredMinEchoRxUs: 0,
  };
}

function armTxAction(s: Session): SessionAction {
  const interval = txIntervalUs(s);
  if (interval === 0) return { type: 'stopTx' };
  return { type: 'armTx', intervalUs: interval, ...jitterFactors(s.config.detectMult) };
}

/** bfd.DesiredMinTxInterval for a state: the configured value, but >= 1 s while not Up (6.8.3). */
function advertisedTx(config: SessionTimers, state: BfdState): number {
  return state === BfdState.Up ? config.desiredMinTxUs : Math.max(config.desiredMinTxUs, SLOW_TX_US);
}

/**
 * Applies new advertised timer values (6.8.3). A change starts a Poll Sequence (6.5); while
 * Up, a slower transmit interval and a faster receive requirement only take effect when
 * the Final arrives, so the peer's Detection Time is never shorter than our real spacing.
 */
function changeAdvertised(s: Session, desiredMinTxUs: number, requiredMinRxUs: number): Session {
  if (desiredMinTxUs === s.desiredMinTxUs && requiredMinRxUs === s.requiredMinRxUs) return s;
  const up = s.state === BfdState.Up;
  const txDesiredInEffectUs = up && desiredMinTxUs > s.txDesiredInEffectUs ? s.txDesiredInEffectUs : desiredMinTxUs;
  const rxRequiredInEffectUs = up && requiredMinRxUs < s.rxRequiredInEffectUs ? s.rxRequiredInEffectUs : requiredMinRxUs;
  return {
    ...s,
    desiredMinTxUs,
    requiredMinRxUs,
    txDesiredInEffectUs,
    rxRequiredInEffectUs,
    polling: true,
    // A Poll Sequence already in flight carried the old values: run another for the new ones.
    pollPending: s.polling,
  };
}

function terminatePoll(s: Session): Session {
  // With another change pending, this Final may answer a packet that still carried the older
  // values: keep the conservative values in effect until the next Poll Sequence ends too.
  if (s.pollPending) return { ...s, polling: true, pollPending: false };
  return { ...s, polling: false, txDesiredInEffectUs: s.desiredMinTxUs, rxRequiredInEffectUs: s.requiredMinRxUs };
}

/** Enters `to` with `diag`, adjusting the advertised transmit interval for the new state. */
function transition(s: Session, to: BfdState, diag: number): Session {
  const entered: Session = { ...s, state: to, localDiag: diag };
  return changeAdvertised(entered, advertisedTx(s.config, to), s.requiredMinRxUs);
}

/** Actions common to every step that may have changed state, timers or polling. */
function finish(before: Session, after: Session, extra: SessionAction[], opts: { sendNow?: boolean; detection?: 'arm' | 'stop' } = {}): StepResult {
  const actions: SessionAction[] = [];
  if (after.state !== before.state) actions.push({ type: 'stateChange', from: before.state, to: after.state, diag: after.localDiag });
  actions.push(...extra);
  // A state change or a new Poll Sequence is told to the peer at once rather than at the next
  // periodic slot (as FRR and BIRD do): it is what lets both sides converge within one round trip.
  const startedPoll = after.polling && (!before.polling || (after.pollPending === false && before.pollPending));
  if (opts.sendNow || after.state !== before.state || startedPoll) {
    if (txIntervalUs(after) !== 0 || after.state !== before.state) actions.push({ type: 'send', packet: controlPacket(after, { poll: after.polling }) });
    actions.push(armTxAction(after));
  } else if (txIntervalUs(after) !== txIntervalUs(before)) {
    actions.push(armTxAction(after));
  }
  if (opts.detection === 'arm') actions.push({ type: 'armDetection', timeoutUs: detectionTimeUs(after) });
  if (opts.detection === 'stop') actions.push({ type: 'stopDetection' });
  return { session: after, actions };
}

/** RFC 5880 6.8.6, after the session-independent checks done by decodeControlPacket. */
function receive(s0: Session, p: ControlPacket): StepResult {
  let s: Session = {
    ...s0,
    remoteDiscr: p.myDiscriminator,
    remoteState: p.state,
    remoteDemandMode: p.demand,
    remoteMinRxUs: p.requiredMinRxUs,
    remoteDesiredMinTxUs: p.desiredMinTxUs,
    remoteDetectMult: p.detectMult,
    remoteDiag: p.diag,
  };
  // Echo is not implemented, so Required Min Echo RX needs no action.
  if (p.final && s.polling) s = terminatePoll(s);

  if (s.state === BfdState.AdminDown) {
    // Discarded for the state machine; the remote variables above are still updated (6.8.6 order).
    return finish(s0, s, []);
  }

  if (p.state === BfdState.AdminDown) {
    if (s.state !== BfdState.Down) s = transition(s, BfdState.Down, BfdDiag.NeighborSignaledSessionDown);
  } else if (s.state === BfdState.Down) {
    if (p.state === BfdState.Down) s = transition(s, BfdState.Init, s.localDiag);
    else if (p.state === BfdState.Init) s = transition(s, BfdState.Up, BfdDiag.None);
  } else if (s.state === BfdState.Init) {
    if (p.state === BfdState.Init || p.state === BfdState.Up) s = transition(s, BfdState.Up, BfdDiag.None);
  } else if (p.state === BfdState.Down) {
    s = transition(s, BfdState.Down, BfdDiag.NeighborSignaledSessionDown);
  }

  const extra: SessionAction[] = [];
  // 6.8.7: answer a Poll with a Final at once, never with P and F together.
  if (p.poll) extra.push({ type: 'send', packet: controlPacket(s, { final: true }) });
  // The packet was received for the Detection Time rules (6.8.4).
  return finish(s0, s, extra, { detection: 'arm' });
}

function periodicTransmit(s: Session): StepResult {
  if (txIntervalUs(s) === 0) return { session: s, actions: [{ type: 'stopTx' }] };
  return { session: s, actions: [{ type: 'send', packet: controlPacket(s, { poll: s.polling }) }, armTxAction(s)] };
}

/**
 * 6.8.4: no packet for a Detection Time. In Init or Up the session goes Down with diag 1;
 * in every state bfd.RemoteDiscr is reset to zero (6.8.1), so the next packet from a
 * restarted peer can be matched by address.
 */
function detectionExpired(s0: Session): StepResult {
  let s: Session = { ...s0, remoteDiscr: 0, remoteState: BfdState.Down, remoteDemandMode: false };
  if (s.state === BfdState.Init || s.state === BfdState.Up) s = transition(s, BfdState.Down, BfdDiag.ControlDetectionTimeExpired);
  return finish(s0, s, [], { detection: 'stop' });
}

/** 6.8.16: administrative shutdown; the peer sees State AdminDown and does not treat it as a failure. */
function adminDown(s0: Session, diag: number): StepResult {
  if (s0.state === BfdState.AdminDown) return { session: s0, actions: [] };
  const s = transition(s0, BfdState.AdminDown, diag);
  return finish(s0, s, [], { detection: 'stop', sendNow: true });
}

function adminUp(s0: Session): StepResult {
  if (s0.state !== BfdState.AdminDown) return { session: s0, actions: [] };
  return finish(s0, transition(s0, BfdState.Down, s0.localDiag), []);
}

function setTimers(s0: Session, timers: SessionTimers): StepResult {
  validateTimers(timers);
  let s: Session = { ...s0, config: timers };
  s = changeAdvertised(s, advertisedTx(timers, s.state), timers.requiredMinRxUs);
  return finish(s0, s, []);
}
