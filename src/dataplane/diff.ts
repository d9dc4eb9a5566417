// Pure: the kernel operations that turn one KernelState into another. Order inside each
// ip batch is make-before-break: links, nexthop objects, new/changed routes, new rules,
// then removals.
import type { IpFamily } from '../model/types.js';
import { linkDelLine, nexthopDelLine, nexthopReplaceLine, routeDelLine, routeReplaceLine, ruleLine } from './iproute.js';
import { neighbourDelLine, neighbourReplaceLine } from './links.js';
import { idsByKey } from './nexthops.js';
import { renderNftElementDiff, renderNftTable, fullTableOperations, type HashParams } from './nft.js';
import { NFT_TABLE } from './layout.js';
import { xtApplyScript, xtRemoveScript, type XtFamilyState } from './xt.js';
import { nexthopKey, type KernelState, type VipRoutes } from './state.js';
import { nexthopAt } from './vip-routes.js';

const familyOfAddress = (address: string): IpFamily => (address.includes(':') ? 6 : 4);

function devOf(nexthop: string): string {
  return /\bdev (\S+)/.exec(nexthop)?.[1] ?? '';
}

/** One `ip -force -batch -` run; `family` 6 runs it as `ip -6` (rules and nexthops take
 * their family from that option only). */
export interface IpBatch {
  readonly family?: 6;
  /**
   * Run only when every batch before it succeeded: removing a nexthop object also removes
   * the routes still leading to it, which they do when their replacement failed.
   */
  readonly afterSuccess?: boolean;
  readonly lines: readonly string[];
  /** VIP each line belongs to (undefined for links, nexthops and rules), to attribute failures. */
  readonly vips: readonly (string | undefined)[];
}

export interface KernelChanges {
  /**
   * Applied in order: the IPv4 batch (links first), the IPv6 batch, each make-before-break
   * (nexthop objects, routes, rules, then route and rule removals), and last the removal
   * of nexthop objects and links, only after the others succeeded. Empty batches are left out.
   */
  readonly ipBatches: readonly IpBatch[];
  /** One nft transaction; empty when nothing changes. */
  readonly nftScript: string;
  /** The script only adds and deletes elements and counters, one command per line. */
  readonly nftElementsOnly: boolean;
  /** `iptables-legacy-restore --noflush` / `ip6tables-legacy-restore --noflush` input; empty = none. */
  readonly xtScripts: { readonly v4: string; readonly v6: string };
  /** Kernel objects created, changed or deleted. */
  readonly operations: number;
}

class BatchBuilder {
  readonly lines: string[] = [];
  readonly vips: (string | undefined)[] = [];
  push(line: string, vip?: string): void {
    this.lines.push(line);
    this.vips.push(vip);
  }
}

/**
 * `only`: the VIPs whose routes may differ (an incremental plan's changedVips); the routes
 * of all others are known to be the same objects on both sides and are not looked at.
 */
