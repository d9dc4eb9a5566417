// The flow-hash table: rendering (full table and element diffs) and readback parsing.
// The chains depend only on the hash parameters; per-VIP data lives in sets and maps, so
// a VIP change is a few element operations and never resets the per-VIP counters.
import { createHash } from 'node:crypto';
import type { IpFamily } from '../model/types.js';
import { MARK_MASK, NFT_HOOK_PRIORITY, NFT_POSTROUTING_PRIORITY, NFT_TABLE, PARITY_STRIDE, hex, type HashParams } from './layout.js';
import type { NftState } from './state.js';

export type { HashParams } from './layout.js';

/** A pinned flow idle this long is forgotten (its next packet hashes into the active parity). */
export const PIN_TIMEOUT_SECONDS = 600;
/** At most this many pinned flows per family; beyond it new flows are not pinned. */
export const PIN_MAP_SIZE = 262144;

interface ChainDef {
  readonly name: string;
  readonly hook?: string;
  readonly rules: readonly string[];
}

const FAMILIES: readonly IpFamily[] = [4, 6];
/** Pinning: ORs the VIP's active parity into the mark of packets that are not pinned. */
const GENERATION_CHAIN = 'generation';
/** The dynamic flow map (IPv4): filled from the packet path, never diffed or rewritten. */
export const PIN_MAP = 'pins';
/**
 * The IPv6 flow key: a 32-bit hash of the 5-tuple (its own seed, unrelated to the bucket
 * hash). Two flows with the same hash share one entry: the later one keeps the earlier
 * one's mark on this node (about 1 in 16,000 new flows with the map full).
 */
const PIN6_KEY = 'jhash ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport mod 4294967295 seed 0x70696e36';
const ip = (f: IpFamily): string => (f === 4 ? 'ip' : 'ip6');
const addrType = (f: IpFamily): string => (f === 4 ? 'ipv4_addr' : 'ipv6_addr');

/** Set and map names, per family. */
export const nftSets = {
  vips: (f: IpFamily) => `vips${f}`,
  restricted: (f: IpFamily) => `restricted${f}`,
  allowed: (f: IpFamily) => `allowed${f}`,
  counters: (f: IpFamily) => `counters${f}`,
  /** VIPs whose new flows use table parity 1 (pinning only). */
  parity1: (f: IpFamily) => `parity1_${f}`,
};

/** Named counter of one VIP: `vip4_203_0_113_10`, `vip6_2001_db8__10`. */
export function vipCounterName(vip: string): string {
  return `vip${vip.includes(':') ? 6 : 4}_${vip.replace(/[.:]/g, '_')}`;
}

