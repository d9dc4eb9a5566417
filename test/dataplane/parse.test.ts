// Pure parsing and planning details that the kernel tests exercise only indirectly.
import { describe, expect, test } from '@jest/globals';
import { describeNexthop, fixEncapDst, parseLinks, parseNexthops, parseRoutes, parseRules } from '../../src/dataplane/iproute.js';
import { vxlanLink } from '../../src/dataplane/links.js';
import { ruleText } from '../../src/dataplane/state.js';
import { canonicalTexts } from '../../src/dataplane/nexthops.js';
import { parseBatchErrors } from '../../src/dataplane/kernel.js';
import { lineCount } from '../../src/dataplane/ip-session.js';
import { parseVipCounters, vipCounterName } from '../../src/dataplane/nft.js';
import { minimalRanges, planKernel } from '../../src/dataplane/plan.js';
import { createDriver } from '../../src/dataplane/index.js';
import { parseXtSave, xtApplyScript, xtFamily } from '../../src/dataplane/xt.js';
import { desiredState, planParams, testConfig } from './fixtures.js';

describe('readback parsing', () => {
  test('an encap ip route keeps both addresses despite the duplicate "dst" key', () => {
    const json = '[{"dst":"203.0.113.10","encap":"ip","id":4242,"src":"0.0.0.0","dst":"192.0.2.11","ttl":0,"tos":0,"gateway":"169.254.75.83","dev":"kst-vxlan","table":"4936448","flags":["onlink"]},{"dst":"203.0.113.11","dev":"lo","table":"100"}]';
    expect(fixEncapDst(json)).toContain('"encap_dst":"192.0.2.11"');
    // A route with its nexthop inline (how versions before nexthop objects wrote it) reads
    // back with a text no plan produces, so the next converge rewrites it with an nhid.
    const routes = parseRoutes(json, 4, 0x4b5300);
    expect(routes).toEqual([{ family: 4, table: 4936448, dst: '203.0.113.10', nexthop: 'via 169.254.75.83 dev kst-vxlan onlink encap ip id 4242 dst 192.0.2.11 (inline)' }]);
  });

  test('nexthop objects: own id and tunnel id both kept; ours, foreign and out-of-range told apart', () => {
    const spec = 'via 169.254.75.83 dev kst-vxlan onlink encap ip id 4242 dst 192.0.2.11';
    const json = '[' + [
      '{"id":1264582656,"encap":"ip","id":4242,"src":"0.0.0.0","dst":"192.0.2.11","ttl":0,"tos":0,"gateway":"169.254.75.83","dev":"kst-vxlan","scope":"link","protocol":"245","flags":["onlink"]}',
      '{"id":1264582657,"encap":"ip","id":4242,"src":"0.0.0.0","dst":"192.0.2.11","ttl":0,"tos":0,"gateway":"169.254.75.83","dev":"kst-vxlan","scope":"link","protocol":"245","flags":["onlink"]}',
      '{"id":1264582658,"gateway":"192.0.2.1","dev":"eth0","scope":"link","protocol":"static","flags":[]}',
      '{"id":7,"gateway":"192.0.2.1","dev":"eth0","scope":"link","protocol":"245","flags":[]}',
    ].join(',') + ']';
    const read = parseNexthops(json, 4);
    expect(read.owned).toEqual([{ id: 1264582656, family: 4, spec }, { id: 1264582657, family: 4, spec }]);
    expect(read.foreign).toEqual([1264582658]);
    // Two objects with one text (a crashed run): the lowest id is the one routes should use;
    // a route through the other reads back as "nhid N" and is rewritten.
    const canonical = canonicalTexts(read.owned);
    expect([...canonical]).toEqual([[1264582656, spec]]);
    const routes = '[{"dst":"203.0.113.10","nhid":1264582656,"table":"4936448"},{"dst":"203.0.113.10","nhid":1264582657,"table":"4936449"}]';
    expect(parseRoutes(routes, 4, 0x4b5300, canonical).map((r) => r.nexthop)).toEqual([spec, 'nhid 1264582657']);
  });

  test('an IPv6 VXLAN nexthop object (encap ip6 ... csum, as iproute2 6.1 prints it) reads back as the driver writes it', () => {
    const driver = createDriver('vxlan-lwt', testConfig().encapsulation, () => Promise.resolve(undefined));
    const json = '[{"id":1264582656,"encap":"ip6","id":4242,"src":"::","dst":"2001:db8:f::11","hoplimit":0,"tc":0,"csum":true,"gateway":"fe80::4b53","dev":"kst-vxlan","scope":"link","protocol":"245","flags":[]}]';
    const spec = driver.nexthop('2001:db8:f::11', 6);
    expect(spec).toBe('via fe80::4b53 dev kst-vxlan encap ip6 id 4242 dst 2001:db8:f::11 csum');
    expect(parseNexthops(json, 6).owned).toEqual([{ id: 1264582656, family: 6, spec }]);
    // Without csum (someone else's edit, or an older text) it reads differently and is replaced.
    expect(parseNexthops(json.replace('"csum":true,', ''), 6).owned[0]?.spec).not.toBe(spec);
  });

  test('the VXLAN link: its gateway neighbours are kept apart from its spec; other permanent neighbours are not ours', () => {
    const link = '[{"ifname":"kst-vxlan","flags":["BROADCAST","NOARP","UP","LOWER_UP"],"address":"02:6b:73:74:00:01","linkinfo":{"info_kind":"vxlan","info_data":{"external":true,"port":4789}}}]';
    const neighs = '[{"dst":"169.254.75.83","dev":"kst-vxlan","lladdr":"02:6b:73:74:00:02","state":["PERMANENT"]},{"dst":"fe80::4b53","dev":"kst-vxlan","lladdr":"02:6b:73:74:00:02","state":["PERMANENT"]},{"dst":"fe80::99","dev":"kst-vxlan","lladdr":"02:00:00:00:00:99","state":["PERMANENT"]}]';
    const [read] = parseLinks(link, neighs);
    const want = vxlanLink(4789, true);
    expect(read?.spec).toBe(want.spec);
    expect(read?.neighbours).toEqual(want.neighbours);
    expect(vxlanLink(4789, false).neighbours).toEqual(new Map([['169.254.75.83', '02:6b:73:74:00:02']]));
  });

  test('seg6 and mpls nexthops read back in the drivers\' spelling', () => {
    expect(describeNexthop({ encap: 'seg6', mode: 'encap', segs: ['2001:db8::5'], dev: 'kst-vxlan' })).toBe('dev kst-vxlan encap seg6 mode encap segs 2001:db8::5');
    expect(describeNexthop(JSON.parse(fixEncapDst('{"dst":"203.0.113.10","encap":"mpls","dst":"100","gateway":"192.0.2.5","dev":"veth1"}')))).toBe('encap mpls 100 via inet 192.0.2.5 dev veth1');
  });

  test('ip -batch errors are paired with their line numbers', () => {
    expect(parseBatchErrors('Error: Nexthop has invalid gateway.\nCommand failed -:3\nCannot find device "x"\nCommand failed -:7\n')).toEqual([
      { line: 3, message: 'Error: Nexthop has invalid gateway.' },
      { line: 7, message: 'Cannot find device "x"' },
    ]);
  });

  test('per-VIP counters round-trip through their names', () => {
    const json = JSON.stringify({ nftables: [{ counter: { family: 'inet', name: vipCounterName('2001:db8:ff::10'), table: 'kube_service_tunnel', packets: 3, bytes: 300 } }, { counter: { family: 'inet', name: vipCounterName('203.0.113.10'), table: 'kube_service_tunnel', packets: 1, bytes: 84 } }] });
    expect(parseVipCounters(json)).toEqual([{ vip: '2001:db8:ff::10', packets: 3, bytes: 300 }, { vip: '203.0.113.10', packets: 1, bytes: 84 }]);
  });

  test('xtables readback compares fingerprints whatever order iptables-save prints the chains in', () => {
    const want = xtFamily([{ vip: '203.0.113.10', allowed: [], restricted: false }], { buckets: 16, seed: 1, markBase: 0x4b530000 }, 4);
    const rules = want.script.split('\n').filter((l) => l.startsWith('-A'));
    const save = ['*mangle', ':PREROUTING ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ':KST-HASH - [0:0]', ':KST-POSTROUTING - [0:0]', ':KST-PREROUTING - [0:0]', '-A PREROUTING -j KST-PREROUTING', '-A POSTROUTING -j KST-POSTROUTING', ...rules.reverse(), 'COMMIT'].join('\n');
    expect(parseXtSave(save).fingerprint).toBe(want.fingerprint);
    // Without the POSTROUTING jump (a version before it): stale, and the apply adds only that jump.
    const old = parseXtSave(save.replace('-A POSTROUTING -j KST-POSTROUTING\n', ''));
    expect(old.fingerprint).not.toBe(want.fingerprint);
    const apply = xtApplyScript(want, old);
    expect(apply).toContain('-A POSTROUTING -j KST-POSTROUTING');
    expect(apply).not.toContain('-I PREROUTING');
  });
});

describe('planning', () => {
  test('source ranges: covered prefixes are dropped, host prefixes print as addresses', () => {
    expect(minimalRanges(['198.51.100.0/24', '198.51.100.128/25', '192.0.2.7/32', '2001:db8::/32', '2001:db8:1::/48'])).toEqual(['192.0.2.7', '198.51.100.0/24', '2001:db8::/32']);
  });

  test('bad input holds a VIP and names the problem; the rest is planned', () => {
    const config = testConfig();
    const driver = createDriver('vxlan-lwt', config.encapsulation, () => Promise.resolve(undefined));
    const d = desiredState({ bucketCount: 4, vips: [{ vip: '203.0.113.10', backends: ['192.0.2.11'], buckets: [0, 0, 0] }, { vip: '203.0.113.11', backends: ['192.0.2.11'], buckets: [0, 0, 0, 5] }, { vip: '203.0.113.12', backends: ['192.0.2.11'] }] });
    const p = planKernel(d, driver, planParams(config));
    expect(p.problems.map((x) => x.message)).toEqual([
      'bucket table of VIP 203.0.113.10 has 3 buckets, expected 4',
      'bucket 3 of VIP 203.0.113.11 points at backend #5, which does not exist',
    ]);
    expect([...p.held]).toEqual(['203.0.113.10', '203.0.113.11']);
    expect([...p.state.routes.keys()]).toEqual(['203.0.113.12']);
  });

  test('mpls hashes among local endpoints only and cannot carry IPv6', async () => {
    const config = testConfig({ mode: 'mpls' });
    const driver = createDriver('mpls', config.encapsulation, (a) => Promise.resolve(a === '192.0.2.11' ? 'veth-a' : undefined));
    await driver.prepare?.(['192.0.2.11'], true);
    const d = desiredState({ mode: 'mpls', node: 'node-a', bucketCount: 4, vips: [{ vip: '203.0.113.10', backends: ['192.0.2.11', '192.0.2.12'], nodes: ['node-a', 'node-b'] }, { vip: '2001:db8:ff::1', backends: ['2001:db8::1'], nodes: ['node-a'] }] });
    const p = planKernel(d, driver, planParams(config));
    expect(new Set([...p.state.routes.get('203.0.113.10')!.values()].map((r) => r.nexthop))).toEqual(new Set(['encap mpls 100 via inet 192.0.2.11 dev veth-a']));
    expect(p.problems).toEqual([expect.objectContaining({ vip: '2001:db8:ff::1', message: 'mode mpls cannot carry IPv6 VIP 2001:db8:ff::1' })]);
  });
});

describe('policy rules', () => {
  test('the rule priorities the schema leaves room for are the ones the layout uses', async () => {
    const { RULE_PRIORITY_SPAN } = await import('../../src/dataplane/layout.js');
    const { configSchema } = await import('../../src/config/schema.js');
    expect(RULE_PRIORITY_SPAN).toBe(514);
    expect(() => configSchema.parse({ dataplane: { rulePriority: 32765 - RULE_PRIORITY_SPAN } })).not.toThrow();
    expect(() => configSchema.parse({ dataplane: { rulePriority: 32765 - RULE_PRIORITY_SPAN + 1 } })).toThrow();
  });

  test('guard, group, bucket and anchor rules read back as planned; foreign rules are not ours', () => {
    const json = JSON.stringify([
      { priority: 0, src: 'all', table: 'local' },
      { priority: 3000, not: null, src: 'all', fwmark: '0x4b530000', fwmask: '0xffffe000', goto: 3003, protocol: '245' },
      { priority: 3001, src: 'all', fwmark: '0x4b530000', fwmask: '0xfffffff0', goto: 3002, protocol: '245' },
      { priority: 3002, src: 'all', fwmark: '0x4b530001', table: '4936449', protocol: '245' },
      { priority: 3003, src: 'all', nop: null, protocol: '245' },
      { priority: 3003, src: 'all', nop: null, protocol: 'static' },
      { priority: 3004, src: 'all', fwmark: '0x1', table: '4936449', protocol: '245' },
      { priority: 3005, src: 'all', fwmark: '0x4b530001', table: '100', protocol: '245' },
    ]);
    const rules = parseRules(json, 4, 0x4b5300);
    expect(rules.map((r) => `${r.priority} ${ruleText(r)}`)).toEqual([
      '3000 not fwmark 0x4b530000/0xffffe000 goto 3003',
      '3001 fwmark 0x4b530000/0xfffffff0 goto 3002',
      '3002 fwmark 0x4b530001 lookup 4936449',
      '3003 nop',
    ]);
  });
});

describe('lineCount (ip -batch line numbering)', () => {
  test('counts lines as split would, without making them', () => {
    for (const text of ['', 'a', 'a\nb', 'a\n', '\n\n', 'route add x\nroute add y\nnexthop show id 0']) expect(lineCount(text)).toBe(text.split('\n').length);
  });
});
