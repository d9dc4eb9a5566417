// Routes, nexthop objects, policy rules and links: `ip -batch` lines and `ip -json`
// readback parsing.
import type { IpFamily } from '../model/types.js';
import { ROUTE_PROTOCOL, inNexthopRange, isOwnedLink, isOwnedMark, isOwnedTable } from './layout.js';
import { describeLink, linkNeighbours, type JsonNeigh } from './links.js';
import { VipRoutesBuilder } from './vip-routes.js';
import { INLINE_SUFFIX, familyOf, ruleKey, ruleText, type LinkSpec, type NexthopSpec, type RouteSpec, type RuleSpec, type VipRoutes } from './state.js';

const hostLen = (f: IpFamily): number => (f === 4 ? 32 : 128);

/** A bucket route leads to a nexthop object (`nhid`), never to an inline nexthop. */
export function routeReplaceLine(r: RouteSpec, nhid: number): string {
  return `route replace ${r.dst}/${hostLen(r.family)} table ${r.table} proto ${ROUTE_PROTOCOL} nhid ${nhid}`;
}

export function nexthopReplaceLine(n: NexthopSpec): string {
  return `nexthop replace id ${n.id} proto ${ROUTE_PROTOCOL} ${n.spec}`;
}

export function nexthopDelLine(id: number): string {
  return `nexthop del id ${id}`;
}

export function routeDelLine(r: Pick<RouteSpec, 'dst' | 'family' | 'table'>): string {
  return `route del ${r.dst}/${hostLen(r.family)} table ${r.table} proto ${ROUTE_PROTOCOL}`;
}

/**
 * Rule lines carry no family: `ip rule` takes it only from the global -4/-6 option, so
 * IPv6 rules go in a second batch run with `ip -6` (rules change only with B).
 */
export function ruleLine(verb: 'add' | 'del', r: RuleSpec): string {
  return `rule ${verb} ${ruleText(r)} priority ${r.priority} protocol ${ROUTE_PROTOCOL}`;
}

export function linkDelLine(name: string): string {
  return `link del ${name}`;
}

// ---------- readback ----------

/**
 * `ip -json route` prints an `encap ip` route with two "dst" keys (the route's and the
 * tunnel's) in one object; JSON.parse would keep only the last. Rename every "dst" that
 * follows "encap" inside the same object to "encap_dst" before parsing.
 */
