// The streamed route readback (route-readback.ts) and the packed per-VIP routes
// (vip-routes.ts) against the one-string parse they replace, on `ip -json` text cut into
// chunks at every possible place.
import { describe, expect, test } from '@jest/globals';
import { parseRoutes, toRouteMap } from '../../src/dataplane/iproute.js';
import { JsonArraySplitter, RouteReadback } from '../../src/dataplane/route-readback.js';
import { PackedVipRoutes, VipRoutesBuilder, nexthopAt } from '../../src/dataplane/vip-routes.js';
import type { VipRoutes } from '../../src/dataplane/state.js';

const BASE = 0x4b5300;
const NH = 0x4b600000;
const canonical = new Map([
  [NH, 'dev kst-vxlan encap ip id 4242 dst 198.51.100.7'],
  [NH + 1, 'dev kst-vxlan encap ip id 4242 dst 198.51.100.8'],
]);

// As `ip -json route` prints them: nhid routes, an inline encap route with its second
// "dst", a route in a foreign table, strings with braces and escapes, nested arrays.
const json = JSON.stringify([
  { dst: '203.0.113.10', nhid: NH, table: String(BASE), protocol: '245', flags: [] },
  { dst: '203.0.113.10', nhid: NH + 1, table: String(BASE + 1), protocol: '245', flags: ['onlink'] },
  { dst: '203.0.113.11', nhid: NH + 1, table: String(BASE), protocol: '245', flags: [] },
  { dst: '203.0.113.11', nhid: NH + 9, table: String(BASE + 4096), protocol: '245', flags: [] },
  { dst: '203.0.113.12', table: '254', protocol: '245', note: 'a } and a \\" in a string {', flags: [] },
]).replace('"protocol":"245","flags":["onlink"]', '"encap":"ip","id":4242,"src":"0.0.0.0","dst":"198.51.100.9","ttl":0,"tos":0,"dev":"kst-vxlan","protocol":"245","flags":["onlink"]')
  .replace(`"nhid":${NH + 1},"table":"${BASE + 1}",`, `"table":"${BASE + 1}",`);

const view = (m: ReadonlyMap<string, VipRoutes>) => [...m].map(([vip, r]) => [vip, [...r.values()].sort((a, b) => a.table - b.table)]).sort();

describe('streamed route readback', () => {
  const whole = toRouteMap(parseRoutes(json, 4, BASE, canonical));

  test('the one-string parse finds what the test expects', () => {
    expect([...whole.keys()].sort()).toEqual(['203.0.113.10', '203.0.113.11']);
    expect(whole.get('203.0.113.10')!.get(BASE + 1)!.nexthop).toBe('dev kst-vxlan onlink encap ip id 4242 dst 198.51.100.9 (inline)');
    expect(whole.get('203.0.113.11')!.get(BASE + 4096)!.nexthop).toBe(`nhid ${NH + 9}`);
  });

  test('cut into two chunks at every position, the result is the same', () => {
    for (let cut = 0; cut <= json.length; cut++) {
      const r = new RouteReadback(4, BASE, canonical);
      r.push(json.slice(0, cut));
      r.push(json.slice(cut));
      expect(view(r.result())).toEqual(view(whole));
    }
  });

  test('one character at a time, and with the trailing newline ip prints', () => {
    const r = new RouteReadback(4, BASE, canonical);
    for (const c of `${json}\n`) r.push(c);
    expect(view(r.result())).toEqual(view(whole));
    expect(r.seen).toBe(5);
  });

  test('output that ends inside a route, or is not JSON, is an error, not a partial state', () => {
    const cut = new RouteReadback(4, BASE, canonical);
    cut.push(json.slice(0, json.length - 10));
    expect(() => cut.result()).toThrow(/ended inside a route/);
    const bad = new RouteReadback(4, BASE, canonical);
    bad.push('[{"dst": nope}]');
    expect(() => bad.result()).toThrow(/reading back IPv4 routes/);
  });

  test('no output and an empty list are no routes', () => {
    for (const text of ['', '[]\n', '[ ]']) {
      const r = new RouteReadback(6, BASE, canonical);
      r.push(text);
      expect(r.result().size).toBe(0);
    }
  });

  test('the splitter hands over each element of an array of objects', () => {
    const out: string[] = [];
    const s = new JsonArraySplitter();
    for (const part of ['[{"a":[1,{"b":"}"}]}', ',{"c":"\\\\"}', ']']) s.push(part, (t) => out.push(t));
    expect(out.map((t) => JSON.parse(t) as unknown)).toEqual([{ a: [1, { b: '}' }] }, { c: '\\' }]);
    expect(s.complete).toBe(true);
  });
});

describe('PackedVipRoutes', () => {
  test('behaves as the Map of routes it replaces', () => {
    const entries: [number, string][] = [];
    for (let i = 0; i < 300; i++) entries.push([BASE + ((i * 7919) % 300) + (i % 2) * 4096, `dev x${i % 5}`]);
    const map = new Map(entries.map(([t, n]) => [t, { family: 4 as const, table: t, dst: '203.0.113.10', nexthop: n }]));
    const b = new VipRoutesBuilder(4, '203.0.113.10');
    for (const [t, n] of entries) b.set(t, n);
    const packed = b.build();
    expect(packed).toBeInstanceOf(PackedVipRoutes);
    expect(packed.size).toBe(map.size);
    for (const [t, r] of map) {
      expect(packed.get(t)).toEqual(r);
      expect(packed.has(t)).toBe(true);
      expect(nexthopAt(packed, t)).toBe(r.nexthop);
    }
    expect(packed.get(BASE + 5000)).toBeUndefined();
    expect(packed.has(BASE - 1)).toBe(false);
    expect([...packed.keys()]).toEqual([...map.keys()].sort((a, b) => a - b));
    expect(new Set(packed.nexthops())).toEqual(new Set(entries.map(([, n]) => n)));
    let n = 0;
    packed.forEach((r, t) => {
      expect(r.table).toBe(t);
      n += 1;
    });
    expect(n).toBe(map.size);
  });

  test('a table set twice keeps the last text, as a Map would; a text no route keeps is dropped', () => {
    const b = new VipRoutesBuilder(4, '203.0.113.10');
    b.set(BASE + 2, 'dev a').set(BASE, 'dev b').set(BASE + 1, 'dev c').set(BASE, 'dev d').set(BASE + 2, 'dev b');
    expect(b.size).toBe(3);
    const packed = b.build();
    expect([...packed.values()].map((r) => [r.table - BASE, r.nexthop])).toEqual([
      [0, 'dev d'],
      [1, 'dev c'],
      [2, 'dev b'],
    ]);
    expect([...packed.nexthops()].sort()).toEqual(['dev b', 'dev c', 'dev d']);
  });

  test('a route of another VIP is refused', () => {
    expect(() => new VipRoutesBuilder(4, '203.0.113.10').add({ family: 4, table: BASE, dst: '203.0.113.11', nexthop: 'dev x' })).toThrow(/203.0.113.11/);
  });
});