function chains(p: HashParams): ChainDef[] {
  const hash = (expr: string): string => `meta mark set jhash ${expr} mod ${p.buckets} seed ${hex(p.seed)} offset ${hex(p.markBase)}`;
  const out: ChainDef[] = [
    { name: 'prerouting', hook: `type filter hook prerouting priority ${NFT_HOOK_PRIORITY}; policy accept;`, rules: FAMILIES.map((f) => `${ip(f)} daddr @${nftSets.vips(f)} jump vip${f}`) },
    // The mark has chosen the bucket table; after routing it only costs. A tunnel device
    // (VXLAN, GRE external) routes the outer packet with the skb's mark and may use its
    // cached route only for unmarked packets (ip_tunnel_dst_cache_usable), so a marked VIP
    // packet paid a full route lookup through the policy rules, per packet. Cleared here,
    // the encapsulation costs what it costs without the project. docs/dataplane.md.
    { name: 'postrouting', hook: `type filter hook postrouting priority ${NFT_POSTROUTING_PRIORITY}; policy accept;`, rules: [`meta mark & ${hex(MARK_MASK)} == ${hex(p.markBase & MARK_MASK)} meta mark set 0x0`] },
  ];
  // Pinning: the flow tables: flow -> the bucket+parity mark its first packet got. Later
  // packets get that mark back, so a flow keeps the table generation (and bucket) it
  // started on. Not conntrack: with direct server return the tunnel node sees one
  // direction only, and conntrack declares a TCP flow's ACKs invalid (no SYN-ACK seen),
  // which untracks them. nft 1.0.6 aborts on a dynamic map key longer than 16 bytes, so
  // IPv4 flows are keyed by addresses and ports (no protocol), IPv6 flows by a 32-bit hash
  // of the 5-tuple (docs/hitless.md, "Limits").
  const keys: Record<IpFamily, string> = { 4: 'ip saddr . ip daddr . th sport . th dport', 6: PIN6_KEY };
  for (const f of FAMILIES) {
    const a = ip(f);
    // Fragments (any of them, first included) and non-port protocols hash on addresses
    // only: later fragments carry no ports, and all fragments must land on one backend.
    // Nothing per flow to remember for them.
    const fragment = f === 4 ? 'ip frag-off & 0x3fff != 0' : 'exthdr frag exists';
    const filter = [`${a} daddr @${nftSets.restricted(f)} ${a} daddr . ${a} saddr != @${nftSets.allowed(f)} drop`, `counter name ${a} daddr map @${nftSets.counters(f)}`];
    if (!p.pin) {
      out.push({
        name: `vip${f}`,
        rules: [...filter, `${fragment} ${hash(`${a} saddr . ${a} daddr`)} accept`, `meta l4proto { tcp, udp, sctp } ${hash(`${a} saddr . ${a} daddr . meta l4proto . th sport . th dport`)} accept`, hash(`${a} saddr . ${a} daddr`)],
      });
      continue;
    }
    // With pinning the common packet, one of an established flow, is one map lookup and
    // one refresh of the entry's idle timeout (`update` keeps an entry's mark): the hash
    // and the parity are computed for a flow's first packet only. A lookup that misses
    // ends its rule, so the rules after it see new flows only.
    const parity = `${a} daddr @${nftSets.parity1(f)} meta mark set meta mark or ${hex(PARITY_STRIDE)}`;
    out.push({
      name: `vip${f}`,
      rules: [
        ...filter,
        `${fragment} ${hash(`${a} saddr . ${a} daddr`)} goto ${GENERATION_CHAIN}${f}`,
        `meta l4proto != { tcp, udp, sctp } ${hash(`${a} saddr . ${a} daddr`)} goto ${GENERATION_CHAIN}${f}`,
        // A TCP SYN (without ACK) starts a new connection: a pin left by an earlier one on
        // the same 5-tuple (pins outlive their connection by up to the idle timeout) would
        // send it to the generation that connection had, which after two table changes is
        // a newer table than the active one. Dropping the entry makes the SYN a first
        // packet: it hashes into the active parity and pins anew. (`update` alone keeps an
        // existing entry's mark; the map's `delete` takes a value, which it ignores.)
        `tcp flags & (syn | ack) == syn delete @${PIN_MAP}${f} { ${keys[f]} : meta mark }`,
        `meta mark set ${keys[f]} map @${PIN_MAP}${f} update @${PIN_MAP}${f} { ${keys[f]} : meta mark } accept`,
        hash(`${a} saddr . ${a} daddr . meta l4proto . th sport . th dport`),
        parity,
        `update @${PIN_MAP}${f} { ${keys[f]} : meta mark } accept`,
      ],
    });
    // The VIP's active table generation, for what is not pinned (fragments, portless).
    out.push({ name: `${GENERATION_CHAIN}${f}`, rules: [parity] });
  }
  return out;
}

function fingerprint(defs: readonly ChainDef[]): string {
  return `kst:${createHash('sha256').update(JSON.stringify(defs)).digest('hex').slice(0, 12)}`;
}

function structureOf(items: readonly { chain: string; hook: string; comments: readonly string[] }[]): string {
  return [...items]
    .sort((x, y) => (x.chain < y.chain ? -1 : x.chain > y.chain ? 1 : 0))
    .map((c) => `${c.chain}[${c.hook}]:${c.comments.join(',')}`)
    .join(' ');
}

/** What the readback must show for the chains to count as current. */
export function desiredStructure(p: HashParams): string {
  const defs = chains(p);
  const fp = fingerprint(defs);
  const hookOf = (text: string): string => {
    const m = /hook (\w+) priority (-?\d+)/.exec(text);
    return m ? `${m[1]} ${m[2]}` : '';
  };
  return structureOf(defs.map((d) => ({ chain: d.name, hook: d.hook ? hookOf(d.hook) : '', comments: d.rules.map(() => fp) })));
}