export function diffKernel(actual: KernelState, desired: KernelState, hash: HashParams, held: ReadonlySet<string> = new Set(), only?: ReadonlySet<string>): KernelChanges {
  const batch = { 4: new BatchBuilder(), 6: new BatchBuilder() };
  const removals = new BatchBuilder();
  let operations = 0;

  // Links: a changed link is deleted and recreated; the kernel drops its routes and
  // nexthop objects with it.
  // Its permanent neighbours go in the batch of their family, before the nexthop objects
  // that use them (a refused IPv6 neighbour never holds up IPv4); one no longer wanted goes
  // with the removals, after the routes through it.
  const recreated = new Set<string>();
  const neighbourRemovals: string[] = [];
  for (const [name, want] of desired.links) {
    const have = actual.links.get(name);
    const same = have !== undefined && have.spec === want.spec;
    if (!same) {
      if (have) {
        batch[4].push(linkDelLine(name));
        recreated.add(name);
      }
      for (const line of want.create) batch[4].push(line);
      operations += 1;
    }
    const haveNeighbours = same ? (have.neighbours ?? new Map<string, string>()) : new Map<string, string>();
    for (const [address, lladdr] of want.neighbours ?? []) {
      if (haveNeighbours.get(address) === lladdr) continue;
      batch[familyOfAddress(address)].push(neighbourReplaceLine(name, address, lladdr));
      if (same) operations += 1;
    }
    for (const address of haveNeighbours.keys()) {
      if (want.neighbours?.has(address)) continue;
      neighbourRemovals.push(neighbourDelLine(name, address));
      operations += 1;
    }
  }
  const usesRecreated = (nexthop: string): boolean => recreated.size > 0 && recreated.has(devOf(nexthop));
  const deletedLinks = new Set([...actual.links.keys()].filter((n) => !desired.links.has(n)));
  const goesWithLink = (nexthop: string): boolean => {
    const dev = devOf(nexthop);
    return deletedLinks.has(dev) || recreated.has(dev);
  };

  // Nexthop objects before the routes that lead to them.
  if (actual.nexthops !== desired.nexthops) {
    for (const [id, want] of desired.nexthops) {
      const have = actual.nexthops.get(id);
      if (have && have.spec === want.spec && have.family === want.family && !usesRecreated(want.spec)) continue;
      batch[want.family].push(nexthopReplaceLine(want));
      operations += 1;
    }
  }
  const nhid = idsByKey(desired.nexthops);
  const pick = (routes: ReadonlyMap<string, VipRoutes>): Iterable<readonly [string, VipRoutes]> =>
    only && recreated.size === 0 ? [...only].flatMap((vip) => (routes.has(vip) ? [[vip, routes.get(vip)!] as const] : [])) : routes;
  for (const [vip, want] of pick(desired.routes)) {
    if (held.has(vip)) continue;
    const have = actual.routes.get(vip);
    if (have === want && recreated.size === 0) continue; // same planned object: unchanged
    for (const [table, route] of want) {
      const h = nexthopAt(have, table);
      if (h === route.nexthop && !usesRecreated(h)) continue;
      const id = nhid.get(nexthopKey(route.family, route.nexthop));
      if (id === undefined) throw new Error(`no nexthop object planned for ${route.nexthop}`);
      batch[route.family].push(routeReplaceLine(route, id), vip);
      operations += 1;
    }
  }
  // Same object = the plan reused it (fast path): nothing to compare.
  if (actual.rules !== desired.rules) {
    for (const [key, want] of desired.rules) {
      if (actual.rules.has(key)) continue;
      batch[want.family].push(ruleLine('add', want));
      operations += 1;
    }
    for (const [key, have] of actual.rules) {
      if (desired.rules.has(key)) continue;
      batch[have.family].push(ruleLine('del', have));
      operations += 1;
    }
  }
  for (const [vip, have] of pick(actual.routes)) {
    if (held.has(vip)) continue;
    const want = desired.routes.get(vip);
    if (have === want) continue;
    for (const [table, route] of have) {
      if (want?.has(table)) continue;
      // Routes on a link being deleted or recreated go with it.
      if (goesWithLink(route.nexthop)) continue;
      batch[route.family].push(routeDelLine(route), vip);
      operations += 1;
    }
  }
  // Objects no route leads to any more (deleting one would also delete routes using it).
  if (actual.nexthops !== desired.nexthops) {
    for (const [id, have] of actual.nexthops) {
      if (desired.nexthops.has(id) || goesWithLink(have.spec)) continue;
      removals.push(nexthopDelLine(id));
      operations += 1;
    }
  }
  for (const line of neighbourRemovals) removals.push(line);
  for (const name of deletedLinks) {
    removals.push(linkDelLine(name));
    operations += 1;
  }
  const ipBatches: IpBatch[] = [
    { lines: batch[4].lines, vips: batch[4].vips },
    { family: 6 as const, lines: batch[6].lines, vips: batch[6].vips },
    { afterSuccess: true, lines: removals.lines, vips: removals.vips },
  ].filter((b) => b.lines.length > 0);

  let nftScript = '';
  let nftElementsOnly = false;
  const sameNft = actual.nft === desired.nft;
  const wantTable = desired.nft.structure !== undefined;
  if (sameNft) {
    // unchanged since the last batch
  } else if (!wantTable) {
    if (actual.nft.structure !== undefined) {
      nftScript = `delete table inet ${NFT_TABLE}\n`;
      operations += 1;
    }
  } else if (actual.nft.structure !== desired.nft.structure) {
    nftScript = renderNftTable(desired.nft, hash);
    operations += fullTableOperations(desired.nft, hash);
  } else {
    const d = renderNftElementDiff(actual.nft, desired.nft);
    nftScript = d.script;
    nftElementsOnly = true;
    operations += d.operations;
  }
  const xtScript = (have: XtFamilyState, want: XtFamilyState): string => {
    if (have.fingerprint === want.fingerprint) return '';
    if (want.fingerprint === undefined) {
      operations += 1;
      return xtRemoveScript(have);
    }
    operations += want.rules;
    return xtApplyScript(want, have);
  };
  const xtScripts = { v4: xtScript(actual.xt.v4, desired.xt.v4), v6: xtScript(actual.xt.v6, desired.xt.v6) };
  return { ipBatches, nftScript, nftElementsOnly, xtScripts, operations };
}

/** Lines (array elements) of a batch. */
export function batchLineCount(b: IpBatch): number {
  return b.lines.length;
}

/** A batch's lines, `size` at a time; `first`: index of the chunk's first line in the batch. */
export function* batchChunks(b: IpBatch, size: number): Iterable<{ readonly first: number; readonly lines: readonly string[]; readonly vips: readonly (string | undefined)[] }> {
  for (let first = 0; first < b.lines.length; first += size) yield { first, lines: b.lines.slice(first, first + size), vips: b.vips.slice(first, first + size) };
}
