// Pure: connection pinning's two table generations (docs/hitless.md, "Connection pinning").
// Each VIP has an active parity; new flows hash into that parity's tables, established
// flows keep the mark the flow map (nft.ts) recorded. A changed bucket table is written
// into the inactive parity, which then becomes active, so the previous generation stays
// routable for the flows pinned to it until the VIP's next change overwrites it.
import { bucketTable, type Parity } from './layout.js';
import type { KernelState, VipRoutes } from './state.js';
import { INLINE_SUFFIX, familyOf, sameTarget } from './state.js';
import { nftSets } from './nft.js';
import { nexthopAt, VipRoutesBuilder } from './vip-routes.js';

/** The nexthop texts a VIP's flows may still be pinned to (its serving and draining backends). */
export interface LiveTargets {
  has(nexthop: string): boolean;
}

export interface PinnedVip {
  readonly routes: VipRoutes;
  readonly parity: Parity;
}

/** The parity each VIP is active on in a kernel state (readback or last applied). */
export function activeParities(state: KernelState | undefined): (vip: string) => Parity {
  const p1 = {
    4: state?.nft.elements.get(nftSets.parity1(4)),
    6: state?.nft.elements.get(nftSets.parity1(6)),
  };
  return (vip) => (p1[familyOf(vip)]?.has(vip) ? 1 : 0);
}

/**
 * Whether flows pinned to this route can still be served where it leads: its endpoint is
 * still one of the VIP's backends (serving or draining). A route to an endpoint that is
 * gone can be rewritten in place: its flows are lost whichever generation they stay on.
 * Without `live`, every endpoint counts as alive.
 */
function leadsToLive(nexthop: string, live: LiveTargets | undefined): boolean {
  if (!live) return true;
  const target = nexthop.endsWith(INLINE_SUFFIX) ? nexthop.slice(0, -INLINE_SUFFIX.length) : nexthop;
  return live.has(target) || /^nhid \d+$/.test(target); // an unknown object: assume alive
}

function routesLike(fresh: VipRoutes): VipRoutesBuilder {
  const first = fresh.values().next().value!;
  return new VipRoutesBuilder(first.family, first.dst);
}

/**
 * Places a VIP's freshly planned routes (`fresh`: parity-0 tables, bucket i in
 * tableBase+i) next to what the kernel has. The active parity is kept when none of its
 * routes contradicts the new table, or every route that does leads to an endpoint that is
 * gone (`live`: nexthop texts of the VIP's remaining backends); those and missing routes
 * are written in place. Otherwise the new table goes into the other parity, which becomes
 * active, and the old active parity's routes stay as they are for the flows pinned there.
 * Returns `have` itself when nothing changes (the diff skips it by reference).
 */
export function pinGenerations(fresh: VipRoutes, have: VipRoutes | undefined, haveParity: Parity, tableBase: number, buckets: number, live?: LiveTargets): PinnedVip {
  if (fresh.size === 0) return { routes: fresh, parity: 0 };
  // Nothing in the kernel for this VIP (a first programming): the fresh routes as they are.
  if (have === undefined && haveParity === 0) return { routes: fresh, parity: 0 };
  const at = (p: Parity, i: number): number => bucketTable(tableBase, i, p);
  let conflict = false;
  for (let i = 0; i < buckets && !conflict; i++) {
    const want = nexthopAt(fresh, at(0, i));
    const h = nexthopAt(have, at(haveParity, i));
    if (h !== undefined && (want === undefined || !sameTarget({ nexthop: h }, { nexthop: want })) && leadsToLive(h, live)) conflict = true;
  }
  const parity: Parity = conflict ? (haveParity === 0 ? 1 : 0) : haveParity;
  const other: Parity = parity === 0 ? 1 : 0;
  const routes = routesLike(fresh);
  let same = have !== undefined;
  for (let i = 0; i < buckets; i++) {
    const want = nexthopAt(fresh, at(0, i));
    if (want === undefined) continue;
    const table = at(parity, i);
    if (nexthopAt(have, table) !== want) same = false;
    routes.set(table, want);
  }
  // The other parity keeps the previous generation for flows pinned to it (only within
  // the current bucket range: after a change of B no mark points above it).
  if (have) {
    for (let i = 0; i < buckets; i++) {
      const table = at(other, i);
      const h = nexthopAt(have, table);
      if (h !== undefined) routes.set(table, h);
    }
  }
  if (same && routes.size === have!.size) return { routes: have!, parity };
  // Nothing kept from another generation: the fresh routes themselves (no second copy).
  if (parity === 0 && routes.size === fresh.size) return { routes: fresh, parity };
  return { routes: routes.build(), parity };
}
