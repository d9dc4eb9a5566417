// Host routes (VIP/32, VIP/128) <-> GoBGP's API Path. Pure: no I/O, so the encoding that
// gobgpd accepts is pinned down by unit tests and by the real-gobgpd tests alike.
//
// Next hop self: IPv4 unicast carries NEXT_HOP 0.0.0.0 and IPv6 unicast an MP_REACH_NLRI
// with next hop "::"; gobgpd 3.10 replaces the unspecified address with the session's
// local address when it sends the UPDATE (what `gobgp global rib add` does too).
import { isIP } from 'node:net';
import { packAny, unpackAny } from './proto.js';

/** One host route as this project announces it; the attributes are part of its identity. */
export interface HostRoute {
  /** "203.0.113.10/32" or "2001:db8::10/128". */
  readonly prefix: string;
  readonly family: 4 | 6;
  /** "ASN:value", each part 0..65535. */
  readonly communities: readonly string[];
  /** "global:local1:local2", each part 0..4294967295. */
  readonly largeCommunities: readonly string[];
  readonly localPref?: number;
}

/** A Path message as @grpc/proto-loader (keepCase) sends and receives it. */
export interface ApiAny {
  readonly type_url: string;
  readonly value: Uint8Array;
}
export interface ApiPath {
  readonly nlri: ApiAny;
  readonly pattrs: readonly ApiAny[];
  readonly family: { readonly afi: string | number; readonly safi: string | number };
  readonly is_withdraw?: boolean;
  readonly neighbor_ip?: string;
  readonly uuid?: Uint8Array;
}

export class RouteError extends Error {
  constructor(
    readonly prefix: string,
    message: string,
  ) {
    super(`route ${prefix}: ${message}`);
    this.name = 'RouteError';
  }
}

const ORIGIN_IGP = 0;
const U16 = 0xffff;
const U32 = 0xffffffff;

export function familyOf(family: 4 | 6): { afi: 'AFI_IP' | 'AFI_IP6'; safi: 'SAFI_UNICAST' } {
  return { afi: family === 4 ? 'AFI_IP' : 'AFI_IP6', safi: 'SAFI_UNICAST' };
}

/** Canonical address text (IPv6 compressed, lower case), so model and gobgpd texts compare equal. */
export function canonicalIp(ip: string): string {
  if (isIP(ip) === 6) return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  return ip;
}

function parseParts(text: string, count: number, max: number, what: string, prefix: string): number[] {
  const parts = text.split(':');
  if (parts.length !== count || parts.some((p) => !/^\d+$/.test(p) || Number(p) > max)) {
    throw new RouteError(prefix, `${what} "${text}" must be ${count} numbers 0..${max} separated by ":"`);
  }
  return parts.map(Number);
}

/**
 * Addresses that are never a VIP. gobgpd accepts them all (and reports an IPv4-mapped
 * IPv6 prefix back as IPv4, which would make the diff re-add it forever).
 */
function nonRoutable(addr: string, fam: 4 | 6): string | undefined {
  if (fam === 4) {
    const [a = 0, b = 0] = addr.split('.').map(Number);
    if (a === 0) return 'an unspecified ("this network")';
    if (a === 127) return 'a loopback';
    if (a === 169 && b === 254) return 'a link-local';
    if (a >= 224) return 'a multicast or reserved';
    return undefined;
  }
  const c = canonicalIp(addr);
  if (c === '::') return 'the unspecified';
  if (c === '::1') return 'the loopback';
  if (c.startsWith('::ffff:')) return 'an IPv4-mapped';
  if (/^fe[89ab]/.test(c)) return 'a link-local';
  if (c.startsWith('ff')) return 'a multicast';
  return undefined;
}

