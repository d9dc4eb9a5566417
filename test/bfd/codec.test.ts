import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { BfdState, decodeControlPacket, encodeControlPacket, type ControlPacket } from '../../src/bfd/index.js';

const valid: Omit<ControlPacket, 'version' | 'authPresent' | 'multipoint'> = {
  diag: 0,
  state: BfdState.Up,
  poll: false,
  final: false,
  controlPlaneIndependent: false,
  demand: false,
  detectMult: 3,
  myDiscriminator: 0x11223344,
  yourDiscriminator: 0x55667788,
  desiredMinTxUs: 100000,
  requiredMinRxUs: 200000,
  requiredMinEchoRxUs: 0,
};

function withByte(buf: Buffer, offset: number, value: number): Buffer {
  const copy = Buffer.from(buf);
  copy[offset] = value;
  return copy;
}

describe('BFD control packet codec (RFC 5880 4.1, 6.8.6)', () => {
  it('round-trips every field and puts them at the RFC offsets', () => {
    const buf = encodeControlPacket({ ...valid, poll: true, diag: 7 });
    expect(buf.toString('hex')).toBe('27e0031811223344556677880001' + '86a0' + '00030d40' + '00000000');
    const r = decodeControlPacket(buf);
    expect(r).toEqual({ ok: true, packet: { ...valid, poll: true, diag: 7, version: 1, authPresent: false, multipoint: false } });
  });

  it('refuses to encode Poll and Final together and out-of-range fields', () => {
    expect(() => encodeControlPacket({ ...valid, poll: true, final: true })).toThrow(/Poll and Final/);
    expect(() => encodeControlPacket({ ...valid, detectMult: 256 })).toThrow(/detectMult/);
  });

  const good = encodeControlPacket(valid);
  it.each([
    ['empty', Buffer.alloc(0), 'truncated'],
    ['truncated to 23 bytes', good.subarray(0, 23), 'truncated'],
    ['version 0', withByte(good, 0, 0x00), 'bad_version'],
    ['version 2', withByte(good, 0, 0x40), 'bad_version'],
    ['length field 20', withByte(good, 3, 20), 'bad_length'],
    ['length field beyond the payload', withByte(good, 3, 25), 'bad_length'],
    ['A bit with length 24', withByte(good, 1, 0xc4), 'bad_length'],
    ['detect mult 0', withByte(good, 2, 0), 'zero_detect_mult'],
    ['multipoint bit', withByte(good, 1, 0xc1), 'multipoint'],
    ['my discriminator 0', Buffer.concat([good.subarray(0, 4), Buffer.alloc(4), good.subarray(8)]), 'zero_my_discriminator'],
    ['your discriminator 0 in state Up', Buffer.concat([good.subarray(0, 8), Buffer.alloc(4), good.subarray(12)]), 'zero_your_discriminator_not_down'],
    ['your discriminator 0 in state Init', withByte(Buffer.concat([good.subarray(0, 8), Buffer.alloc(4), good.subarray(12)]), 1, 0x80), 'zero_your_discriminator_not_down'],
  ])('rejects %s', (_name, buf, reason) => {
    expect(decodeControlPacket(buf)).toEqual({ ok: false, reason });
  });

  it('rejects authenticated packets (no authentication configured) but accepts zero Your Discriminator when Down', () => {
    const auth = Buffer.concat([withByte(withByte(good, 1, 0xc4), 3, 28), Buffer.from([1, 4, 0, 0])]);
    expect(decodeControlPacket(auth)).toEqual({ ok: false, reason: 'auth_not_configured' });
    const down = encodeControlPacket({ ...valid, state: BfdState.Down, yourDiscriminator: 0 });
    expect(decodeControlPacket(down).ok).toBe(true);
    const adminDown = encodeControlPacket({ ...valid, state: BfdState.AdminDown, yourDiscriminator: 0 });
    expect(decodeControlPacket(adminDown).ok).toBe(true);
  });

  it('accepts a longer UDP payload than Length (trailing bytes ignored)', () => {
    const r = decodeControlPacket(Buffer.concat([good, Buffer.alloc(100, 0xff)]));
    expect(r.ok && r.packet.myDiscriminator).toBe(0x11223344);
  });

  it('fuzz: random bytes never throw, and whatever is accepted satisfies every RFC 5880 6.8.6 rule', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), (bytes) => {
        const r = decodeControlPacket(bytes);
        if (!r.ok) return true;
        const p = r.packet;
        return bytes[0]! >>> 5 === 1 && bytes[3]! >= 24 && bytes[3]! <= bytes.length && p.detectMult > 0 && !p.multipoint &&
          !p.authPresent && p.myDiscriminator !== 0 && (p.yourDiscriminator !== 0 || p.state === BfdState.Down || p.state === BfdState.AdminDown);
      }),
      { numRuns: 20000 },
    );
  });

  it('fuzz: mutations of a valid packet are rejected or decode to exactly their bytes, never throw', () => {
    fc.assert(
      fc.property(fc.nat(23), fc.nat(255), fc.integer({ min: 0, max: 60 }), (offset, value, length) => {
        const mutated = withByte(good, offset, value);
        const sized = length <= 24 ? mutated.subarray(0, length) : Buffer.concat([mutated, Buffer.alloc(length - 24)]);
        const r = decodeControlPacket(sized);
        if (!r.ok) return true;
        // Accepted: the fields are exactly the bytes (nothing invented or defaulted).
        return r.packet.state === sized[1]! >>> 6 && r.packet.diag === (sized[0]! & 0x1f) && r.packet.detectMult === sized[2] &&
          r.packet.myDiscriminator === sized.readUInt32BE(4) && r.packet.yourDiscriminator === sized.readUInt32BE(8) &&
          r.packet.requiredMinRxUs === sized.readUInt32BE(16);
      }),
      { numRuns: 20000 },
    );
  });
});
