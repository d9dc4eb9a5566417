// MurmurHash3 x86 32-bit over the UTF-8 bytes of a string. Implemented here (not an npm
// dependency, not node:crypto) so that every node computes bit-identical bucket tables:
// only 32-bit integer arithmetic (Math.imul, >>> 0), no platform-dependent behaviour.
// Reference vectors (test/model/hash.test.ts): murmur3("", 0) = 0, murmur3("hello", 0) = 0x248bfa47.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

const encoder = new TextEncoder();

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** murmur3 of a string: ASCII text (addresses) is hashed straight from its char codes. */
export function murmur3(text: string, seed: number): number {
  const len = text.length;
  for (let i = 0; i < len; i++) if (text.charCodeAt(i) > 0x7f) return murmur3Bytes(encoder.encode(text), seed);
  const blocks = len & ~3;
  let h = seed >>> 0;
  for (let i = 0; i < blocks; i += 4) {
    const k = (text.charCodeAt(i) | (text.charCodeAt(i + 1) << 8) | (text.charCodeAt(i + 2) << 16) | (text.charCodeAt(i + 3) << 24)) >>> 0;
    h = mixBlock(h, k);
  }
  let k = 0;
  const rest = len & 3;
  if (rest === 3) k ^= text.charCodeAt(blocks + 2) << 16;
  if (rest >= 2) k ^= text.charCodeAt(blocks + 1) << 8;
  if (rest >= 1) k ^= text.charCodeAt(blocks);
  return finish(h, k, rest, len);
}

/** murmur3 of bytes (the reference definition: UTF-8 bytes of the text). */
export function murmur3Bytes(data: Uint8Array, seed: number): number {
  const len = data.length;
  const blocks = len & ~3;
  let h = seed >>> 0;
  for (let i = 0; i < blocks; i += 4) h = mixBlock(h, (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) >>> 0);
  let k = 0;
  const rest = len & 3;
  if (rest === 3) k ^= data[blocks + 2]! << 16;
  if (rest >= 2) k ^= data[blocks + 1]! << 8;
  if (rest >= 1) k ^= data[blocks]!;
  return finish(h, k, rest, len);
}

function mixBlock(h: number, block: number): number {
  let k = Math.imul(block, C1);
  k = rotl(k, 15);
  k = Math.imul(k, C2);
  h ^= k;
  h = rotl(h, 13);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number, tail: number, rest: number, len: number): number {
  if (rest > 0) {
    let k = Math.imul(tail, C1);
    k = rotl(k, 15);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
