// TextPool: one copy of each repeated text, bounded.
import { describe, expect, it } from '@jest/globals';
import { TextPool } from '../../src/system/index.js';

describe('TextPool', () => {
  // (Which copy comes back cannot be seen from JavaScript, where equal strings are the
  // same value; the heap figures in docs/troubleshooting.md show it.)
  it('keeps one entry per text, and forgets everything at its bound', () => {
    const pool = new TextPool(3);
    const a = pool.intern(['198.51', '100.7'].join('.'));
    expect(pool.intern(['198.51', '100.7'].join('.'))).toBe(a);
    expect(pool.size).toBe(1);
    pool.intern('x');
    pool.intern('y');
    expect(pool.size).toBe(3);
    pool.intern('z'); // full: starts again with z alone
    expect(pool.size).toBe(1);
    expect(pool.intern('198.51.100.7')).toBe('198.51.100.7');
    expect(pool.size).toBe(2);
  });
});
