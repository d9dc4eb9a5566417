// Pure: the kernel operations that turn one KernelState into another. Order inside the
// ip batch is make-before-break: links, new/changed routes, new rules, then removals.
import { linkDelLine, routeDelLine, routeReplaceLine, ruleLine } from './iproute.js';
import { renderNftElementDiff, renderNftTable, fullTableOperations, type HashParams } from './nft.js';
import { NFT_TABLE } from './layout.js';
import { xtApplyScript, xtRemoveScript, type XtFamilyState } from './xt.js';
import type { KernelState } from './state.js';

function devOf(nexthop: string): string {
  return /\bdev (\S+)/.exec(nexthop)?.[1] ?? '';
}

export interface KernelChanges {
  /** Lines for one `ip -force -batch -`. */
  readonly ipLines: readonly string[];
  /** VIP each ip line belongs to (undefined for links and rules), to attribute failures. */
  readonly ipLineVips: readonly (string | undefined)[];
  /** IPv6 rule lines: `ip -6 -batch -` (ip rule has no per-line family). */
  readonly ip6RuleLines: readonly string[];
  /** One `nft -f -` transaction; empty when nothing changes. */
  readonly nftScript: string;
  /** `iptables-legacy-restore --noflush` / `ip6tables-legacy-restore --noflush` input; empty = none. */
  readonly xtScripts: { readonly v4: string; readonly v6: string };
  /** Kernel objects created, changed or deleted. */
  readonly operations: number;
}

export function diffKernel(actual: KernelState, desired: KernelState, hash: HashParams, held: ReadonlySet<string> = new Set()): KernelChanges {
  const ipLines: string[] = [];
  const ipLineVips: (string | undefined)[] = [];
  const push = (line: string, vip?: string): void => {
    ipLines.push(line);
    ipLineVips.push(vip);
  };
  let operations = 0;

  // Links: a changed link is deleted and recreated; the kernel drops its routes with it.
  const recreated = new Set<string>();
  for (const [name, want] of desired.links) {
    const have = actual.links.get(name);
    if (have && have.spec === want.spec) continue;
    if (have) {
      push(linkDelLine(name));
      recreated.add(name);
    }
    for (const line of want.create) push(line);
    operations += 1;
  }
  const usesRecreated = (nexthop: string): boolean => recreated.size > 0 && recreated.has(devOf(nexthop));

  const deletedLinks = new Set([...actual.links.keys()].filter((n) => !desired.links.has(n)));
  for (const [vip, want] of desired.routes) {
    if (held.has(vip)) continue;
    const have = actual.routes.get(vip);
    if (have === want && recreated.size === 0) continue; // same planned object: unchanged
    for (const [table, route] of want) {
      const h = have?.get(table);
      if (h && h.nexthop === route.nexthop && !usesRecreated(h.nexthop)) continue;
      push(routeReplaceLine(route), vip);
      operations += 1;
    }
  }
  const ip6RuleLines: string[] = [];
  // Same object = the plan reused it (fast path): nothing to compare.
  if (actual.rules !== desired.rules) {
    for (const [key, want] of desired.rules) {
      if (actual.rules.has(key)) continue;
      if (want.family === 6) ip6RuleLines.push(ruleLine('add', want));
      else push(ruleLine('add', want));
      operations += 1;
    }
    for (const [key, have] of actual.rules) {
      if (desired.rules.has(key)) continue;
      if (have.family === 6) ip6RuleLines.push(ruleLine('del', have));
      else push(ruleLine('del', have));
      operations += 1;
    }
  }
  for (const [vip, have] of actual.routes) {
    if (held.has(vip)) continue;
    const want = desired.routes.get(vip);
    if (have === want) continue;
    for (const [table, route] of have) {
      if (want?.has(table)) continue;
      // Routes on a link being deleted or recreated go with it.
      const dev = devOf(route.nexthop);
      if (deletedLinks.has(dev) || recreated.has(dev)) continue;
      push(routeDelLine(route), vip);
      operations += 1;
    }
  }
  for (const name of deletedLinks) {
    push(linkDelLine(name));
    operations += 1;
  }

  let nftScript = '';
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
    operations += d.operations;
  }
  const xtScript = (have: XtFamilyState, want: XtFamilyState): string => {
    if (have.fingerprint === want.fingerprint) return '';
    if (want.fingerprint === undefined) {
      operations += 1;
      return xtRemoveScript(have);
    }
    operations += want.rules;
    return xtApplyScript(want, have.jump ?? false);
  };
  const xtScripts = { v4: xtScript(actual.xt.v4, desired.xt.v4), v6: xtScript(actual.xt.v6, desired.xt.v6) };
  return { ipLines, ipLineVips, ip6RuleLines, nftScript, xtScripts, operations };
}
