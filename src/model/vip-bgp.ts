// BGP attributes and peers of one VIP: its pool's (pools[].peers, communities,
// largeCommunities, localPref) plus its Service's annotations:
//   <annotationKey>-peers              peer names or addresses; must be among the pool's peers (if it restricts)
//   <annotationKey>-communities        added to the pool's
//   <annotationKey>-large-communities  added to the pool's
//   <annotationKey>-local-pref         replaces the pool's
// Invalid values reject the whole set (a Problem; the VIP is not announced), never a
// half-applied one: a VIP announced to more peers than asked, or without the community
// a router's policy relies on, is worse than one not announced.
import { parseIp } from './ip.js';
import type { PeerSettings } from './peers.js';
import type { PoolSettings } from './settings.js';
import type { IpAddress } from './types.js';

export interface VipBgp {
  readonly communities: readonly string[];
  readonly largeCommunities: readonly string[];
  readonly localPref?: number;
  /** Peer addresses that may receive the VIP; absent: every peer. */
  readonly peers?: readonly IpAddress[];
}

export type VipBgpResult = { readonly ok: true; readonly bgp: VipBgp } | { readonly ok: false; readonly error: string };

const COMMUNITY = /^(\d{1,5}):(\d{1,5})$/;
const LARGE = /^(\d{1,10}):(\d{1,10}):(\d{1,10})$/;

function list(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Resolves peer names or addresses to configured peer addresses; errors name the unknown ones. */
function resolvePeers(refs: readonly string[], peers: readonly PeerSettings[], where: string): { ok: true; peers: IpAddress[] } | { ok: false; error: string } {
  const out: IpAddress[] = [];
  for (const ref of refs) {
    const ip = parseIp(ref);
    const found = peers.find((p) => p.name === ref || (ip !== undefined && parseIp(p.address) === ip));
    if (!found) return { ok: false, error: `${where}: "${ref}" is not a configured peer (bgp.peers: ${peers.map((p) => p.name ?? p.address).join(', ') || 'none'})` };
    const addr = parseIp(found.address);
    if (addr && !out.includes(addr)) out.push(addr);
  }
  return { ok: true, peers: out.sort() };
}

export function vipBgp(annotationKey: string, pool: PoolSettings, annotations: Readonly<Record<string, string>>, peers: readonly PeerSettings[]): VipBgpResult {
  const key = (s: string) => `${annotationKey}-${s}`;
  const field = (s: string) => `metadata.annotations["${key(s)}"]`;
  let allowed: IpAddress[] | undefined;
  if (pool.peers && pool.peers.length > 0) {
    const r = resolvePeers(pool.peers, peers, `pool "${pool.name}" peers`);
    if (!r.ok) return r;
    allowed = r.peers;
  }
  const peerText = annotations[key('peers')];
  if (peerText !== undefined) {
    const refs = list(peerText);
    if (refs.length === 0) return { ok: false, error: `${field('peers')} is empty; list peer names or addresses, or remove it` };
    const r = resolvePeers(refs, peers, field('peers'));
    if (!r.ok) return r;
    const outside = allowed ? r.peers.filter((p) => !allowed!.includes(p)) : [];
    if (outside.length > 0) return { ok: false, error: `${field('peers')}: ${outside.join(', ')} not among pool "${pool.name}"'s peers (${allowed!.join(', ')})` };
    allowed = r.peers;
  }
  const communities = [...pool.communities];
  for (const c of list(annotations[key('communities')] ?? '')) {
    const m = COMMUNITY.exec(c);
    if (!m || Number(m[1]) > 65535 || Number(m[2]) > 65535) return { ok: false, error: `${field('communities')}: "${c}" is not a community (ASN:value, each 0..65535)` };
    communities.push(c);
  }
  const largeCommunities = [...pool.largeCommunities];
  for (const c of list(annotations[key('large-communities')] ?? '')) {
    const m = LARGE.exec(c);
    if (!m || m.slice(1).some((x) => Number(x) > 4294967295)) return { ok: false, error: `${field('large-communities')}: "${c}" is not a large community (ASN:value:value, each 0..4294967295)` };
    largeCommunities.push(c);
  }
  let localPref = pool.localPref;
  const lp = annotations[key('local-pref')];
  if (lp !== undefined) {
    if (!/^\d{1,10}$/.test(lp.trim()) || Number(lp.trim()) > 4294967295) return { ok: false, error: `${field('local-pref')}: "${lp}" is not a LOCAL_PREF (0..4294967295)` };
    localPref = Number(lp.trim());
  }
  return {
    ok: true,
    bgp: {
      communities: [...new Set(communities)].sort(),
      largeCommunities: [...new Set(largeCommunities)].sort(),
      ...(localPref !== undefined ? { localPref } : {}),
      ...(allowed ? { peers: allowed } : {}),
    },
  };
}
