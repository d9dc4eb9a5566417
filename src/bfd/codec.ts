// BFD Control packets (RFC 5880 section 4.1): the 24-byte mandatory section and the
// reception checks of section 6.8.6 that need no session. Decoding never throws: a
// packet from the network is parsed once into a precise type or rejected with a reason
// that becomes a counter label.

/** RFC 5880 4.1 "Sta": the numeric values are on the wire and in the state metric. */
export const BfdState = { AdminDown: 0, Down: 1, Init: 2, Up: 3 } as const;
export type BfdState = (typeof BfdState)[keyof typeof BfdState];
export const stateNames: Readonly<Record<BfdState, BfdStateName>> = { 0: 'AdminDown', 1: 'Down', 2: 'Init', 3: 'Up' };
export type BfdStateName = 'AdminDown' | 'Down' | 'Init' | 'Up';

/** RFC 5880 4.1 "Diag". */
export const BfdDiag = {
  None: 0,
  ControlDetectionTimeExpired: 1,
  EchoFunctionFailed: 2,
  NeighborSignaledSessionDown: 3,
  ForwardingPlaneReset: 4,
  PathDown: 5,
  ConcatenatedPathDown: 6,
  AdministrativelyDown: 7,
  ReverseConcatenatedPathDown: 8,
} as const;
export type BfdDiag = number;
const diagNames = [
  'none', 'control-detection-time-expired', 'echo-function-failed', 'neighbor-signaled-session-down',
  'forwarding-plane-reset', 'path-down', 'concatenated-path-down', 'administratively-down',
  'reverse-concatenated-path-down',
];
export function diagName(diag: number): string {
  return diagNames[diag] ?? `reserved-${diag}`;
}

export interface ControlPacket {
  readonly version: 1;
  readonly diag: BfdDiag;
  readonly state: BfdState;
  readonly poll: boolean;
  readonly final: boolean;
  readonly controlPlaneIndependent: boolean;
  readonly authPresent: boolean;
  readonly demand: boolean;
  readonly multipoint: boolean;
  readonly detectMult: number;
  readonly myDiscriminator: number;
  readonly yourDiscriminator: number;
  /** Microseconds, as on the wire. */
  readonly desiredMinTxUs: number;
  readonly requiredMinRxUs: number;
  readonly requiredMinEchoRxUs: number;
}

/** Why a received packet was dropped; each value is a `kst_bfd_dropped_total{reason}` label. */
export type DropReason =
  | 'truncated'
  | 'bad_version'
  | 'bad_length'
  | 'zero_detect_mult'
  | 'multipoint'
  | 'zero_my_discriminator'
  | 'zero_your_discriminator_not_down'
  | 'auth_not_configured'
  | 'unknown_session'
  | 'peer_mismatch';

export type DecodeResult = { readonly ok: true; readonly packet: ControlPacket } | { readonly ok: false; readonly reason: DropReason };

export const MANDATORY_LENGTH = 24;
const MAX_U32 = 0xffffffff;

/**
 * Parses and validates one UDP payload. Implements the session-independent checks of
 * RFC 5880 6.8.6 in its order. Authentication is not supported, so per 6.8.6 ("A bit set
 * and bfd.AuthType is zero: discard") every packet with the A bit is rejected.
 */
export function decodeControlPacket(buf: Uint8Array): DecodeResult {
  if (buf.length < MANDATORY_LENGTH) return { ok: false, reason: 'truncated' };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const b0 = view.getUint8(0);
  const b1 = view.getUint8(1);
  const version = b0 >>> 5;
  if (version !== 1) return { ok: false, reason: 'bad_version' };
  const authPresent = (b1 & 0x04) !== 0;
  const length = view.getUint8(3);
  // Length covers the whole packet: >= 24, >= 26 with an auth section, never beyond the payload.
  if (length < MANDATORY_LENGTH || (authPresent && length < MANDATORY_LENGTH + 2) || length > buf.length) {
    return { ok: false, reason: 'bad_length' };
  }
  const detectMult = view.getUint8(2);
  if (detectMult === 0) return { ok: false, reason: 'zero_detect_mult' };
  const multipoint = (b1 & 0x01) !== 0;
  if (multipoint) return { ok: false, reason: 'multipoint' };
  const myDiscriminator = view.getUint32(4);
  if (myDiscriminator === 0) return { ok: false, reason: 'zero_my_discriminator' };
  const yourDiscriminator = view.getUint32(8);
  const state = (b1 >>> 6) as BfdState;
  if (yourDiscriminator === 0 && state !== BfdState.Down && state !== BfdState.AdminDown) {
    return { ok: false, reason: 'zero_your_discriminator_not_down' };
  }
  if (authPresent) return { ok: false, reason: 'auth_not_configured' };
  return {
    ok: true,
    packet: {
      version: 1,
      diag: b0 & 0x1f,
      state,
      poll: (b1 & 0x20) !== 0,
      final: (b1 & 0x10) !== 0,
      controlPlaneIndependent: (b1 & 0x08) !== 0,
      authPresent,
      demand: (b1 & 0x02) !== 0,
      multipoint,
      detectMult,
      myDiscriminator,
      yourDiscriminator,
      desiredMinTxUs: view.getUint32(12),
      requiredMinRxUs: view.getUint32(16),
      requiredMinEchoRxUs: view.getUint32(20),
    },
  };
}

/** Serialises a packet we send (never with an auth section). Throws only on a programming error. */
export function encodeControlPacket(p: Omit<ControlPacket, 'version' | 'authPresent' | 'multipoint'>): Buffer {
  if (p.poll && p.final) throw new Error('BFD: a Control packet must not carry both Poll and Final (RFC 5880 6.8.7)');
  for (const [field, value, max] of [
    ['diag', p.diag, 31], ['detectMult', p.detectMult, 255], ['myDiscriminator', p.myDiscriminator, MAX_U32],
    ['yourDiscriminator', p.yourDiscriminator, MAX_U32], ['desiredMinTxUs', p.desiredMinTxUs, MAX_U32],
    ['requiredMinRxUs', p.requiredMinRxUs, MAX_U32], ['requiredMinEchoRxUs', p.requiredMinEchoRxUs, MAX_U32],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > max) throw new Error(`BFD: ${field} ${value} out of range 0..${max}`);
  }
  const buf = Buffer.alloc(MANDATORY_LENGTH);
  buf.writeUInt8((1 << 5) | p.diag, 0);
  buf.writeUInt8(
    (p.state << 6) | (p.poll ? 0x20 : 0) | (p.final ? 0x10 : 0) | (p.controlPlaneIndependent ? 0x08 : 0) | (p.demand ? 0x02 : 0),
    1,
  );
  buf.writeUInt8(p.detectMult, 2);
  buf.writeUInt8(MANDATORY_LENGTH, 3);
  buf.writeUInt32BE(p.myDiscriminator, 4);
  buf.writeUInt32BE(p.yourDiscriminator, 8);
  buf.writeUInt32BE(p.desiredMinTxUs, 12);
  buf.writeUInt32BE(p.requiredMinRxUs, 16);
  buf.writeUInt32BE(p.requiredMinEchoRxUs, 20);
  return buf;
}
