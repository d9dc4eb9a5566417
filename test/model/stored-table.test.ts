// Stored bucket tables (issue 7): the model starts every VIP's table from the table stored
// on its Service, so a change moves only the buckets that must move, every node (fresh or
// long-lived) computes the same table, and a bad annotation is reported and ignored.
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import {
  IncrementalModel,
  buildBucketTable,
  bucketShares,
  computeDesiredState,
  formatStoredTables,
  movedBuckets,
  parseStoredTables,
  toStoredTable,
  type BucketTable,
  type ClusterSnapshot,
  type DesiredState,
  type EndpointInput,
  type IpAddress,
  type ServiceInput,
  type StoredTable,
} from '../../src/model/index.js';
import { cluster, ep, settings, slice, tunnelService } from './helpers.js';

const B = 256;
const KEY = 'cmd.nu/tunnel-tables';
const VIP = '203.0.113.10' as IpAddress;
const S = settings();
const params = { bucketCount: B, seed: S.hashSeed };

const addr = (i: number) => `198.51.${100 + (i >> 8)}.${i & 255}`;
const eps = (ids: readonly number[], draining: readonly number[] = []): EndpointInput[] => [
  ...ids.map((i) => ep(addr(i), 'worker-1')),
  ...draining.map((i) => ep(addr(i), 'worker-1', { ready: false, serving: true, terminating: true })),
];
const web = (annotation?: string): ServiceInput => tunnelService('web', VIP, annotation === undefined ? {} : { annotations: { 'cmd.nu/tunnel': VIP, [KEY]: annotation } });
const snap = (svc: ServiceInput, endpoints: EndpointInput[]): ClusterSnapshot => ({ services: [svc], endpointSlices: [slice('web', endpoints, { name: 'web-1' })], nodes: cluster, localPods: [] });
const tableOf = (d: DesiredState, vip: IpAddress = VIP): BucketTable => d.vips.find((v) => v.vip === vip)!.table;
/** What the elected writer stores for these desired tables. */
const stored = (d: DesiredState): string => formatStoredTables(new Map(d.vips.filter((v) => v.table.buckets.length > 0).map((v) => [v.vip, toStoredTable(v.table)])));
const ids = (min: number, max: number) => fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { minLength: min, maxLength: max });

function activeCounts(t: BucketTable): number[] {
  const shares = bucketShares(t);
  return t.backends.filter((b) => !b.draining).map((b) => shares.get(b.address)!);
}

describe('stored table format', () => {
  test('round-trips, compactly: one VIP with 256 buckets is about 350 bytes plus its addresses', () => {
    const t = buildBucketTable(eps([1, 2, 3, 4]).map((e) => ({ address: e.address, draining: false })), params);
    const text = formatStoredTables(new Map([[VIP, toStoredTable(t)]]));
    const back = parseStoredTables(text);
    expect(back.errors).toEqual([]);
    expect(back.tables.get(VIP)).toEqual({ generation: 1, backends: t.backends.map((b) => b.address), buckets: t.buckets });
    const addresses = t.backends.reduce((n, b) => n + b.address.length + 3, 0);
    expect((JSON.parse(text) as { tables: Record<string, { buckets: string }> }).tables[VIP]!.buckets).toHaveLength(344);
    expect(text.length - addresses).toBeLessThanOrEqual(344 + 80); // the buckets plus the JSON around them
  });

  test('more than 256 backends use two bytes per bucket', () => {
    const backends = Array.from({ length: 300 }, (_, i) => addr(i + 1) as IpAddress);
    const table: StoredTable = { generation: 4, backends, buckets: Array.from({ length: 1024 }, (_, i) => (i * 7) % 300) };
    const back = parseStoredTables(formatStoredTables(new Map([[VIP, table]])));
    // Parsed into the smallest typed array for 300 backends: two bytes a bucket.
    expect(back).toEqual({ tables: new Map([[VIP, { ...table, buckets: Uint16Array.from(table.buckets) }]]), errors: [] });
  });

  test.each([
    ['not JSON', '{', /not valid JSON/],
    ['another version', '{"v":2,"tables":{}}', /"v" is 2; this agent reads version 1/],
    ['tables not an object', '{"v":1,"tables":[]}', /"tables" must be an object/],
    ['non-canonical VIP', '{"v":1,"tables":{"203.0.113.010":{"generation":1,"backends":["198.51.100.1"],"buckets":"AA=="}}}', /tables key "203.0.113.010"/],
    ['bad generation', '{"v":1,"tables":{"203.0.113.10":{"generation":-1,"backends":["198.51.100.1"],"buckets":"AA=="}}}', /generation must be a non-negative integer/],
    ['bad backend', '{"v":1,"tables":{"203.0.113.10":{"generation":1,"backends":["pod-a"],"buckets":"AA=="}}}', /backends\[0\]: "pod-a" is not a canonical IP/],
    ['repeated backend', '{"v":1,"tables":{"203.0.113.10":{"generation":1,"backends":["198.51.100.1","198.51.100.1"],"buckets":"AA=="}}}', /listed twice/],
    ['bucket out of range', '{"v":1,"tables":{"203.0.113.10":{"generation":1,"backends":["198.51.100.1"],"buckets":"AQ=="}}}', /bucket 0 points to backend 1, but there are 1/],
    ['not base64', '{"v":1,"tables":{"203.0.113.10":{"generation":1,"backends":["198.51.100.1"],"buckets":"!!"}}}', /buckets must be base64/],
    ['unknown field', '{"v":1,"tables":{"203.0.113.10":{"generation":1,"backends":["198.51.100.1"],"buckets":"AA==","seed":3}}}', /unknown field "seed"/],
  ])('rejects %s', (_name, text, message) => {
    const r = parseStoredTables(text);
    expect(r.tables.size).toBe(0);
    expect(r.errors.join('\n')).toMatch(message);
  });
});

