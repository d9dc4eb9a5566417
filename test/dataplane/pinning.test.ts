// Pure: which table generation a VIP's routes go into (pinning.ts), no kernel.
import { describe, expect, test } from '@jest/globals';
import { pinGenerations } from '../../src/dataplane/pinning.js';
import { PARITY_STRIDE } from '../../src/dataplane/layout.js';
import type { RouteSpec, VipRoutes } from '../../src/dataplane/state.js';

const BASE = 1000;
const B = 4;
const VIP = '203.0.113.10';

/** Parity-0 routes of a table given as one endpoint letter per bucket ("aabb"). */
function fresh(table: string): VipRoutes {
  return new Map([...table].map((e, i): [number, RouteSpec] => [BASE + i, { family: 4, table: BASE + i, dst: VIP, nexthop: `dev ${e}` }]));
}

/** "p0=aabb p1=abab" view of a result, for readable expectations. */
function view(routes: VipRoutes): string {
  const at = (p: number): string => Array.from({ length: B }, (_, i) => routes.get(BASE + p * PARITY_STRIDE + i)?.nexthop.slice(4) ?? '-').join('');
  return `p0=${at(0)} p1=${at(1)}`;
}

describe('pinGenerations', () => {
  test('a new VIP goes into parity 0; the same table again returns the very same object', () => {
    const first = pinGenerations(fresh('aabb'), undefined, 0, BASE, B);
    expect(first.parity).toBe(0);
    expect(view(first.routes)).toBe('p0=aabb p1=----');
    const again = pinGenerations(fresh('aabb'), first.routes, 0, BASE, B);
    expect(again.routes).toBe(first.routes);
    expect(again.parity).toBe(0);
  });

  test('a change goes into the other parity and flips; the old generation stays; the next change overwrites the oldest', () => {
    const g0 = pinGenerations(fresh('aabb'), undefined, 0, BASE, B);
    const g1 = pinGenerations(fresh('aabc'), g0.routes, g0.parity, BASE, B);
    expect(g1.parity).toBe(1);
    expect(view(g1.routes)).toBe('p0=aabb p1=aabc');
    const g2 = pinGenerations(fresh('cabc'), g1.routes, g1.parity, BASE, B);
    expect(g2.parity).toBe(0);
    expect(view(g2.routes)).toBe('p0=cabc p1=aabc');
    // Unchanged routes in the overwritten parity keep their nexthop (no kernel operation).
    expect(g2.routes.get(BASE + 1)).toEqual(g0.routes.get(BASE + 1));
  });

  test('routes to an endpoint that is gone are rewritten in place; a remaining (or draining) one forces a new generation', () => {
    const live = (letters: string): Set<string> => new Set([...letters].map((e) => `dev ${e}`));
    const g0 = pinGenerations(fresh('aabb'), undefined, 0, BASE, B);
    const g1 = pinGenerations(fresh('abab'), g0.routes, 0, BASE, B);
    expect(view(g1.routes)).toBe('p0=aabb p1=abab');
    // b is gone and c replaces it: b's buckets change in place, the older generation in
    // parity 0 stays for the flows pinned to it.
    const replaced = pinGenerations(fresh('acac'), g1.routes, 1, BASE, B, live('ac'));
    expect(replaced.parity).toBe(1);
    expect(view(replaced.routes)).toBe('p0=aabb p1=acac');
    // b still serves (draining, no buckets): its flows must keep reaching it.
    const drained = pinGenerations(fresh('acac'), g1.routes, 1, BASE, B, live('abc'));
    expect(drained.parity).toBe(0);
    expect(view(drained.routes)).toBe('p0=acac p1=abab');
    // A bucket moving away from a live endpoint (a -> c) forces a generation even when
    // another moves away from a dead one (b -> c).
    const mixed = pinGenerations(fresh('accb'), g1.routes, 1, BASE, B, live('ac'));
    expect(mixed.parity).toBe(0);
  });

  test('missing routes (drift) are filled in place without a flip; no routes at all clears the VIP', () => {
    const g0 = pinGenerations(fresh('aabb'), undefined, 0, BASE, B);
    const drifted = new Map(g0.routes);
    drifted.delete(BASE + 2);
    const repaired = pinGenerations(fresh('aabb'), drifted, 0, BASE, B);
    expect(repaired.parity).toBe(0);
    expect(view(repaired.routes)).toBe('p0=aabb p1=----');
    expect(pinGenerations(new Map(), g0.routes, 1, BASE, B)).toEqual({ routes: new Map(), parity: 0 });
  });

  test('a restart that finds the VIP active on parity 1 keeps it there', () => {
    const g0 = pinGenerations(fresh('aabb'), undefined, 0, BASE, B);
    const g1 = pinGenerations(fresh('abab'), g0.routes, 0, BASE, B);
    const adopted = pinGenerations(fresh('abab'), new Map(g1.routes), 1, BASE, B);
    expect(adopted.parity).toBe(1);
    expect(view(adopted.routes)).toBe(view(g1.routes));
  });

  test('after B shrinks, routes above it are dropped from both parities', () => {
    const wide = pinGenerations(fresh('aabb'), undefined, 0, BASE, B);
    const flipped = pinGenerations(fresh('abab'), wide.routes, 0, BASE, B);
    const narrow = pinGenerations(fresh('ab'), flipped.routes, flipped.parity, BASE, 2);
    expect([...narrow.routes.keys()].every((t) => (t - BASE) % PARITY_STRIDE < 2)).toBe(true);
  });
});
