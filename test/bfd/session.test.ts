import { describe, expect, it } from '@jest/globals';
import {
  BfdDiag,
  BfdState,
  createSession,
  detectionTimeUs,
  jitterFactors,
  startActions,
  step,
  txIntervalUs,
  type ControlPacket,
  type Session,
  type SessionAction,
  type SessionEvent,
} from '../../src/bfd/index.js';

const LOCAL = 0x0a0b0c0d;
const REMOTE = 0x01020304;
const timers = { desiredMinTxUs: 100_000, requiredMinRxUs: 100_000, detectMult: 3 };

function peerPacket(state: BfdState, over: Partial<ControlPacket> = {}): ControlPacket {
  return {
    version: 1, diag: 0, state, poll: false, final: false, controlPlaneIndependent: false, authPresent: false,
    demand: false, multipoint: false, detectMult: 3, myDiscriminator: REMOTE,
    yourDiscriminator: state === BfdState.Down || state === BfdState.AdminDown ? 0 : LOCAL,
    desiredMinTxUs: 100_000, requiredMinRxUs: 100_000, requiredMinEchoRxUs: 0, ...over,
  };
}

const rx = (state: BfdState, over: Partial<ControlPacket> = {}): SessionEvent => ({ type: 'packet', packet: peerPacket(state, over) });

function run(s: Session, ...events: SessionEvent[]): { session: Session; actions: SessionAction[] } {
  const actions: SessionAction[] = [];
  for (const ev of events) {
    const r = step(s, ev);
    s = r.session;
    actions.push(...r.actions);
  }
  return { session: s, actions };
}

const sent = (actions: readonly SessionAction[]): ControlPacket[] => actions.flatMap((a) => (a.type === 'send' ? [a.packet] : []));
const stateChanges = (actions: readonly SessionAction[]) => actions.filter((a) => a.type === 'stateChange');

/** A session in the given state, reached through real protocol exchanges. */
function sessionIn(state: BfdState): Session {
  const down = createSession(LOCAL, timers);
  switch (state) {
    case BfdState.Down:
      return down;
    case BfdState.Init:
      return run(down, rx(BfdState.Down)).session;
    case BfdState.Up:
      // Up, and the Poll Sequence that coming Up started is finished.
      return run(down, rx(BfdState.Init), rx(BfdState.Up, { final: true })).session;
    case BfdState.AdminDown:
      return run(down, { type: 'adminDown' }).session;
  }
}