describe('the model with stored tables', () => {
  test('without a stored table: Maglev, generation 0', () => {
    const d = computeDesiredState(S, snap(web(), eps([1, 2, 3])), 'tunnel-1');
    const t = tableOf(d);
    expect(t.generation).toBe(0);
    expect(t.buckets).toEqual(buildBucketTable(t.backends, params).buckets);
  });

  test('a balanced stored table for the current backends is used as is, with its generation', () => {
    // Not what Maglev would compute: only storing can explain this table (86/85/85 in blocks).
    const backends = [1, 2, 3].map((i) => addr(i) as IpAddress);
    const mine: StoredTable = { generation: 7, backends, buckets: Array.from({ length: B }, (_, i) => (i < 86 ? 0 : i < 171 ? 1 : 2)) };
    const d = computeDesiredState(S, snap(web(formatStoredTables(new Map([[VIP, mine]]))), eps([1, 2, 3])), 'tunnel-1');
    expect(Array.from(tableOf(d).buckets)).toEqual(mine.buckets);
    expect(tableOf(d).generation).toBe(7);
    expect(d.problems).toEqual([]);
  });

  test('an endpoint that drained and came back gets its share again (issue 15), moving only what it takes', () => {
    // The stored table after a drain lists the endpoint with no bucket; when it is ready
    // again the backend list is the same, so only the balance check can tell.
    const first = computeDesiredState(S, snap(web(), eps([1, 2, 3, 4])), 'tunnel-1');
    const drained = computeDesiredState(S, snap(web(stored(first)), eps([2, 3, 4], [1])), 'tunnel-1');
    expect(bucketShares(tableOf(drained)).get(addr(1))).toBe(0);
    const back = tableOf(computeDesiredState(S, snap(web(stored(drained)), eps([1, 2, 3, 4])), 'tunnel-1'));
    expect(activeCounts(back)).toEqual([64, 64, 64, 64]);
    expect(movedBuckets(tableOf(drained), back)).toBe(64);
    expect(back.generation).toBe(tableOf(drained).generation + 1);
    // An unbalanced table stored by anyone (an older agent, a hand edit) is repaired the same way.
    const backends = [1, 2, 3].map((i) => addr(i) as IpAddress);
    const skewed: StoredTable = { generation: 7, backends, buckets: Array.from({ length: B }, (_, i) => (i < 100 ? 0 : i < 180 ? 1 : 2)) };
    const fixed = tableOf(computeDesiredState(S, snap(web(formatStoredTables(new Map([[VIP, skewed]]))), eps([1, 2, 3])), 'tunnel-1'));
    expect(activeCounts(fixed)).toEqual([86, 85, 85]);
    expect(fixed.buckets.filter((b, i) => b !== skewed.buckets[i])).toHaveLength(14); // 100 -> 86: only the surplus moves
    expect(fixed.generation).toBe(8);
  });

  test('endpoint added or removed: moves at most ceil(B/N) buckets and <= 1/N + 5%, keeps balance, generation + 1 (N = 2..100)', () => {
    fc.assert(
      fc.property(ids(2, 100), fc.integer({ min: 1001, max: 2000 }), fc.nat(), (start, extra, pick) => {
        const n = start.length;
        const first = computeDesiredState(S, snap(web(), eps(start)), 'tunnel-1');
        const annotation = stored(first);
        const before = tableOf(computeDesiredState(S, snap(web(annotation), eps(start)), 'tunnel-1'));
        expect(before.generation).toBe(1);
        const removed = start[pick % n]!;
        for (const next of [start.filter((i) => i !== removed), [...start, extra]]) {
          const after = tableOf(computeDesiredState(S, snap(web(annotation), eps(next)), 'tunnel-1'));
          const moved = movedBuckets(before, after);
          expect(moved).toBeGreaterThan(0);
          expect(moved).toBeLessThanOrEqual(Math.ceil(B / Math.min(n, next.length)));
          expect(moved / B).toBeLessThanOrEqual(1 / n + 0.05);
          expect(after.generation).toBe(2);
          const c = activeCounts(after);
          expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(1);
        }
      }),
      { numRuns: 60 },
    );
  });

  test('a draining endpoint keeps its place in backends, loses its buckets, and only they move', () => {
    const first = computeDesiredState(S, snap(web(), eps([1, 2, 3, 4])), 'tunnel-1');
    const before = tableOf(first);
    const after = tableOf(computeDesiredState(S, snap(web(stored(first)), eps([1, 2, 4], [3])), 'tunnel-1'));
    expect(after.backends.map((b) => [b.address, b.draining])).toEqual([1, 2, 3, 4].map((i) => [addr(i), i === 3]));
    expect(bucketShares(after).get(addr(3))).toBe(0);
    expect(movedBuckets(before, after)).toBe(bucketShares(before).get(addr(3)));
    expect(after.generation).toBe(2);
  });

  test('a bad annotation is a Problem naming the Service and field, and the table is computed instead', () => {
    const bad = '{"v":1,"tables":{"203.0.113.10":{"generation":1,"backends":["198.51.100.1"],"buckets":"Ag=="}}}';
    const d = computeDesiredState(S, snap(web(bad), eps([1, 2, 3])), 'tunnel-1');
    expect(d.problems).toEqual([
      expect.objectContaining({ ref: expect.objectContaining({ kind: 'Service', namespace: 'default', name: 'web' }), reason: 'InvalidStoredTable', message: expect.stringContaining(`metadata.annotations["${KEY}"]`) }),
    ]);
    expect(tableOf(d)).toEqual(tableOf(computeDesiredState(S, snap(web(), eps([1, 2, 3])), 'tunnel-1')));
    // Another VIP's valid entry in the same annotation is still used.
    const two = tunnelService('web', `${VIP},203.0.113.11`, { annotations: { 'cmd.nu/tunnel': `${VIP},203.0.113.11` } });
    const valid = stored(computeDesiredState(S, snap(two, eps([1, 2, 3])), 'tunnel-1'));
    const mixed = JSON.parse(valid) as { tables: Record<string, unknown> };
    mixed.tables[VIP] = 'garbage';
    const d2 = computeDesiredState(S, snap({ ...two, annotations: { ...two.annotations, [KEY]: JSON.stringify(mixed) } }, eps([1, 2, 3])), 'tunnel-1');
    expect(tableOf(d2, '203.0.113.11' as IpAddress).generation).toBe(1);
    expect(tableOf(d2).generation).toBe(0);
    expect(d2.problems.map((p) => p.reason)).toEqual(['InvalidStoredTable']);
  });

  test('another bucket count (configuration changed): a fresh table, generation + 1', () => {
    const s512 = settings({ buckets: 512 });
    const annotation = stored(computeDesiredState(S, snap(web(), eps([1, 2, 3])), 'tunnel-1'));
    const t = tableOf(computeDesiredState(s512, snap(web(annotation), eps([1, 2, 3])), 'tunnel-1'));
    expect(t.buckets).toHaveLength(512);
    expect(t.generation).toBe(2);
  });

  test('ignored when switched off, and in mpls mode (each node hashes its own endpoints)', () => {
    const backends = [1, 2].map((i) => addr(i) as IpAddress);
    const odd = formatStoredTables(new Map([[VIP, { generation: 5, backends, buckets: new Array<number>(B).fill(1) }]]));
    const off = new IncrementalModel(S, 'tunnel-1', { storedTables: false }).replaceAll(snap(web(odd), eps([1, 2]))).desiredState();
    expect(tableOf(off).generation).toBe(0);
    const mpls = computeDesiredState(settings({ encapsulation: { mode: 'mpls' } }), snap(web(odd), eps([1, 2])), 'worker-1');
    expect(tableOf(mpls).generation).toBe(0);
  });
});

