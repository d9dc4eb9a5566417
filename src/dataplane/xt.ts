// Flow hashing with xtables HMARK, for kernels whose nf_tables lacks the ip/ip6/inet
// families (Debian's User-mode Linux kernel is one; KERNEL.md). Same marks, rules and
// tables as the nft path; HMARK itself hashes fragments on addresses only. Its hash is not
// nft's jhash: every tunnel node of a cluster must use the same backend.
//
// Owned objects: mangle chains KST-PREROUTING, KST-HASH and KST-POSTROUTING (IPv4 and
// IPv6), one jump from PREROUTING and one from POSTROUTING, each rule tagged `-m comment --comment kst:<fingerprint>`. Readback
// compares those fingerprints, so the exact `iptables-save` spelling of HMARK never matters.
import { createHash } from 'node:crypto';
import type { IpFamily } from '../model/types.js';
import { MARK_MASK, hex } from './layout.js';
import type { HashParams } from './layout.js';

export const XT_CHAIN = 'KST-PREROUTING';
export const XT_HASH_CHAIN = 'KST-HASH';
/** Clears a VIP packet's mark after routing (as the nft backend's postrouting chain). */
export const XT_POST_CHAIN = 'KST-POSTROUTING';
const OWN_CHAINS = [XT_CHAIN, XT_HASH_CHAIN, XT_POST_CHAIN] as const;

export interface XtVip {
  readonly vip: string;
  /** Allowed client prefixes; empty = everyone. */
  readonly allowed: readonly string[];
  readonly restricted: boolean;
}

/** One family's chains: fingerprint (undefined = absent) and the restore script that makes them. */
export interface XtFamilyState {
  readonly fingerprint: string | undefined;
  readonly script: string;
  readonly rules: number;
  /** Readback only: the jumps from PREROUTING and POSTROUTING, and our chains, exist. */
  readonly jump?: boolean;
  readonly postJump?: boolean;
  readonly chains?: boolean;
}

export interface XtState {
  readonly v4: XtFamilyState;
  readonly v6: XtFamilyState;
}

export const XT_ABSENT: XtFamilyState = { fingerprint: undefined, script: '', rules: 0 };
export const XT_NONE: XtState = { v4: XT_ABSENT, v6: XT_ABSENT };

const tag = (rule: string): string => `kst:${createHash('sha256').update(rule).digest('hex').slice(0, 10)}`;

/** The desired chains of one family. */
export function xtFamily(vips: readonly XtVip[], p: HashParams, family: IpFamily): XtFamilyState {
  const len = family === 4 ? 32 : 128;
  const rules: string[] = [];
  for (const v of [...vips].sort((a, b) => (a.vip < b.vip ? -1 : 1))) {
    if (!v.restricted) rules.push(`-A ${XT_CHAIN} -d ${v.vip}/${len} -j ${XT_HASH_CHAIN}`);
    else {
      for (const r of v.allowed) rules.push(`-A ${XT_CHAIN} -d ${v.vip}/${len} -s ${r} -j ${XT_HASH_CHAIN}`);
      rules.push(`-A ${XT_CHAIN} -d ${v.vip}/${len} -j DROP`);
    }
  }
  rules.push(`-A ${XT_HASH_CHAIN} -j HMARK --hmark-tuple src,dst,proto,sport,dport --hmark-mod ${p.buckets} --hmark-offset ${hex(p.markBase)} --hmark-rnd ${hex(p.seed)}`);
  // The mark has chosen the bucket table; a metadata tunnel device (GRE external) would
  // route the outer packet with it, bypassing its cached route (docs/dataplane.md, "Cost
  // per packet"). Mangle POSTROUTING runs after routing and before the device.
  rules.push(`-A ${XT_POST_CHAIN} -m mark --mark ${hex(p.markBase & MARK_MASK)}/${hex(MARK_MASK)} -j MARK --set-mark 0x0`);
  const tagged = rules.map((r) => {
    const [head, target] = r.split(' -j ') as [string, string];
    return { line: `${head} -m comment --comment ${tag(r)} -j ${target}`, fp: tag(r), chain: head.split(' ')[1]! };
  });
  const fingerprint = fingerprintOf(true, tagged.map((t) => ({ chain: t.chain, fp: t.fp })));
  const script = [
    '*mangle',
    `:${XT_CHAIN} - [0:0]`,
    `:${XT_HASH_CHAIN} - [0:0]`,
    `:${XT_POST_CHAIN} - [0:0]`,
    ...tagged.map((t) => t.line),
    'COMMIT',
    '',
  ].join('\n');
  return { fingerprint, script, rules: tagged.length };
}