describe('BFD session state machine (RFC 5880 6.8.6 table)', () => {
  // [from, received state or event, expected state, expected diag (undefined = unchanged)]
  const table: Array<[string, BfdState, SessionEvent, BfdState, number | undefined]> = [
    ['Down + rx AdminDown', BfdState.Down, rx(BfdState.AdminDown), BfdState.Down, undefined],
    ['Down + rx Down', BfdState.Down, rx(BfdState.Down), BfdState.Init, undefined],
    ['Down + rx Init', BfdState.Down, rx(BfdState.Init), BfdState.Up, BfdDiag.None],
    ['Down + rx Up', BfdState.Down, rx(BfdState.Up), BfdState.Down, undefined],
    ['Down + detection timer', BfdState.Down, { type: 'detectionTimer' }, BfdState.Down, undefined],
    ['Init + rx AdminDown', BfdState.Init, rx(BfdState.AdminDown), BfdState.Down, BfdDiag.NeighborSignaledSessionDown],
    ['Init + rx Down', BfdState.Init, rx(BfdState.Down), BfdState.Init, undefined],
    ['Init + rx Init', BfdState.Init, rx(BfdState.Init), BfdState.Up, BfdDiag.None],
    ['Init + rx Up', BfdState.Init, rx(BfdState.Up), BfdState.Up, BfdDiag.None],
    ['Init + detection timer', BfdState.Init, { type: 'detectionTimer' }, BfdState.Down, BfdDiag.ControlDetectionTimeExpired],
    ['Up + rx AdminDown', BfdState.Up, rx(BfdState.AdminDown), BfdState.Down, BfdDiag.NeighborSignaledSessionDown],
    ['Up + rx Down', BfdState.Up, rx(BfdState.Down), BfdState.Down, BfdDiag.NeighborSignaledSessionDown],
    ['Up + rx Init', BfdState.Up, rx(BfdState.Init), BfdState.Up, undefined],
    ['Up + rx Up', BfdState.Up, rx(BfdState.Up), BfdState.Up, undefined],
    ['Up + detection timer', BfdState.Up, { type: 'detectionTimer' }, BfdState.Down, BfdDiag.ControlDetectionTimeExpired],
    ['AdminDown + rx Down', BfdState.AdminDown, rx(BfdState.Down), BfdState.AdminDown, undefined],
    ['AdminDown + rx Init', BfdState.AdminDown, rx(BfdState.Init), BfdState.AdminDown, undefined],
    ['AdminDown + rx Up', BfdState.AdminDown, rx(BfdState.Up), BfdState.AdminDown, undefined],
    ['AdminDown + rx AdminDown', BfdState.AdminDown, rx(BfdState.AdminDown), BfdState.AdminDown, undefined],
    ['Down + admin down', BfdState.Down, { type: 'adminDown' }, BfdState.AdminDown, BfdDiag.AdministrativelyDown],
    ['Init + admin down', BfdState.Init, { type: 'adminDown' }, BfdState.AdminDown, BfdDiag.AdministrativelyDown],
    ['Up + admin down', BfdState.Up, { type: 'adminDown' }, BfdState.AdminDown, BfdDiag.AdministrativelyDown],
    ['Up + admin down (path down)', BfdState.Up, { type: 'adminDown', diag: BfdDiag.PathDown }, BfdState.AdminDown, BfdDiag.PathDown],
    ['AdminDown + admin up', BfdState.AdminDown, { type: 'adminUp' }, BfdState.Down, undefined],
    ['Up + admin up (no-op)', BfdState.Up, { type: 'adminUp' }, BfdState.Up, undefined],
  ];

  it.each(table)('%s', (_name, from, ev, to, diag) => {
    const before = sessionIn(from);
    expect(before.state).toBe(from);
    const r = step(before, ev);
    expect(r.session.state).toBe(to);
    expect(r.session.localDiag).toBe(diag ?? before.localDiag);
    const changes = stateChanges(r.actions);
    if (to === from) expect(changes).toEqual([]);
    else {
      expect(changes).toEqual([{ type: 'stateChange', from, to, diag: r.session.localDiag }]);
      // The peer hears about a state change at once, in a packet carrying the new state.
      expect(sent(r.actions).at(-1)?.state).toBe(to);
    }
  });

  it('records the remote variables from every accepted packet (even in AdminDown, 6.8.6 order)', () => {
    const r = step(sessionIn(BfdState.AdminDown), rx(BfdState.Up, { diag: 5, detectMult: 4, desiredMinTxUs: 250_000, requiredMinRxUs: 300_000 }));
    expect(r.session).toMatchObject({ remoteDiscr: REMOTE, remoteState: BfdState.Up, remoteDiag: 5, remoteDetectMult: 4, remoteDesiredMinTxUs: 250_000, remoteMinRxUs: 300_000 });
    // ...but the packet is discarded: no detection timer, no Final for a Poll.
    expect(r.actions.find((a) => a.type === 'armDetection')).toBeUndefined();
    expect(sent(step(sessionIn(BfdState.AdminDown), rx(BfdState.Up, { poll: true })).actions)).toEqual([]);
  });

  it('detection expiry forgets the remote discriminator (6.8.1), so a restarted peer is matched again', () => {
    const r = step(sessionIn(BfdState.Up), { type: 'detectionTimer' });
    expect(r.session.remoteDiscr).toBe(0);
    expect(sent(r.actions).at(-1)).toMatchObject({ state: BfdState.Down, yourDiscriminator: 0, diag: BfdDiag.ControlDetectionTimeExpired });
    expect(r.actions).toContainEqual({ type: 'stopDetection' });
  });

  it('admin down stops detection and keeps sending AdminDown packets at the slow rate', () => {
    const r = step(sessionIn(BfdState.Up), { type: 'adminDown' });
    expect(r.actions).toContainEqual({ type: 'stopDetection' });
    expect(txIntervalUs(r.session)).toBe(1_000_000);
    expect(sent(step(r.session, { type: 'txTimer' }).actions)[0]).toMatchObject({ state: BfdState.AdminDown, diag: BfdDiag.AdministrativelyDown });
  });
});

