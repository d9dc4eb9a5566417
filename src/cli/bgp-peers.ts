// `kst status`'s BGP table, like `show bgp summary`: state, up/down time, prefix counts,
// the BFD session to the same address and why the session last went down. The extra
// fields ride on observe's bgpPeers rows (whose schema drops unknown keys), so they are
// read from the body here; an agent that does not send them gets the short table.
import { z } from 'zod';
import type { BgpPeerReport, StatusReport } from '../observe/index.js';
import type { BgpPeerDetailReport } from '../bgp/index.js';
import { ago, duration, oneLine, table } from './table.js';

export type DetailedStatusReport = Omit<StatusReport, 'bgpPeers'> & { readonly bgpPeers: readonly BgpPeerDetailReport[] };

const count = z.number().int().nonnegative();
const detailSchema = z.object({
  adminDown: z.boolean().optional(),
  downtimeSeconds: z.number().nonnegative().optional(),
  prefixesReceived: count.optional(),
  prefixesAccepted: count.optional(),
  prefixesAdvertised: count.optional(),
  bfdState: z.string().optional(),
  lastError: z.string().optional(),
  lastErrorAt: z.string().optional(),
});
const DETAIL_KEYS = Object.keys(detailSchema.shape) as Array<keyof z.infer<typeof detailSchema>>;

/**
 * Adds the per-peer details of a /status `body` to its checked `report`. Throws naming
 * the bad field, like parseStatusReport.
 */
export function withBgpPeerDetails(report: StatusReport, body: unknown): DetailedStatusReport {
  const raw = (body as { bgpPeers?: unknown[] } | null)?.bgpPeers ?? [];
  return {
    ...report,
    bgpPeers: report.bgpPeers.map((p, i) => {
      const parsed = detailSchema.safeParse(raw[i]);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new Error(`status: bgpPeers[${i}].${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
      }
      const extra: Record<string, unknown> = {};
      for (const k of DETAIL_KEYS) if (parsed.data[k] !== undefined) extra[k] = parsed.data[k];
      return { ...p, ...extra };
    }),
  };
}

function hasDetails(p: BgpPeerReport | BgpPeerDetailReport): p is BgpPeerDetailReport {
  return DETAIL_KEYS.some((k) => (p as unknown as Record<string, unknown>)[k] !== undefined);
}

function num(n: number | undefined): string {
  return n === undefined ? '-' : String(n);
}

/** The BGP peers table (lines, indented like the other tables of `kst status`). */
export function renderBgpPeers(peers: readonly (BgpPeerReport | BgpPeerDetailReport)[], now: Date): string[] {
  if (!peers.some(hasDetails)) {
    return table(['PEER', 'ASN', 'STATE', 'UPTIME'], peers.map((p) => [p.address, String(p.asn), p.state, duration(p.uptimeSeconds)]));
  }
  return table(
    ['PEER', 'ASN', 'STATE', 'UP/DOWN', 'RCVD', 'ACCEPTED', 'SENT', 'BFD', 'LAST ERROR'],
    peers.map((p) => {
      const d: BgpPeerDetailReport = p;
      return [
        d.address,
        String(d.asn),
        d.adminDown ? `${d.state} (admin)` : d.state,
        duration(d.state === 'established' ? d.uptimeSeconds : d.downtimeSeconds),
        num(d.prefixesReceived),
        num(d.prefixesAccepted),
        num(d.prefixesAdvertised),
        d.bfdState ?? '-',
        d.lastError ? `${oneLine(d.lastError)}${d.lastErrorAt ? ` (${ago(d.lastErrorAt, now)})` : ''}` : '-',
      ];
    }),
  );
}