/** iptables-save lists chains in its own order: compare chain by chain, rules in order. */
function fingerprintOf(jump: boolean, rules: readonly { chain: string; fp: string }[]): string {
  const byChain = OWN_CHAINS.map((c) => `${c}:${rules.filter((r) => r.chain === c).map((r) => r.fp).join(',')}`);
  return `jump=${jump} ${byChain.join(' ')}`;
}

/**
 * Parses `iptables-save` output (all existing tables; asking for `-t mangle` would create
 * the table) into our chains' state.
 */
export function parseXtSave(text: string): XtFamilyState {
  const all = text.split('\n');
  const start = all.indexOf('*mangle');
  const end = start < 0 ? -1 : all.indexOf('COMMIT', start);
  const lines = start < 0 ? [] : all.slice(start, end < 0 ? undefined : end);
  const chains = lines.some((l) => OWN_CHAINS.some((c) => l.startsWith(`:${c} `)));
  const jump = lines.some((l) => l.startsWith('-A PREROUTING') && l.includes(`-j ${XT_CHAIN}`));
  const postJump = lines.some((l) => l.startsWith('-A POSTROUTING') && l.includes(`-j ${XT_POST_CHAIN}`));
  if (!chains && !jump && !postJump) return { ...XT_ABSENT, jump, postJump, chains };
  const rules: { chain: string; fp: string }[] = [];
  for (const l of lines) {
    const m = /^-A (KST-PREROUTING|KST-HASH|KST-POSTROUTING) /.exec(l);
    if (!m) continue;
    rules.push({ chain: m[1]!, fp: /--comment "?(kst:[0-9a-f]+)"?/.exec(l)?.[1] ?? '(none)' });
  }
  // A version before KST-POSTROUTING reads back as stale (no post jump), and is completed.
  return { fingerprint: fingerprintOf(jump && postJump, rules), script: '', rules: rules.length, jump, postJump, chains };
}

/**
 * Restore input that makes the chains current: they are redeclared (flushed) and refilled,
 * and a missing jump is added.
 */
export function xtApplyScript(desired: XtFamilyState, actual: Pick<XtFamilyState, 'jump' | 'postJump'>): string {
  const jumps = [...(actual.jump ? [] : [`-I PREROUTING 1 -j ${XT_CHAIN}`]), ...(actual.postJump ? [] : [`-A POSTROUTING -j ${XT_POST_CHAIN}`])];
  return jumps.length ? desired.script.replace('COMMIT', `${jumps.join('\n')}\nCOMMIT`) : desired.script;
}

/** Restore input that removes our chains and the jump (only what exists). */
export function xtRemoveScript(actual: XtFamilyState): string {
  const lines = ['*mangle'];
  if (actual.jump) lines.push(`-D PREROUTING -j ${XT_CHAIN}`);
  if (actual.postJump) lines.push(`-D POSTROUTING -j ${XT_POST_CHAIN}`);
  if (actual.chains) lines.push(...OWN_CHAINS.map((c) => `:${c} - [0:0]`), ...OWN_CHAINS.map((c) => `-X ${c}`));
  lines.push('COMMIT', '');
  return lines.join('\n');
}
