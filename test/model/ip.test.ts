import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { bigIntToIp, cidrContains, cidrsOverlap, classifyIp, compareIps, ipToBigInt, parseCidr, parseCidrDetailed, parseIp, type IpAddress } from '../../src/model/index.js';

describe('parseIp', () => {
  test.each([
    ['203.0.113.10', '203.0.113.10'],
    [' 203.0.113.10 ', '203.0.113.10'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first longest run is compressed
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not
    ['::', '::'],
    ['::1', '::1'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::ffff:c000:0201', '::ffff:192.0.2.1'],
    ['fe80::', 'fe80::'],
  ])('%s -> %s', (input, canonical) => {
    expect(parseIp(input)).toBe(canonical);
  });

  test.each(['', '203.0.113', '203.0.113.256', '01.2.3.4', '2001:db8::1::2', 'fe80::1%eth0', 'example.com', '1.2.3.4/32'])('rejects %j', (input) => {
    expect(parseIp(input)).toBeUndefined();
  });

  test('canonical text round-trips through its number (IPv4 and IPv6)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const ip = parseIp(text)!;
        expect(ip).toBeDefined();
        expect(parseIp(ip)).toBe(ip);
        expect(bigIntToIp(ipToBigInt(ip), ip.includes(':') ? 6 : 4)).toBe(ip);
      }),
    );
  });
});

describe('CIDRs', () => {
  test('strict parsing rejects host bits and names the fix', () => {
    const r = parseCidrDetailed('203.0.113.5/24');
    expect(r).toEqual({ ok: false, error: 'host bits set; did you mean 203.0.113.0/24?' });
    expect(parseCidr('203.0.113.5/24', false)).toBe('203.0.113.0/24');
    expect(parseCidr('2001:DB8::/32')).toBe('2001:db8::/32');
    expect(parseCidrDetailed('203.0.113.0/33')).toMatchObject({ ok: false, error: expect.stringContaining('0..32') });
    expect(parseCidrDetailed('203.0.113.0')).toMatchObject({ ok: false, error: expect.stringContaining('missing') });
  });

  test('containment and overlap', () => {
    const c = parseCidr('203.0.113.0/25')!;
    expect(cidrContains(c, parseIp('203.0.113.127')!)).toBe(true);
    expect(cidrContains(c, parseIp('203.0.113.128')!)).toBe(false);
    expect(cidrContains(c, parseIp('2001:db8::1')!)).toBe(false);
    expect(cidrContains(parseCidr('2001:db8::/32')!, parseIp('2001:db8:ffff::1')!)).toBe(true);
    expect(cidrsOverlap(parseCidr('203.0.113.0/24')!, c)).toBe(true);
    expect(cidrsOverlap(parseCidr('203.0.113.128/25')!, c)).toBe(false);
    expect(cidrsOverlap(parseCidr('0.0.0.0/0')!, parseCidr('::/0')!)).toBe(false);
  });
});

describe('classifyIp', () => {
  test.each([
    ['0.0.0.0', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['127.0.0.53', 'loopback'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.255', 'multicast'],
    ['169.254.10.1', 'link-local'],
    ['203.0.113.10', 'unicast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['ff02::1', 'multicast'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'unicast'],
    ['::ffff:192.0.2.1', 'ipv4-mapped'],
    ['2001:db8::10', 'unicast'],
  ])('%s is %s', (ip, cls) => {
    expect(classifyIp(parseIp(ip)!)).toBe(cls);
  });
});

test('compareIps orders IPv4 before IPv6, numerically', () => {
  const ips = ['2001:db8::10', '203.0.113.9', '2001:db8::9', '203.0.113.10'].map((s) => parseIp(s)!) as IpAddress[];
  expect([...ips].sort(compareIps)).toEqual(['203.0.113.9', '203.0.113.10', '2001:db8::9', '2001:db8::10']);
});
