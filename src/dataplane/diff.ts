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
import { nexthopAt, PackedVipRoutes } from './vip-routes.js';
import { IpBatch, type BatchChunk } from './ip-batch.js';

export { IpBatch, type BatchChunk };

const familyOfAddress = (address: string): IpFamily => (address.includes(':') ? 6 : 4);

function devOf(nexthop: string): string {
  return /\bdev (\S+)/.exec(nexthop)?.[1] ?? '';
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

/** fn(table, nexthop text) for each route, without route objects where the routes are packed. */
function eachRoute(routes: VipRoutes, fn: (table: number, nexthop: string) => void): void {
  if (routes instanceof PackedVipRoutes) routes.forEachTarget(fn);
  else for (const [table, r] of routes) fn(table, r.nexthop);
}

/**
 * `only`: the VIPs whose routes may differ (an incremental plan's changedVips); the routes
 * of all others are known to be the same objects on both sides and are not looked at.
 */
export function diffKernel(actual: KernelState, desired: KernelState, hash: HashParams, held: ReadonlySet<string> = new Set(), only?: ReadonlySet<string>): KernelChanges {
  const batch = { 4: new IpBatch(), 6: new IpBatch(6) };
  const removals = new IpBatch(undefined, true);
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
  // The same by text alone, per family: no key string made per route line.
  const idsByText = { 4: new Map<string, number>(), 6: new Map<string, number>() };
  const pick = (routes: ReadonlyMap<string, VipRoutes>): Iterable<readonly [string, VipRoutes]> =>
    only && recreated.size === 0 ? [...only].flatMap((vip) => (routes.has(vip) ? [[vip, routes.get(vip)!] as const] : [])) : routes;
  // Route lines are counted here and made only when written (ip-batch.ts): the first
  // programming of 10,000 VIPs is 2.56 million of them.
  for (const [vip, want] of pick(desired.routes)) {
    if (held.has(vip)) continue;
    const have = actual.routes.get(vip);
    if (have === want && recreated.size === 0) continue;
    if (want.size === 0) continue;
    const family = familyOfAddress(vip);
    const idOf = (nexthop: string): number => {
      const ids = idsByText[family];
      let id = ids.get(nexthop);
      if (id === undefined) {
        id = nhid.get(nexthopKey(family, nexthop));
        if (id === undefined) throw new Error(`no nexthop object planned for ${nexthop}`);
        ids.set(nexthop, id);
      }
      return id;
    };
    const needed = (table: number, nexthop: string): boolean => {
      const h = nexthopAt(have, table);
      return h !== nexthop || usesRecreated(h);
    };
    let count = 0;
    if (have === undefined && recreated.size === 0 && want instanceof PackedVipRoutes) {
      // A new VIP: every route, each of its few distinct targets checked once.
      for (const nexthop of want.nexthops()) idOf(nexthop);
      count = want.size;
    } else {
      eachRoute(want, (table, nexthop) => {
        if (!needed(table, nexthop)) return;
        idOf(nexthop);
        count += 1;
      });
    }
    batch[family].recipe({
      vip,
      count,
      write(out) {
        eachRoute(want, (table, nexthop) => {
          if (needed(table, nexthop)) out.push(routeReplaceLine({ family, table, dst: vip, nexthop }, idOf(nexthop)));
        });
      },
    });
    operations += count;
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
    const family = familyOfAddress(vip);
    // Routes on a link being deleted or recreated go with it.
    const gone = (table: number, nexthop: string): boolean => !want?.has(table) && !goesWithLink(nexthop);
    let count = 0;
    eachRoute(have, (table, nexthop) => void (gone(table, nexthop) && (count += 1)));
    batch[family].recipe({
      vip,
      count,
      write(out) {
        eachRoute(have, (table, nexthop) => {
          if (gone(table, nexthop)) out.push(routeDelLine({ family, table, dst: vip }));
        });
      },
    });
    operations += count;
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
  const ipBatches = [batch[4], batch[6], removals].filter((b) => b.size > 0);

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