/** Checks a route and returns it with canonical texts; throws RouteError naming the field. */
export function normalizeRoute(r: HostRoute): HostRoute {
  const [addr, lenText, ...rest] = r.prefix.split('/');
  const fam = isIP(addr ?? '');
  if (rest.length || !addr || !fam || lenText === undefined) throw new RouteError(r.prefix, 'prefix is not ADDRESS/LENGTH');
  if (fam !== r.family) throw new RouteError(r.prefix, `prefix is IPv${fam} but family says IPv${r.family}`);
  const hostLen = fam === 4 ? 32 : 128;
  const scope = nonRoutable(addr, fam);
  if (scope) throw new RouteError(r.prefix, `${scope} address is not announced`);
  if (lenText !== String(hostLen)) throw new RouteError(r.prefix, `only host routes (/${hostLen}) are announced`);
  for (const c of r.communities) parseParts(c, 2, U16, 'community', r.prefix);
  for (const c of r.largeCommunities) parseParts(c, 3, U32, 'large community', r.prefix);
  if (r.localPref !== undefined && !(Number.isInteger(r.localPref) && r.localPref >= 0 && r.localPref <= U32)) {
    throw new RouteError(r.prefix, `local preference ${r.localPref} is not 0..${U32}`);
  }
  return {
    prefix: `${canonicalIp(addr)}/${hostLen}`,
    family: fam,
    communities: [...new Set(r.communities)].sort(),
    largeCommunities: [...new Set(r.largeCommunities)].sort(),
    ...(r.localPref !== undefined ? { localPref: r.localPref } : {}),
  };
}

/** Identity of an announced route including its attributes: a changed attribute is a re-announce. */
export function routeKey(r: HostRoute): string {
  return `${r.prefix}|${r.communities.join(',')}|${r.largeCommunities.join(',')}|${r.localPref ?? ''}`;
}

/** Encodes a (normalized) route as a GoBGP Path; `withdraw` marks it for AddPathStream. */
export function toApiPath(route: HostRoute, withdraw = false): ApiPath {
  const r = normalizeRoute(route);
  const [addr] = r.prefix.split('/') as [string];
  const nlri = packAny('IPAddressPrefix', { prefix_len: r.family === 4 ? 32 : 128, prefix: addr });
  const pattrs: ApiAny[] = [packAny('OriginAttribute', { origin: ORIGIN_IGP })];
  if (r.family === 4) pattrs.push(packAny('NextHopAttribute', { next_hop: '0.0.0.0' }));
  else pattrs.push(packAny('MpReachNLRIAttribute', { family: familyOf(6), next_hops: ['::'], nlris: [nlri] }));
  if (r.communities.length) {
    pattrs.push(packAny('CommunitiesAttribute', {
      communities: r.communities.map((c) => {
        const [asn, value] = parseParts(c, 2, U16, 'community', r.prefix) as [number, number];
        return asn * 0x10000 + value;
      }),
    }));
  }
  if (r.largeCommunities.length) {
    pattrs.push(packAny('LargeCommunitiesAttribute', {
      communities: r.largeCommunities.map((c) => {
        const [global_admin, local_data1, local_data2] = parseParts(c, 3, U32, 'large community', r.prefix);
        return { global_admin, local_data1, local_data2 };
      }),
    }));
  }
  if (r.localPref !== undefined) pattrs.push(packAny('LocalPrefAttribute', { local_pref: r.localPref }));
  return { nlri, pattrs, family: familyOf(r.family), ...(withdraw ? { is_withdraw: true } : {}) };
}

/** Decodes a Path from ListPath back into a HostRoute; undefined for what is not a host route. */
export function fromApiPath(path: ApiPath): HostRoute | undefined {
  const [kind, nlri] = unpackAny(path.nlri);
  if (kind !== 'IPAddressPrefix') return undefined;
  const addr = String(nlri.prefix);
  const family = isIP(addr);
  if (family !== 4 && family !== 6) return undefined;
  if (Number(nlri.prefix_len) !== (family === 4 ? 32 : 128)) return undefined;
  let communities: string[] = [];
  let largeCommunities: string[] = [];
  let localPref: number | undefined;
  for (const a of path.pattrs ?? []) {
    const [name, attr] = unpackAny(a);
    if (name === 'CommunitiesAttribute') {
      communities = (attr.communities as number[]).map((c) => `${Math.floor(c / 0x10000)}:${c % 0x10000}`);
    } else if (name === 'LargeCommunitiesAttribute') {
      largeCommunities = (attr.communities as Array<{ global_admin: number; local_data1: number; local_data2: number }>).map(
        (c) => `${c.global_admin}:${c.local_data1}:${c.local_data2}`,
      );
    } else if (name === 'LocalPrefAttribute') {
      localPref = Number(attr.local_pref);
    }
  }
  return normalizeRoute({ prefix: `${addr}/${family === 4 ? 32 : 128}`, family, communities, largeCommunities, ...(localPref !== undefined ? { localPref } : {}) });
}