describe('BFD timers (RFC 5880 6.8.2-6.8.4, 6.8.7)', () => {
  it('sends slowly (>= 1 s) while not Up and advertises the configured interval once Up, with a Poll', () => {
    const down = createSession(LOCAL, timers);
    expect(down.desiredMinTxUs).toBe(1_000_000);
    expect(startActions(down)).toEqual([
      expect.objectContaining({ type: 'send', packet: expect.objectContaining({ state: BfdState.Down, yourDiscriminator: 0, desiredMinTxUs: 1_000_000, requiredMinRxUs: 100_000, requiredMinEchoRxUs: 0 }) }),
      { type: 'armTx', intervalUs: 1_000_000, minFactor: 0.75, maxFactor: 1 },
    ]);
    const up = run(down, rx(BfdState.Init));
    expect(up.session.state).toBe(BfdState.Up);
    expect(up.session.polling).toBe(true);
    expect(sent(up.actions).at(-1)).toMatchObject({ state: BfdState.Up, poll: true, desiredMinTxUs: 100_000, yourDiscriminator: REMOTE });
    // A faster rate takes effect at once.
    expect(txIntervalUs(up.session)).toBe(100_000);
    // Periodic packets carry P until the Final arrives.
    expect(sent(step(up.session, { type: 'txTimer' }).actions)[0]?.poll).toBe(true);
    const done = step(up.session, rx(BfdState.Up, { final: true })).session;
    expect(done.polling).toBe(false);
    expect(sent(step(done, { type: 'txTimer' }).actions)[0]?.poll).toBe(false);
  });

  it('negotiates to the slower side: tx = max(our Desired Min TX, their Required Min RX)', () => {
    const up = sessionIn(BfdState.Up);
    expect(txIntervalUs(step(up, rx(BfdState.Up, { requiredMinRxUs: 300_000 })).session)).toBe(300_000);
    expect(txIntervalUs(step(up, rx(BfdState.Up, { requiredMinRxUs: 50_000 })).session)).toBe(100_000);
  });

  it('re-arms the transmit timer when the negotiated interval changes, and only then', () => {
    const up = sessionIn(BfdState.Up);
    expect(step(up, rx(BfdState.Up, { requiredMinRxUs: 300_000 })).actions).toContainEqual({ type: 'armTx', intervalUs: 300_000, minFactor: 0.75, maxFactor: 1 });
    expect(step(up, rx(BfdState.Up)).actions.find((a) => a.type === 'armTx')).toBeUndefined();
  });

  it('detection time = remote Detect Mult x max(our Required Min RX, their Desired Min TX)', () => {
    const up = sessionIn(BfdState.Up);
    const r = step(up, rx(BfdState.Up, { detectMult: 5, desiredMinTxUs: 250_000 }));
    expect(detectionTimeUs(r.session)).toBe(1_250_000);
    expect(r.actions).toContainEqual({ type: 'armDetection', timeoutUs: 1_250_000 });
    expect(detectionTimeUs(step(up, rx(BfdState.Up, { detectMult: 2, desiredMinTxUs: 10_000 })).session)).toBe(200_000);
  });

  it('stops periodic transmission when the peer asks for Required Min RX 0, resumes when it asks again', () => {
    const quiet = step(sessionIn(BfdState.Up), rx(BfdState.Up, { requiredMinRxUs: 0 }));
    expect(txIntervalUs(quiet.session)).toBe(0);
    expect(quiet.actions).toContainEqual({ type: 'stopTx' });
    expect(sent(step(quiet.session, { type: 'txTimer' }).actions)).toEqual([]);
    expect(step(quiet.session, rx(BfdState.Up)).actions).toContainEqual(expect.objectContaining({ type: 'armTx', intervalUs: 100_000 }));
  });

  it('stops periodic transmission while Demand mode is active on the remote system', () => {
    const r = step(sessionIn(BfdState.Up), rx(BfdState.Up, { demand: true }));
    expect(txIntervalUs(r.session)).toBe(0);
    expect(txIntervalUs(step(r.session, rx(BfdState.Up, { demand: false })).session)).toBe(100_000);
  });

  it('answers a Poll with a Final at once, never P and F together, even during its own Poll Sequence', () => {
    const polling = run(createSession(LOCAL, timers), rx(BfdState.Init)).session;
    expect(polling.polling).toBe(true);
    const r = step(polling, rx(BfdState.Up, { poll: true }));
    const finals = sent(r.actions).filter((p) => p.final);
    expect(finals).toHaveLength(1);
    expect(finals[0]!.poll).toBe(false);
    expect(r.session.polling).toBe(true);
  });

  it('when Up, a slower Desired Min TX waits for the Final before the real interval changes', () => {
    const up = sessionIn(BfdState.Up);
    const slower = step(up, { type: 'setTimers', timers: { ...timers, desiredMinTxUs: 500_000 } });
    expect(slower.session.desiredMinTxUs).toBe(500_000);
    expect(txIntervalUs(slower.session)).toBe(100_000);
    expect(sent(slower.actions)[0]).toMatchObject({ poll: true, desiredMinTxUs: 500_000 });
    const after = step(slower.session, rx(BfdState.Up, { final: true }));
    expect(txIntervalUs(after.session)).toBe(500_000);
    expect(after.actions).toContainEqual(expect.objectContaining({ type: 'armTx', intervalUs: 500_000 }));
  });

  it('when Up, a faster Required Min RX keeps the old Detection Time until the Final', () => {
    const up = step(sessionIn(BfdState.Up), { type: 'setTimers', timers: { ...timers, requiredMinRxUs: 300_000 } });
    const settled = step(up.session, rx(BfdState.Up, { final: true, desiredMinTxUs: 10_000 })).session;
    expect(detectionTimeUs(settled)).toBe(900_000);
    const faster = step(settled, { type: 'setTimers', timers: { ...timers, requiredMinRxUs: 20_000 } });
    expect(detectionTimeUs(step(faster.session, rx(BfdState.Up, { desiredMinTxUs: 10_000 })).session)).toBe(900_000);
    expect(detectionTimeUs(step(faster.session, rx(BfdState.Up, { final: true, desiredMinTxUs: 10_000 })).session)).toBe(60_000);
  });

  it('a change during a Poll Sequence runs a second Poll Sequence before the new values take effect', () => {
    const up = sessionIn(BfdState.Up);
    const first = step(up, { type: 'setTimers', timers: { ...timers, desiredMinTxUs: 200_000 } }).session;
    const second = step(first, { type: 'setTimers', timers: { ...timers, desiredMinTxUs: 400_000 } }).session;
    expect(second.pollPending).toBe(true);
    const afterFirstFinal = step(second, rx(BfdState.Up, { final: true }));
    expect(afterFirstFinal.session.polling).toBe(true);
    expect(txIntervalUs(afterFirstFinal.session)).toBe(100_000);
    expect(sent(afterFirstFinal.actions)[0]).toMatchObject({ poll: true, desiredMinTxUs: 400_000 });
    expect(txIntervalUs(step(afterFirstFinal.session, rx(BfdState.Up, { final: true })).session)).toBe(400_000);
  });

  it('going Down from Up returns to the 1 s rate at once (no Poll wait: the session is no longer Up)', () => {
    const r = step(sessionIn(BfdState.Up), { type: 'detectionTimer' });
    expect(txIntervalUs(r.session)).toBe(1_000_000);
    expect(sent(r.actions).at(-1)).toMatchObject({ desiredMinTxUs: 1_000_000 });
  });

  it('jitter: 0-25% shorter, and 10-25% shorter with Detect Mult 1', () => {
    expect(jitterFactors(3)).toEqual({ minFactor: 0.75, maxFactor: 1 });
    expect(jitterFactors(1)).toEqual({ minFactor: 0.75, maxFactor: 0.9 });
    const single = createSession(LOCAL, { ...timers, detectMult: 1 });
    expect(startActions(single)[1]).toEqual({ type: 'armTx', intervalUs: 1_000_000, minFactor: 0.75, maxFactor: 0.9 });
  });

  it('rejects invalid discriminators and timers with a message naming the field', () => {
    expect(() => createSession(0, timers)).toThrow(/discriminator/);
    expect(() => createSession(1, { ...timers, detectMult: 0 })).toThrow(/multiplier/);
    expect(() => createSession(1, { ...timers, requiredMinRxUs: 0 })).toThrow(/min rx/);
  });
});