export function fixEncapDst(json: string): string {
  return json.replace(/("encap":"[^"]*"[^{}]*?)"dst":/g, '$1"encap_dst":');
}

export interface JsonRoute {
  dst?: string;
  nhid?: number;
  table?: string;
  dev?: string;
  gateway?: string;
  encap?: string;
  encap_dst?: string;
  id?: number;
  mode?: string;
  segs?: string[];
  labels?: string;
  csum?: boolean;
  via?: { family?: string; host?: string };
  flags?: string[];
}

/** The canonical nexthop of a readback route; the same text the drivers produce. */
export function describeNexthop(r: JsonRoute): string {
  const dev = r.dev ?? '?';
  switch (r.encap) {
    case undefined:
      return r.gateway ? `via ${r.gateway} dev ${dev}` : `dev ${dev}`;
    case 'ip':
    case 'ip6': {
      const via = r.gateway ? `via ${r.gateway} ` : '';
      const onlink = r.flags?.includes('onlink') ? ' onlink' : '';
      return `${via}dev ${dev}${onlink} encap ${r.encap}${r.id ? ` id ${r.id}` : ''} dst ${r.encap_dst ?? '?'}${r.csum ? ' csum' : ''}`;
    }
    case 'seg6':
      return `dev ${dev} encap seg6 mode ${r.mode ?? '?'} segs ${(r.segs ?? []).join(',')}`;
    case 'mpls': {
      const gw = r.gateway ?? r.via?.host ?? '?';
      return `encap mpls ${r.encap_dst ?? r.labels ?? '?'} via inet ${gw} dev ${dev}`;
    }
    default:
      return `unknown ${JSON.stringify(r)}`;
  }
}

/**
 * Routes from `ip -json -4|-6 route show table all proto 245`, only in the owned tables.
 * `canonical`: id -> text of the nexthop objects routes should lead to (canonicalNexthops).
 */
export function parseRoutes(json: string, family: IpFamily, tableBase: number, canonical: ReadonlyMap<number, string> = new Map()): RouteSpec[] {
  const out: RouteSpec[] = [];
  for (const r of JSON.parse(fixEncapDst(json || '[]')) as JsonRoute[]) {
    const route = readRoute(r, family, tableBase, canonical);
    if (route) out.push(route);
  }
  return out;
}

/** One route of `ip -json route` output (see parseRoutes); undefined: not one of ours. */
export function readRoute(r: JsonRoute, family: IpFamily, tableBase: number, canonical: ReadonlyMap<number, string>): RouteSpec | undefined {
  const table = Number(r.table);
  if (!r.dst || !Number.isInteger(table) || !isOwnedTable(tableBase, table)) return undefined;
  const dst = r.dst.replace(/\/(32|128)$/, '');
  if (familyOf(dst) !== family) return undefined;
  // Texts no plan produces, so the diff replaces such routes with ones leading to the
  // canonical object: an inline nexthop (older versions), a duplicate or foreign object.
  const nexthop = r.nhid === undefined ? describeNexthop(r) + INLINE_SUFFIX : (canonical.get(r.nhid) ?? `nhid ${r.nhid}`);
  return { family, table, dst, nexthop };
}

export interface NexthopReadback {
  /** Ours: protocol 245 and an id in the project's range. */
  readonly owned: NexthopSpec[];
  /** In the project's range but not ours. */
  readonly foreign: number[];
}

/**
 * Nexthop objects from `ip -json -4|-6 nexthop show`. Each object prints its own id first
 * and, with `encap ip`, the tunnel id again as "id": rename the first to "nhid" so
 * JSON.parse keeps both, then read the rest like a route.
 */
export function parseNexthops(json: string, family: IpFamily): NexthopReadback {
  const owned: NexthopSpec[] = [];
  const foreign: number[] = [];
  const fixed = fixEncapDst((json || '[]').replace(/\{"id":/g, '{"nhid":'));
  for (const n of JSON.parse(fixed) as (JsonRoute & { protocol?: string | number })[]) {
    const id = n.nhid;
    if (id === undefined || !inNexthopRange(id)) continue;
    if (String(n.protocol) !== String(ROUTE_PROTOCOL)) foreign.push(id);
    else owned.push({ id, family, spec: describeNexthop(n) });
  }
  return { owned, foreign };
}

interface JsonRule {
  priority?: number;
  not?: null;
  fwmark?: string;
  fwmask?: string;
  table?: string;
  goto?: number;
  nop?: null;
  protocol?: string;
}

/**
 * Our rules from `ip -json -4|-6 rule show`, protocol 245: bucket rules (an owned mark and
 * table), group and guard rules (an owned mark, goto) and the anchor (nop).
 */
export function parseRules(json: string, family: IpFamily, tableBase: number): RuleSpec[] {
  const out: RuleSpec[] = [];
  for (const r of JSON.parse(json || '[]') as JsonRule[]) {
    if (r.protocol !== String(ROUTE_PROTOCOL) || r.priority === undefined) continue;
    const mark = r.fwmark === undefined ? undefined : Number(r.fwmark);
    const mask = r.fwmask === undefined || Number(r.fwmask) === 0xffffffff ? undefined : Number(r.fwmask);
    if (mark !== undefined && !isOwnedMark(mark)) continue;
    let action: RuleSpec['action'];
    if (r.goto !== undefined && mark !== undefined) action = { goto: r.goto };
    else if ('nop' in r && mark === undefined) action = { nop: true };
    else if (r.table !== undefined && mark !== undefined && isOwnedTable(tableBase, Number(r.table))) action = { lookup: Number(r.table) };
    else continue;
    out.push({ family, priority: r.priority, ...(mark === undefined ? {} : { mark }), ...(mask === undefined ? {} : { mask }), ...('not' in r ? { not: true } : {}), action });
  }
  return out;
}

/** Our links from `ip -json -details link show` and `ip -json neigh show nud permanent`. */
export function parseLinks(json: string, neighJson = '[]'): LinkSpec[] {
  const out: LinkSpec[] = [];
  const neighs = JSON.parse(neighJson || '[]') as JsonNeigh[];
  for (const l of JSON.parse(json || '[]') as { ifname?: string }[]) {
    if (!l.ifname || !isOwnedLink(l.ifname)) continue;
    const neighbours = linkNeighbours(l.ifname, neighs);
    out.push({ name: l.ifname, spec: describeLink(l), create: [], ...(neighbours.size ? { neighbours } : {}) });
  }
  return out;
}

export function toRouteMap(routes: Iterable<RouteSpec>): Map<string, VipRoutes> {
  const byVip = new Map<string, VipRoutesBuilder>();
  for (const r of routes) {
    let b = byVip.get(r.dst);
    if (!b) byVip.set(r.dst, (b = new VipRoutesBuilder(r.family, r.dst)));
    b.add(r);
  }
  return new Map([...byVip].map(([vip, b]) => [vip, b.build()]));
}

export function toRuleMap(rules: readonly RuleSpec[]): Map<string, RuleSpec> {
  return new Map(rules.map((r) => [ruleKey(r), r]));
}
