// The host-route <-> GoBGP Path encoding, without gobgpd (speaker.test.ts covers the real one).
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { normalizeRoute, routeKey, RouteError, samePeerConfig, validatePeer, type HostRoute } from '../../src/bgp/index.js';
import { fromApiPath, toApiPath } from '../../src/bgp/paths.js';
import { unpackAny } from '../../src/bgp/proto.js';

const route = (prefix: string, extra: Partial<HostRoute> = {}): HostRoute => ({
  prefix, family: prefix.includes(':') ? 6 : 4, communities: [], largeCommunities: [], ...extra,
});

describe('toApiPath', () => {
  it('encodes an IPv4 host route with NEXT_HOP 0.0.0.0 (next hop self) and its attributes', () => {
    const p = toApiPath(route('203.0.113.10/32', { communities: ['65000:100'], largeCommunities: ['65000:1:2'], localPref: 150 }));
    expect(p.family).toEqual({ afi: 'AFI_IP', safi: 'SAFI_UNICAST' });
    expect(unpackAny(p.nlri)).toEqual(['IPAddressPrefix', { prefix_len: 32, prefix: '203.0.113.10' }]);
    expect(p.pattrs.map(unpackAny)).toEqual([
      ['OriginAttribute', { origin: 0 }],
      ['NextHopAttribute', { next_hop: '0.0.0.0' }],
      ['CommunitiesAttribute', { communities: [65000 * 65536 + 100] }],
      ['LargeCommunitiesAttribute', { communities: [{ global_admin: 65000, local_data1: 1, local_data2: 2 }] }],
      ['LocalPrefAttribute', { local_pref: 150 }],
    ]);
  });

  it('encodes an IPv6 host route with MP_REACH_NLRI next hop "::"', () => {
    const p = toApiPath(route('2001:DB8:0::10/128'));
    expect(p.family).toEqual({ afi: 'AFI_IP6', safi: 'SAFI_UNICAST' });
    const [name, mp] = unpackAny(p.pattrs[1]!);
    expect(name).toBe('MpReachNLRIAttribute');
    expect(mp.next_hops).toEqual(['::']);
    expect(mp.family).toEqual({ afi: 'AFI_IP6', safi: 'SAFI_UNICAST' });
    expect(unpackAny((mp.nlris as Array<{ type_url: string; value: Uint8Array }>)[0]!)).toEqual(['IPAddressPrefix', { prefix_len: 128, prefix: '2001:db8::10' }]);
  });

  it('marks withdrawals for AddPathStream', () => {
    expect(toApiPath(route('203.0.113.10/32'), true).is_withdraw).toBe(true);
  });

  it('round-trips through the decoder (what ListPath returns)', () => {
    const ipv4 = fc.tuple(fc.integer({ min: 1, max: 126 }), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => `${o.join('.')}/32`);
    fc.assert(fc.property(
      ipv4,
      fc.uniqueArray(fc.tuple(fc.nat(65535), fc.nat(65535)).map(([a, b]) => `${a}:${b}`), { maxLength: 3 }),
      fc.uniqueArray(fc.tuple(fc.nat(), fc.nat(), fc.nat()).map((t) => t.join(':')), { maxLength: 2 }),
      fc.option(fc.nat(), { nil: undefined }),
      (prefix, communities, largeCommunities, localPref) => {
        const r = normalizeRoute(route(prefix, { communities, largeCommunities, ...(localPref !== undefined ? { localPref } : {}) }));
        const back = fromApiPath(toApiPath(r));
        expect(back && routeKey(back)).toBe(routeKey(r));
      },
    ));
  });
});

describe('normalizeRoute', () => {
  it.each([
    [route('203.0.113.0/24'), 'route 203.0.113.0/24: only host routes (/32) are announced'],
    [route('203.0.113.5'), 'route 203.0.113.5: prefix is not ADDRESS/LENGTH'],
    [route('web.example/32'), 'route web.example/32: prefix is not ADDRESS/LENGTH'],
    [{ ...route('203.0.113.5/32'), family: 6 as const }, 'route 203.0.113.5/32: prefix is IPv4 but family says IPv6'],
    [route('127.0.0.1/32'), 'route 127.0.0.1/32: a loopback address is not announced'],
    [route('::ffff:203.0.113.5/128'), 'route ::ffff:203.0.113.5/128: an IPv4-mapped address is not announced'],
    [route('fe80::1/128'), 'route fe80::1/128: a link-local address is not announced'],
    [route('203.0.113.5/32', { communities: ['65536:1'] }), 'route 203.0.113.5/32: community "65536:1" must be 2 numbers 0..65535 separated by ":"'],
    [route('203.0.113.5/32', { largeCommunities: ['1:2'] }), 'route 203.0.113.5/32: large community "1:2" must be 3 numbers 0..4294967295 separated by ":"'],
    [route('203.0.113.5/32', { localPref: -1 }), 'route 203.0.113.5/32: local preference -1 is not 0..4294967295'],
  ])('rejects %j', (r, message) => {
    expect(() => normalizeRoute(r)).toThrow(RouteError);
    expect(() => normalizeRoute(r)).toThrow(message);
  });

  it('canonicalizes IPv6 and sorts attributes, so equal routes have equal keys', () => {
    const a = normalizeRoute(route('2001:DB8:0:0::1/128', { communities: ['2:2', '1:1'] }));
    expect(a.prefix).toBe('2001:db8::1/128');
    expect(routeKey(a)).toBe(routeKey(normalizeRoute(route('2001:db8::1/128', { communities: ['1:1', '2:2', '1:1'] }))));
  });
});

describe('peers', () => {
  const peer = { address: '192.0.2.1', asn: 65000, holdTimeSeconds: 9, keepaliveSeconds: 3 };
  it('validates before gobgpd sees the peer', () => {
    expect(() => validatePeer({ ...peer, address: 'router-a' })).toThrow('gobgpd AddPeer peer router-a failed: address "router-a" is not an IP address');
    expect(() => validatePeer({ ...peer, asn: 0 })).toThrow('ASN 0 is not 1..4294967295');
    expect(() => validatePeer({ ...peer, multihopTtl: 300 })).toThrow('multihop TTL 300 is not 1..255');
    expect(() => validatePeer(peer)).not.toThrow();
  });
  it('treats the local address gobgpd fills in after connecting as unchanged config', () => {
    expect(samePeerConfig({ ...peer, localAddress: '192.0.2.2', connectRetrySeconds: 5, families: [4] }, peer)).toBe(true);
    expect(samePeerConfig({ ...peer, localAddress: '192.0.2.2' }, { ...peer, localAddress: '192.0.2.6' })).toBe(false);
    expect(samePeerConfig(peer, { ...peer, password: 'secret' })).toBe(false);
    expect(samePeerConfig(peer, { ...peer, holdTimeSeconds: 90, keepaliveSeconds: 30 })).toBe(false);
  });
});
