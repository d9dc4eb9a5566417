// `kst status`'s BGP table, like `show bgp summary`: state, up/down time, prefix counts,
// the BFD session to the same address and why the session last went down. An agent that
// sends none of these details gets the short table.
import type { BgpPeerReport } from '../observe/index.js';
import { ago, duration, oneLine, table } from './table.js';

/** The optional fields of BgpPeerReport that only the full table shows. */
const DETAIL_KEYS = [
  'adminDown',
  'downtimeSeconds',
  'prefixesReceived',
  'prefixesAccepted',
  'prefixesAdvertised',
  'bfdState',
  'lastError',
  'lastErrorAt',
] as const satisfies readonly (keyof BgpPeerReport)[];

function hasDetails(p: BgpPeerReport): boolean {
  return DETAIL_KEYS.some((k) => p[k] !== undefined);
}

function num(n: number | undefined): string {
  return n === undefined ? '-' : String(n);
}

/** The BGP peers table (lines, indented like the other tables of `kst status`). */
export function renderBgpPeers(peers: readonly BgpPeerReport[], now: Date): string[] {
  if (!peers.some(hasDetails)) {
    return table(['PEER', 'ASN', 'STATE', 'UPTIME'], peers.map((p) => [p.address, String(p.asn), p.state, duration(p.uptimeSeconds)]));
  }
  return table(
    ['PEER', 'ASN', 'STATE', 'UP/DOWN', 'RCVD', 'ACCEPTED', 'SENT', 'BFD', 'LAST ERROR'],
    peers.map((p) => [
      p.address,
      String(p.asn),
      p.adminDown ? `${p.state} (admin)` : p.state,
      duration(p.state === 'established' ? p.uptimeSeconds : p.downtimeSeconds),
      num(p.prefixesReceived),
      num(p.prefixesAccepted),
      num(p.prefixesAdvertised),
      p.bfdState ?? '-',
      p.lastError ? `${oneLine(p.lastError)}${p.lastErrorAt ? ` (${ago(p.lastErrorAt, now)})` : ''}` : '-',
    ]),
  );
}
