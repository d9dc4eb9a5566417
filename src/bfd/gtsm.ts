// RFC 5881 section 5 (GTSM): single-hop BFD packets must arrive with TTL / hop limit 255,
// proving they were not forwarded. Node's sockets cannot read a datagram's TTL, so the
// kernel checks it: an nftables table of the project's own drops every other BFD packet
// before it reaches the agent's socket.
import { NFT_TABLE, runCommand, type CommandRunner } from '../system/index.js';
import { BFD_CONTROL_PORT } from './transport.js';

/** Our own table, named after the project's so ownership is recognisable and clean-up finds it. */
export const GTSM_TABLE = `${NFT_TABLE}_bfd`;

/** The ruleset, as applied (tests compare it; `nft -f -` applies it in one transaction). */
export function gtsmRuleset(): string {
  // "add table" + "flush table" + full definition: idempotent and atomic in one nft run.
  return [
    `add table inet ${GTSM_TABLE}`,
    `flush table inet ${GTSM_TABLE}`,
    `table inet ${GTSM_TABLE} {`,
    '\tchain input {',
    // Before the usual filter chains (priority 0) so the check holds whatever else is loaded.
    '\t\ttype filter hook input priority -10; policy accept;',
    `\t\tudp dport ${BFD_CONTROL_PORT} ip ttl != 255 counter drop comment "bfd-gtsm-ipv4"`,
    `\t\tudp dport ${BFD_CONTROL_PORT} ip6 hoplimit != 255 counter drop comment "bfd-gtsm-ipv6"`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

export interface GtsmOptions {
  readonly run?: CommandRunner;
  /** Network namespace to program (tests, the lab); the agent programs its own. */
  readonly netns?: string;
}

/** Installs (or repairs) the TTL check. Idempotent. */
export async function ensureGtsm(opts: GtsmOptions = {}): Promise<void> {
  const run = opts.run ?? runCommand;
  await run('nft', ['-f', '-'], { input: gtsmRuleset(), ...(opts.netns ? { netns: opts.netns } : {}), timeoutMs: 10000 });
}

/** Removes the table; touches nothing else. Absent table is fine. */
export async function removeGtsm(opts: GtsmOptions = {}): Promise<void> {
  const run = opts.run ?? runCommand;
  await run('nft', ['delete', 'table', 'inet', GTSM_TABLE], { allowFailure: true, ...(opts.netns ? { netns: opts.netns } : {}), timeoutMs: 10000 });
}

/** Packets dropped so far by the IPv4 and IPv6 rules (for status and tests). */
export async function gtsmDrops(opts: GtsmOptions = {}): Promise<{ ipv4: number; ipv6: number }> {
  const run = opts.run ?? runCommand;
  const r = await run('nft', ['-j', 'list', 'table', 'inet', GTSM_TABLE], { ...(opts.netns ? { netns: opts.netns } : {}), timeoutMs: 10000 });
  const out = { ipv4: 0, ipv6: 0 };
  const parsed = JSON.parse(r.stdout) as { nftables?: Array<{ rule?: { comment?: string; expr?: Array<{ counter?: { packets: number } }> } }> };
  for (const item of parsed.nftables ?? []) {
    const rule = item.rule;
    if (!rule) continue;
    const packets = rule.expr?.find((e) => e.counter)?.counter?.packets ?? 0;
    if (rule.comment === 'bfd-gtsm-ipv4') out.ipv4 = packets;
    if (rule.comment === 'bfd-gtsm-ipv6') out.ipv6 = packets;
  }
  return out;
}
