// The orphan sweep's pure half: which namespaces are pods of this node, which objects in
// them are exactly what this area creates, and the plan that removes those. A pod loses
// its VIPs while the agent is down: the restarted agent never visits it again, so its
// objects would stay until the pod is deleted. The sweep finds them in the namespaces the
// desired set does not claim; reconcile.ts decides when and applies the plan.
import { cidrContains, hostPrefix, parseCidr, parseIp, type Cidr } from '../model/index.js';
import { ROUTE_PROTOCOL, ROUTE_PROTOCOL_NAME } from '../system/index.js';
import { GRE_POD_LINK } from './modes/gre.js';
import { LO_LABEL } from './modes/mode.js';
import { VXLAN_POD_LINK, VXLAN_POD_LINK6, VXLAN_POD_MAC } from './modes/vxlan-lwt.js';
import { NO_OBJECTS, type KernelLink, type KernelMplsRoute, type PodKernelState } from './objects.js';
import { planPod, type PodPlan } from './plan.js';

/**
 * Parses the node's pod ranges: CIDRs (a Node's spec.podCIDRs) or single addresses (the
 * local pods' IPs). Entries that are neither come back in `invalid`.
 */
export function parsePodRanges(entries: Iterable<string>): { ranges: Cidr[]; invalid: string[] } {
  const ranges: Cidr[] = [];
  const invalid: string[] = [];
  for (const e of entries) {
    const ip = e.includes('/') ? undefined : parseIp(e);
    const cidr = ip ? hostPrefix(ip) : parseCidr(e, false);
    if (cidr) ranges.push(cidr);
    else invalid.push(e);
  }
  return { ranges, invalid };
}

const addressesOf = (links: readonly KernelLink[]): Set<string> => new Set(links.flatMap((l) => l.addresses.map((a) => a.address)));

/**
 * The links this area makes in a pod, recognised by their full shape, not by prefix alone:
 * the tunnel side uses the same names in its own namespace (`kst-vxlan` external with the
 * node MAC, `kst-gre` external), and nothing but the exact pod-side form is ever swept.
 *  - kst-vxlan, kst-vxlan6: vxlan with the pod MAC, bound (`local`) to one of the namespace's
 *    addresses (IPv4 and IPv6 VIPs: one link per family);
 *  - kst-gre: gre/ip6gre, bound to one of the namespace's addresses (gre) or external
 *    (gre-lwt; the pod-range check is what keeps a tunnel node's kst-gre out).
 */
export function podSideLinks(links: readonly KernelLink[]): KernelLink[] {
  const mine = addressesOf(links);
  const boundHere = (l: KernelLink) => [l.info.local, l.info.local6].some((a) => typeof a === 'string' && mine.has(a));
  return links.filter((l) => {
    if (l.name === VXLAN_POD_LINK || l.name === VXLAN_POD_LINK6) {
      return l.kind === 'vxlan' && l.mac?.toLowerCase() === VXLAN_POD_MAC.toLowerCase() && l.info.external !== true && boundHere(l);
    }
    if (l.name === GRE_POD_LINK) return (l.kind === 'gre' || l.kind === 'ip6gre') && (l.info.external === true || boundHere(l));
    return false;
  });
}

/** IPv4 addresses on lo labelled lo:kst (mpls mode's VIPs). */
export function labelledLoAddresses(links: readonly KernelLink[]): string[] {
  return links.filter((l) => l.name === 'lo').flatMap((l) => l.addresses.filter((a) => a.label === LO_LABEL).map((a) => `${a.address}/${a.prefixLen}`));
}

/** The namespace holds one of our markers (read from the discovery scan: links only). */
export function hasMarkers(links: readonly KernelLink[]): boolean {
  return podSideLinks(links).length > 0 || labelledLoAddresses(links).length > 0;
}

/**
 * A pod of this node: an address that is not one of ours (VIPs on our links, lo:kst) lies
 * in the node's pod ranges. The host is never a candidate; tunnel-node namespaces and other
 * nodes' pods in a lab on one machine fail this test.
 */
export function isPodNamespace(links: readonly KernelLink[], ranges: readonly Cidr[]): boolean {
  const ours = new Set(podSideLinks(links).map((l) => l.name));
  const inRanges = (address: string) => {
    const ip = parseIp(address);
    return ip !== undefined && ranges.some((r) => cidrContains(r, ip));
  };
  return links.some((l) => !ours.has(l.name) && l.addresses.some((a) => a.label !== LO_LABEL && a.scope !== 'link' && inRanges(a.address)));
}

/** mpls mode's route: `LABEL dev lo proto 245` (readPodKernelState keeps only proto 245). */
const podSideMplsRoute = (r: KernelMplsRoute) => r.dev === 'lo' && (r.protocol === String(ROUTE_PROTOCOL) || r.protocol === ROUTE_PROTOCOL_NAME);

export interface OrphanRemoval {
  readonly plan: PodPlan;
  /** What goes, for the log: "link kst-vxlan (203.0.113.250/32)", "address 203.0.113.9/32 on lo", "mpls route 100". */
  readonly removed: readonly string[];
  readonly counts: { readonly link: number; readonly address: number; readonly mplsRoute: number };
}

/**
 * The plan that removes exactly the pod-side objects from a namespace no pod wants: the
 * read-back is narrowed to them before the ordinary diff against nothing, so planPod's wider
 * "every kst* link" rule never applies here. Settings are not touched: their original values
 * were only ever kept in the memory of the agent that changed them.
 */
export function orphanRemoval(actual: PodKernelState): OrphanRemoval {
  const links = podSideLinks(actual.links);
  const lo = actual.links.filter((l) => l.name === 'lo').map((l) => ({ ...l, addresses: l.addresses.filter((a) => a.label === LO_LABEL) }));
  const mplsRoutes = actual.mplsRoutes.filter(podSideMplsRoute);
  const plan = planPod(NO_OBJECTS, { links: [...links, ...lo], mplsRoutes, sysctls: new Map() }, new Map());
  const loAddrs = labelledLoAddresses(actual.links);
  const removed = [
    ...links.map((l) => `link ${l.name}${l.addresses.some((a) => a.scope !== 'link') ? ` (${l.addresses.filter((a) => a.scope !== 'link').map((a) => `${a.address}/${a.prefixLen}`).join(', ')})` : ''}`),
    ...loAddrs.map((a) => `address ${a} on lo`),
    ...mplsRoutes.map((r) => `mpls route ${r.label}`),
  ];
  return { plan, removed, counts: { link: links.length, address: loAddrs.length, mplsRoute: mplsRoutes.length } };
}