function setDecl(name: string, f: IpFamily): string {
  if (name.startsWith('allowed')) return `type ${addrType(f)} . ${addrType(f)}; flags interval;`;
  if (name.startsWith('counters')) return `type ${addrType(f)} : counter;`;
  return `type ${addrType(f)};`;
}

/** Every set and map the table declares, in rendering order (`pin`: also the parity sets). */
export function allSetNames(pin = false): string[] {
  return FAMILIES.flatMap((f) => [nftSets.vips(f), nftSets.restricted(f), nftSets.allowed(f), nftSets.counters(f), ...(pin ? [nftSets.parity1(f)] : [])]);
}

function familyOfSet(name: string): IpFamily {
  return name.endsWith('6') ? 6 : 4;
}

/** Canonical element -> nft syntax (map values are object names and need quotes). */
function renderElement(set: string, element: string): string {
  if (set.startsWith('counters')) {
    const [key, value] = element.split(' : ');
    return `${key} : "${value}"`;
  }
  return element;
}

function sorted(values: Iterable<string>): string[] {
  return [...values].sort();
}

/**
 * The whole table, replaced atomically (`table; delete table; table {...}` in one
 * transaction). Used when the chains are missing or stale; resets the counters.
 */
export function renderNftTable(state: NftState, p: HashParams): string {
  const defs = chains(p);
  const fp = fingerprint(defs);
  const lines = [`table inet ${NFT_TABLE}`, `delete table inet ${NFT_TABLE}`, `table inet ${NFT_TABLE} {`];
  for (const c of sorted(state.counters)) lines.push(`\tcounter ${c} { }`);
  for (const name of allSetNames(p.pin)) {
    const elements = sorted(state.elements.get(name) ?? []);
    const kind = name.startsWith('counters') ? 'map' : 'set';
    const body = elements.length ? ` elements = { ${elements.map((e) => renderElement(name, e)).join(', ')} }` : '';
    lines.push(`\t${kind} ${name} { ${setDecl(name, familyOfSet(name))}${body} }`);
  }
  if (p.pin) {
    lines.push(`\tmap ${PIN_MAP}4 { type ipv4_addr . ipv4_addr . inet_service . inet_service : mark; size ${PIN_MAP_SIZE}; flags dynamic,timeout; timeout ${PIN_TIMEOUT_SECONDS}s; }`);
    // Typed by `numgen`, which is the same type as the jhash key (a 32-bit integer): nft
    // 1.0.6 crashes listing a map typed by a jhash expression (`nft list ruleset` segfaults).
    lines.push(`\tmap ${PIN_MAP}6 { typeof numgen inc mod 2 : meta mark; size ${PIN_MAP_SIZE}; flags dynamic,timeout; timeout ${PIN_TIMEOUT_SECONDS}s; }`);
  }
  for (const d of defs) {
    lines.push(`\tchain ${d.name} {`);
    if (d.hook) lines.push(`\t\t${d.hook}`);
    for (const r of d.rules) lines.push(`\t\t${r} comment "${fp}"`);
    lines.push('\t}');
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** Operations a full table render performs (table + counters + elements + rules). */
export function fullTableOperations(state: NftState, p: HashParams): number {
  let n = 1 + state.counters.size;
  for (const e of state.elements.values()) n += e.size;
  for (const d of chains(p)) n += d.rules.length;
  return n;
}

export interface NftDiff {
  readonly script: string;
  readonly operations: number;
}

/** Element and counter changes only: the chains are current on both sides. */
export function renderNftElementDiff(actual: NftState, desired: NftState): NftDiff {
  const t = `inet ${NFT_TABLE}`;
  // Filter first, sort only the (usually tiny) difference: the sets hold every VIP.
  const missing = (from: ReadonlySet<string>, other: ReadonlySet<string>): string[] => sorted([...from].filter((e) => !other.has(e)));
  // The same set object on both sides (an incremental plan reuses them) has no difference.
  const sameCounters = desired.counters === actual.counters;
  const addCounters = sameCounters ? [] : missing(desired.counters, actual.counters);
  const delCounters = sameCounters ? [] : missing(actual.counters, desired.counters);
  const lines: string[] = addCounters.map((c) => `add counter ${t} ${c}`);
  let operations = addCounters.length + delCounters.length;
  const dels: string[] = [];
  const adds: string[] = [];
  // Sets absent on both sides yield nothing, so the pinning sets can always be listed.
  for (const name of allSetNames(true)) {
    const want = desired.elements.get(name) ?? new Set<string>();
    const have = actual.elements.get(name) ?? new Set<string>();
    if (want === have) continue;
    const del = missing(have, want);
    const add = missing(want, have);
    // Deletes first: an interval set refuses a new range that overlaps an old one.
    if (del.length) dels.push(`delete element ${t} ${name} { ${del.map((e) => renderElement(name, e)).join(', ')} }`);
    if (add.length) adds.push(`add element ${t} ${name} { ${add.map((e) => renderElement(name, e)).join(', ')} }`);
    operations += del.length + add.length;
  }
  lines.push(...dels, ...adds, ...delCounters.map((c) => `delete counter ${t} ${c}`));
  return { script: lines.length ? `${lines.join('\n')}\n` : '', operations };
}

// ---------- readback ----------

type JsonElem = unknown;
interface JsonObj {
  table?: { family: string; name: string };
  counter?: { name: string; table: string; packets: number; bytes: number };
  set?: { name: string; table: string; elem?: JsonElem[] };
  map?: { name: string; table: string; elem?: JsonElem[] };
  chain?: { name: string; table: string; hook?: string; prio?: number };
  rule?: { chain: string; table: string; comment?: string };
}

function elemText(e: JsonElem): string {
  if (typeof e === 'string' || typeof e === 'number') return String(e);
  if (Array.isArray(e)) return `${elemText(e[0])} : ${elemText(e[1])}`;
  if (e && typeof e === 'object') {
    const o = e as Record<string, unknown>;
    if ('concat' in o) return (o.concat as JsonElem[]).map(elemText).join(' . ');
    if ('prefix' in o) {
      const p = o.prefix as { addr: string; len: number };
      return `${p.addr}/${p.len}`;
    }
    if ('range' in o) return (o.range as JsonElem[]).map(elemText).join('-');
    if ('elem' in o) return elemText((o.elem as { val: JsonElem }).val);
  }
  return JSON.stringify(e);
}

/** Parses `nft -j list table inet kube_service_tunnel` (undefined text = table absent). */
export function parseNftTable(json: string | undefined): NftState {
  if (json === undefined) return { structure: undefined, elements: new Map(), counters: new Set() };
  const objs = (JSON.parse(json) as { nftables: JsonObj[] }).nftables;
  const counters = new Set<string>();
  const elements = new Map<string, Set<string>>();
  const chainList = new Map<string, { chain: string; hook: string; comments: string[] }>();
  for (const o of objs) {
    if (o.counter) counters.add(o.counter.name);
    const s = o.set ?? o.map;
    // The flow map is the packet path's, not the plan's: never compared, so not parsed.
    if (s && s.name !== `${PIN_MAP}4` && s.name !== `${PIN_MAP}6`) elements.set(s.name, new Set((s.elem ?? []).map(elemText)));
    if (o.chain) chainList.set(o.chain.name, { chain: o.chain.name, hook: o.chain.hook ? `${o.chain.hook} ${o.chain.prio ?? ''}` : '', comments: [] });
  }
  for (const o of objs) {
    if (o.rule) chainList.get(o.rule.chain)?.comments.push(o.rule.comment ?? '(none)');
  }
  return { structure: structureOf([...chainList.values()]), elements, counters };
}

export interface VipCounter {
  readonly vip: string;
  readonly packets: number;
  readonly bytes: number;
}

/** Parses `nft -j list counters table inet kube_service_tunnel` into per-VIP figures. */
export function parseVipCounters(json: string): VipCounter[] {
  const objs = (JSON.parse(json) as { nftables: JsonObj[] }).nftables;
  const out: VipCounter[] = [];
  for (const o of objs) {
    const c = o.counter;
    if (!c || c.table !== NFT_TABLE) continue;
    const m = /^vip([46])_(.+)$/.exec(c.name);
    if (!m) continue;
    const vip = m[1] === '4' ? m[2]!.replace(/_/g, '.') : m[2]!.replace(/_/g, ':');
    out.push({ vip, packets: c.packets, bytes: c.bytes });
  }
  return out.sort((a, b) => (a.vip < b.vip ? -1 : a.vip > b.vip ? 1 : 0));
}
