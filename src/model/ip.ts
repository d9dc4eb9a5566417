// IP addresses and CIDRs as canonical text (the branded IpAddress / Cidr of types.ts).
// Canonical text lets the rest of the model compare addresses with `===` and use them
// as map keys; arithmetic (containment, allocation) goes through bigint.
import { isIPv4, isIPv6 } from 'node:net';
import type { Cidr, IpAddress, IpFamily } from './types.js';

const V4_BITS = 32;
const V6_BITS = 128;

export function familyBits(family: IpFamily): number {
  return family === 4 ? V4_BITS : V6_BITS;
}

/** Family of canonical text: IPv6 text always contains a colon, IPv4 text never. */
export function ipFamily(ip: IpAddress): IpFamily {
  return ip.includes(':') ? 6 : 4;
}

function v4ToNumber(text: string): number {
  let n = 0;
  let octet = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + octet;
      octet = 0;
    } else octet = octet * 10 + (c - 48);
  }
  return n * 256 + octet;
}

function v4ToBigInt(text: string): bigint {
  return BigInt(v4ToNumber(text));
}

function v6ToBigInt(text: string): bigint {
  let s = text;
  // A trailing dotted quad ("::ffff:192.0.2.1") stands for the last two groups.
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = v4ToBigInt(tail);
    s = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = s.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = rest === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g, 16));
  return n;
}

/** Numeric value of a canonical (or any valid) address. */
export function ipToBigInt(ip: IpAddress | string): bigint {
  return ip.includes(':') ? v6ToBigInt(ip) : v4ToBigInt(ip);
}

/** Canonical text for a number: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run compressed). */
export function bigIntToIp(n: bigint, family: IpFamily): IpAddress {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => ((n >> s) & 0xffn).toString()).join('.') as IpAddress;
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  // IPv4-mapped addresses keep their dotted quad (RFC 5952 section 5).
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bigIntToIp(n & 0xffffffffn, 4)}` as IpAddress;
  }
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':') as IpAddress;
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}` as IpAddress;
}

/**
 * Parses an address into canonical text; undefined when it is not an IP address.
 * Zone ids ("fe80::1%eth0") and leading zeros in IPv4 octets are rejected.
 */
export function parseIp(text: string): IpAddress | undefined {
  const s = text.trim();
  if (isIPv4(s)) return bigIntToIp(v4ToBigInt(s), 4);
  if (isIPv6(s) && !s.includes('%')) return bigIntToIp(v6ToBigInt(s), 6);
  return undefined;
}

export interface CidrRange {
  readonly family: IpFamily;
  readonly prefixLength: number;
  readonly first: bigint;
  readonly last: bigint;
}

export type CidrParse = { readonly ok: true; readonly cidr: Cidr } | { readonly ok: false; readonly error: string };

/**
 * Parses "address/length". With `strict` (configuration), host bits must be zero, since
 * "203.0.113.5/24" is far more often a typo than an intent; otherwise they are cleared.
 */
export function parseCidrDetailed(text: string, strict = true): CidrParse {
  const s = text.trim();
  const slash = s.indexOf('/');
  if (slash < 0) return { ok: false, error: 'missing "/prefix-length"' };
  const ip = parseIp(s.slice(0, slash));
  if (!ip) return { ok: false, error: `"${s.slice(0, slash)}" is not an IP address` };
  const lenText = s.slice(slash + 1);
  const family = ipFamily(ip);
  const bits = familyBits(family);
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > bits) {
    return { ok: false, error: `prefix length "${lenText}" is not an integer 0..${bits}` };
  }
  const len = Number(lenText);
  const value = ipToBigInt(ip);
  const hostMask = (1n << BigInt(bits - len)) - 1n;
  if (strict && (value & hostMask) !== 0n) {
    return { ok: false, error: `host bits set; did you mean ${bigIntToIp(value & ~hostMask, family)}/${len}?` };
  }
  return { ok: true, cidr: `${bigIntToIp(value & ~hostMask, family)}/${len}` as Cidr };
}

export function parseCidr(text: string, strict = true): Cidr | undefined {
  const r = parseCidrDetailed(text, strict);
  return r.ok ? r.cidr : undefined;
}

const rangeCache = new Map<string, CidrRange>();

export function cidrRange(cidr: Cidr): CidrRange {
  const cached = rangeCache.get(cidr);
  if (cached) return cached;
  const slash = cidr.indexOf('/');
  const ip = cidr.slice(0, slash) as IpAddress;
  const family = ipFamily(ip);
  const prefixLength = Number(cidr.slice(slash + 1));
  const first = ipToBigInt(ip);
  const last = first | ((1n << BigInt(familyBits(family) - prefixLength)) - 1n);
  const range = { family, prefixLength, first, last };
  rangeCache.set(cidr, range);
  return range;
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  const r = cidrRange(cidr);
  if (r.family !== ipFamily(ip)) return false;
  if (r.family === 4) {
    // Plain numbers for IPv4: exact below 2^53, and no bigint allocation per lookup.
    const n = v4ToNumber(ip);
    return n >= Number(r.first) && n <= Number(r.last);
  }
  const n = ipToBigInt(ip);
  return n >= r.first && n <= r.last;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const ra = cidrRange(a);
  const rb = cidrRange(b);
  return ra.family === rb.family && ra.first <= rb.last && rb.first <= ra.last;
}

/** The host route for an address: /32 or /128. */
export function hostPrefix(ip: IpAddress): Cidr {
  return `${ip}/${familyBits(ipFamily(ip))}` as Cidr;
}

export type IpClass = 'unicast' | 'unspecified' | 'loopback' | 'multicast' | 'link-local' | 'broadcast' | 'ipv4-mapped';

/** Classes that can never be a VIP: nothing routes them to us, or the kernel treats them specially. */
export function classifyIp(ip: IpAddress): IpClass {
  const n = ipToBigInt(ip);
  if (ipFamily(ip) === 4) {
    if (n === 0n) return 'unspecified';
    if (n === 0xffffffffn) return 'broadcast';
    const top = n >> 24n;
    if (top === 127n) return 'loopback';
    if (top >= 224n && top <= 239n) return 'multicast';
    if (n >> 16n === 0xa9fen) return 'link-local'; // 169.254.0.0/16
    return 'unicast';
  }
  if (n === 0n) return 'unspecified';
  if (n === 1n) return 'loopback';
  if (n >> 120n === 0xffn) return 'multicast'; // ff00::/8
  if (n >> 118n === 0x3fan) return 'link-local'; // fe80::/10
  if (n >> 32n === 0xffffn) return 'ipv4-mapped'; // ::ffff:0:0/96
  return 'unicast';
}

/** Total order for output: IPv4 before IPv6, then numerically. */
export function compareIps(a: IpAddress, b: IpAddress): number {
  const fa = ipFamily(a);
  const fb = ipFamily(b);
  if (fa !== fb) return fa - fb;
  const na = ipToBigInt(a);
  const nb = ipToBigInt(b);
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/** Sorts addresses with compareIps, computing each numeric value once. */
export function sortIps<T>(items: readonly T[], key: (item: T) => IpAddress): T[] {
  const decorated = items.map((item) => {
    const ip = key(item);
    return { item, family: ipFamily(ip), n: ipToBigInt(ip) };
  });
  decorated.sort((a, b) => (a.family !== b.family ? a.family - b.family : a.n < b.n ? -1 : a.n > b.n ? 1 : 0));
  return decorated.map((d) => d.item);
}