/** A sequence of endpoint changes, each followed by the leader storing the result. */
const changes = fc.array(fc.tuple(fc.constantFrom('add', 'remove', 'drain'), fc.integer({ min: 1, max: 200 })), { minLength: 1, maxLength: 12 });

describe('every node computes the same table', () => {
  test('two models fed the same inputs in different orders give identical tables', () => {
    const a = tunnelService('a', '203.0.113.20');
    const b = tunnelService('b', '203.0.113.21');
    const first = computeDesiredState(S, { services: [a, b], endpointSlices: [slice('a', eps([1, 2, 3]), { name: 'a-1' }), slice('b', eps([4, 5]), { name: 'b-1' })], nodes: cluster, localPods: [] }, 'tunnel-1');
    const annotation = stored(first);
    const withTables = (s: ServiceInput) => ({ ...s, annotations: { ...s.annotations, [KEY]: annotation } });
    const slices = [slice('a', eps([1, 3, 6]), { name: 'a-1' }), slice('a', eps([7]), { name: 'a-2' }), slice('b', eps([4, 5, 8]), { name: 'b-1' })];
    const one = new IncrementalModel(S, 'tunnel-1');
    for (const s of [withTables(a), withTables(b)]) one.setService(s);
    for (const s of slices) one.setEndpointSlice(s);
    const two = new IncrementalModel(S, 'tunnel-2');
    two.setEndpointSlice(slices[2]!);
    two.desiredState(); // an intermediate result must not change the final one
    two.setService(withTables(b));
    two.setEndpointSlice(slices[1]!);
    two.setService(withTables(a));
    two.setEndpointSlice(slices[0]!);
    const tables = (m: IncrementalModel) => m.desiredState().vips.map((v) => v.table);
    expect(tables(two)).toEqual(tables(one));
    expect(tables(one).map((t) => t.generation)).toEqual([2, 2]);
  });

  test('a restarted node, and a node whose watch lags, reproduce the table of a node that lived through every change', () => {
    fc.assert(
      fc.property(ids(2, 12), changes, (start, steps) => {
        let ready = [...start];
        let draining: number[] = [];
        const living = new IncrementalModel(S, 'tunnel-1');
        let annotation: string | undefined;
        living.replaceAll(snap(web(), eps(ready)));
        let previous = tableOf(living.desiredState());
        for (const [op, id] of steps) {
          if (op === 'add' && !ready.includes(id) && !draining.includes(id)) ready.push(id);
          if (op === 'remove') [ready, draining] = [ready.filter((i) => i !== id), draining.filter((i) => i !== id)];
          if (op === 'drain' && ready.includes(id)) [ready, draining] = [ready.filter((i) => i !== id), [...draining, id]];
          living.setEndpointSlice(slice('web', eps(ready, draining), { name: 'web-1' }));
          const t = tableOf(living.desiredState());
          if (annotation !== undefined && ready.length > 0 && previous.buckets.length > 0) {
            const n = previous.backends.filter((b) => !b.draining).length;
            expect(movedBuckets(previous, t)).toBeLessThanOrEqual(Math.ceil(B / Math.min(n, ready.length)));
          }
          // The leader stores what changed; the watch brings it back as a Service update.
          const d = living.desiredState();
          if (tableOf(d).buckets.length > 0) {
            annotation = stored(d);
            living.setService(web(annotation));
          }
          previous = tableOf(living.desiredState());
          // A node whose watch lagged (old annotation, new endpoints) already had the table now stored.
          expect(previous.buckets).toEqual(t.buckets);
          if (annotation !== undefined && t.generation > 0) expect(previous.generation).toBe(t.generation);
        }
        const fresh = computeDesiredState(S, snap(web(annotation), eps(ready, draining)), 'tunnel-2');
        expect(tableOf(fresh)).toEqual(tableOf(living.desiredState()));
      }),
      { numRuns: 80 },
    );
  });
});
