import { expect, test } from '@jest/globals';
import { murmur3 } from '../../src/model/index.js';

// Published MurmurHash3_x86_32 reference values: our implementation must match them
// bit for bit on every platform, or tunnel nodes would disagree about bucket tables.
test.each([
  ['', 0, 0],
  ['', 1, 0x514e28b7],
  ['', 0xffffffff, 0x81f16f39],
  ['hello', 0, 0x248bfa47],
  ['Hello, world!', 1234, 0xfaf6cdb3],
  ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
  ['aaaa', 0x9747b28c, 0x5a97808a],
  ['abc', 0, 0xb3dd93fa],
])('murmur3(%j, %d) = %d', (text, seed, expected) => {
  expect(murmur3(text, seed)).toBe(expected);
});
