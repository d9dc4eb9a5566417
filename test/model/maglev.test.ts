// Consistent hashing properties. Interpretation of "every endpoint's share within 10%"
// (written down, as the issue asks): B buckets cannot be split more evenly than
// floor(B/N) / ceil(B/N) per endpoint, so that is what we assert for every N; it means
// every share is within one bucket (1/B = 0.4% of traffic at B = 256) of the ideal 1/N.
// The literal max/min <= 1.1 then holds exactly when floor(B/N) >= 10, i.e. N <= 25 at
// the default 256 buckets (asserted too); for N up to 100 it would need B >= 1024.
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { bucketShares, buildBucketTable, movedBuckets, rebalance, type Backend, type BucketTable, type IpAddress } from '../../src/model/index.js';

const SEED = 0x4b535431;
const B = 256;
const params = { bucketCount: B, seed: SEED };

const backend = (i: number, draining = false): Backend => ({ address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` as IpAddress, draining });
const distinctIds = (min: number, max: number) => fc.uniqueArray(fc.integer({ min: 1, max: 1 << 20 }), { minLength: min, maxLength: max });

function counts(t: BucketTable): number[] {
  return [...bucketShares(t).entries()].filter(([a]) => !t.backends.find((b) => b.address === a)!.draining).map(([, c]) => c);
}

function assertBalanced(t: BucketTable, active: number): void {
  const c = counts(t);
  expect(c).toHaveLength(active);
  expect(t.buckets).toHaveLength(B);
  for (const n of c) {
    expect(n).toBeGreaterThanOrEqual(Math.floor(B / active));
    expect(n).toBeLessThanOrEqual(Math.ceil(B / active));
  }
  if (Math.floor(B / active) >= 10) expect(Math.max(...c) / Math.min(...c)).toBeLessThanOrEqual(1.1);
}

describe('buildBucketTable (Maglev)', () => {
  test('depends on the set of backends, not their order', () => {
    fc.assert(
      fc.property(distinctIds(1, 60), fc.integer(), (ids, shuffleSeed) => {
        const bs = ids.map((i) => backend(i));
        const shuffled = [...bs].sort((a, b) => ((a.address.length * 31 + shuffleSeed) % 7) - ((b.address.length * 17 + shuffleSeed) % 5));
        expect(buildBucketTable(shuffled, params)).toEqual(buildBucketTable(bs, params));
        expect(buildBucketTable([...bs].reverse(), params)).toEqual(buildBucketTable(bs, params));
      }),
      { numRuns: 200 },
    );
  });

  test('every endpoint owns floor(B/N) or ceil(B/N) buckets, for N = 2..100', () => {
    for (let n = 2; n <= 100; n++) assertBalanced(buildBucketTable(Array.from({ length: n }, (_, i) => backend(i * 7919 + n)), params), n);
    fc.assert(fc.property(distinctIds(2, 100), (ids) => assertBalanced(buildBucketTable(ids.map((i) => backend(i)), params), ids.length)));
  });

  test('draining backends stay listed but own no bucket', () => {
    const t = buildBucketTable([backend(1), backend(2, true), backend(3)], params);
    expect(t.backends.map((b) => b.address)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    expect(new Set(t.buckets)).toEqual(new Set([0, 2]));
    expect(buildBucketTable([backend(2, true)], params).buckets).toHaveLength(0);
    expect(buildBucketTable([], params)).toMatchObject({ backends: [], buckets: { length: 0 }, generation: 0 });
  });

  // Plain Maglev is not minimally disruptive: B = 256 is small against N, so a change also
  // moves some buckets between surviving backends. Measured at B = 256, N = 2..100 (6,000
  // random removals, 4,000 additions): mean 1/N + 5.4%, worst 1/N + 17% (removal) and
  // 1/N + 28% (addition), at small N; near N = 100 the worst is about 1/N + 8%. The strict 1/N + 5% per change is met by `rebalance` (below), for
  // stored tables (issue 7); locally computed tables must be history-free, so they use
  // Maglev and we assert its measured envelope here (fixed seed: a statistical bound must
  // not make CI flaky).
  test('adding or removing one of N endpoints moves about 1/N of the buckets', () => {
    let excessSum = 0;
    let runs = 0;
    fc.assert(
      fc.property(distinctIds(3, 100), fc.nat(), (ids, pick) => {
        const bs = ids.map((i) => backend(i));
        const full = buildBucketTable(bs, params);
        const n = bs.length;
        const removed = buildBucketTable(bs.filter((_, i) => i !== pick % n), params);
        const rm = movedBuckets(full, removed) / B;
        expect(rm).toBeLessThanOrEqual(1 / n + 0.3);
        const fewer = buildBucketTable(bs.slice(1), params);
        const add = movedBuckets(fewer, full) / B;
        expect(add).toBeLessThanOrEqual(1 / n + 0.3);
        excessSum += rm - 1 / n + (add - 1 / n);
        runs += 2;
      }),
      { numRuns: 150, seed: 20261123 },
    );
    expect(excessSum / runs).toBeLessThanOrEqual(0.07);
  });
});

describe('rebalance', () => {
  const fromScratch = (ids: number[]) => buildBucketTable(ids.map((i) => backend(i)), params);

  test('removing or adding one of N endpoints moves at most ceil(B/N) buckets (<= 1/N + 5%) and keeps balance', () => {
    fc.assert(
      fc.property(distinctIds(2, 100), fc.nat(), fc.integer({ min: 1 << 21, max: 1 << 22 }), (ids, pick, extra) => {
        const start = fromScratch(ids);
        const n = ids.length;
        const left = ids.filter((_, i) => i !== pick % n);
        const afterRemove = rebalance(start, left.map((i) => backend(i)), params);
        assertBalanced(afterRemove, n - 1);
        expect(movedBuckets(start, afterRemove)).toBeLessThanOrEqual(Math.ceil(B / n));
        expect(movedBuckets(start, afterRemove) / B).toBeLessThanOrEqual(1 / n + 0.05);
        expect(afterRemove.generation).toBe(1);
        const afterAdd = rebalance(start, [...ids, extra].map((i) => backend(i)), params);
        assertBalanced(afterAdd, n + 1);
        expect(movedBuckets(start, afterAdd)).toBeLessThanOrEqual(Math.ceil(B / (n + 1)));
      }),
      { numRuns: 300 },
    );
  });

  test('buckets only move away from removed, draining or over-quota backends', () => {
    fc.assert(
      fc.property(distinctIds(2, 40), distinctIds(1, 40), (a, b) => {
        const start = fromScratch(a);
        const next = rebalance(start, b.map((i) => backend(i)), params);
        assertBalanced(next, b.length);
        const before = bucketShares(start);
        const after = bucketShares(next);
        // A surviving backend either keeps every bucket it had or only loses (never both gains and loses).
        start.buckets.forEach((bi, k) => {
          const was = start.backends[bi]!.address;
          const now = next.backends[next.buckets[k]!]!.address;
          if (was !== now && after.has(was)) expect(after.get(was)!).toBeLessThan(before.get(was)!);
        });
      }),
    );
  });

  test('a draining backend gives up its buckets but stays listed; no change keeps the generation', () => {
    const start = fromScratch([1, 2, 3, 4]);
    const same = rebalance(start, [1, 2, 3, 4].map((i) => backend(i)), params);
    expect(same.buckets).toEqual(start.buckets);
    expect(same.generation).toBe(0);
    const drained = rebalance(start, [backend(1), backend(2, true), backend(3), backend(4)], params);
    expect(drained.backends).toHaveLength(4);
    expect(bucketShares(drained).get('10.0.0.2')).toBe(0);
    expect(movedBuckets(start, drained)).toBe(bucketShares(start).get('10.0.0.2'));
    expect(drained.generation).toBe(1);
  });

  test('is deterministic and order-independent', () => {
    fc.assert(
      fc.property(distinctIds(2, 50), distinctIds(1, 50), (a, b) => {
        const start = fromScratch(a);
        const bs = b.map((i) => backend(i));
        expect(rebalance(start, [...bs].reverse(), params)).toEqual(rebalance(start, bs, params));
      }),
    );
  });
});

// Golden tables: the same bytes on every platform and in every process. Rewrite on
// purpose with UPDATE_GOLDEN=1 (and say why in the commit).
const GOLDEN = new URL('./fixtures/maglev-golden.json', import.meta.url);
const goldenInputs = [
  { seed: SEED, bucketCount: 256, addresses: ['198.51.100.130', '198.51.100.194'] },
  { seed: SEED, bucketCount: 256, addresses: Array.from({ length: 7 }, (_, i) => `198.51.100.${130 + i}`) },
  { seed: 1, bucketCount: 64, addresses: ['2001:db8:ff::1', '2001:db8:ff::2', '198.51.100.7'] },
  { seed: SEED, bucketCount: 17, addresses: Array.from({ length: 5 }, (_, i) => `10.0.0.${i + 1}`) },
];

function goldenTables(): unknown[] {
  return goldenInputs.map((g) => ({ ...g, buckets: Array.from(buildBucketTable(g.addresses.map((a) => ({ address: a as IpAddress, draining: false })), g).buckets) }));
}

test('tables match the golden fixture', () => {
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, `[\n${goldenTables().map((g) => JSON.stringify(g)).join(',\n')}\n]\n`);
  expect(goldenTables()).toEqual(JSON.parse(readFileSync(GOLDEN, 'utf8')));
});

test('a second node process computes the same tables', () => {
  const built = new URL('../../dist/src/model/maglev.js', import.meta.url);
  if (!existsSync(built)) {
    console.warn('skipped: dist/src/model/maglev.js missing (npm test builds it first)');
    return;
  }
  const script = `import { buildBucketTable } from ${JSON.stringify(built.href)};
const inputs = JSON.parse(process.argv[1]);
console.log(JSON.stringify(inputs.map((g) => Array.from(buildBucketTable(g.addresses.map((a) => ({ address: a, draining: false })), g).buckets))));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(goldenInputs)], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual(goldenTables().map((g) => (g as { buckets: number[] }).buckets));
});
