// The links the drivers create, described the same way from a desired spec and from
// `ip -json -details link` output, so that an unchanged link costs no operation.
import { createHash } from 'node:crypto';
import { GRE_ENDPOINT_LINK_PREFIX, GRE_LWT_LINK, VXLAN_LINK } from './layout.js';
import type { LinkSpec } from './state.js';
import { VXLAN_GATEWAY, VXLAN_GATEWAY6, VXLAN_NODE_MAC, VXLAN_POD_MAC } from '../system/vxlan-convention.js';

// The MACs and gateways both ends agree on: system/vxlan-convention.ts (podnet uses them too).
export { VXLAN_NODE_MAC, VXLAN_POD_MAC, VXLAN_GATEWAY, VXLAN_GATEWAY6 };

/** The gateway addresses whose permanent neighbours on the project's links are its own. */
const GATEWAYS: ReadonlySet<string> = new Set([VXLAN_GATEWAY, VXLAN_GATEWAY6]);

/**
 * The one `vxlan external` link (collect_md: it sends to IPv4 and IPv6 tunnel
 * destinations alike). `ipv6`: this node carries IPv6 VIPs, so the IPv6 gateway's
 * neighbour is needed; left out otherwise, since a node with IPv6 disabled refuses it.
 */
export function vxlanLink(port: number, ipv6: boolean): LinkSpec {
  const neighbours = new Map([[VXLAN_GATEWAY, VXLAN_POD_MAC]]);
  if (ipv6) neighbours.set(VXLAN_GATEWAY6, VXLAN_POD_MAC);
  return {
    name: VXLAN_LINK,
    spec: `vxlan external dstport ${port} address ${VXLAN_NODE_MAC} noarp up`,
    create: [
      `link add ${VXLAN_LINK} address ${VXLAN_NODE_MAC} type vxlan external dstport ${port} nolearning`,
      `link set ${VXLAN_LINK} arp off up`,
    ],
    neighbours,
  };
}

/** `ip -batch` line that makes (or corrects) one of a link's permanent neighbours. */
export function neighbourReplaceLine(link: string, address: string, lladdr: string): string {
  return `neigh replace ${address} lladdr ${lladdr} dev ${link} nud permanent`;
}

export function neighbourDelLine(link: string, address: string): string {
  return `neigh del ${address} dev ${link}`;
}

export function greLwtLink(): LinkSpec {
  return {
    name: GRE_LWT_LINK,
    spec: 'gre external up',
    create: [`link add ${GRE_LWT_LINK} type gre external`, `link set ${GRE_LWT_LINK} up`],
  };
}

/** `kst-g` + 8 hex digits of SHA-256 of the endpoint: stable across restarts, <= 15 chars. */
export function greEndpointLinkName(endpoint: string): string {
  return `${GRE_ENDPOINT_LINK_PREFIX}${createHash('sha256').update(endpoint).digest('hex').slice(0, 8)}`;
}

export function greEndpointLink(endpoint: string): LinkSpec {
  const name = greEndpointLinkName(endpoint);
  return {
    name,
    spec: `gre remote ${endpoint} up`,
    create: [`link add ${name} type gre remote ${endpoint}`, `link set ${name} up`],
  };
}

interface JsonLink {
  ifname?: string;
  flags?: string[];
  address?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}

export interface JsonNeigh {
  dst?: string;
  dev?: string;
  lladdr?: string;
}

/**
 * The canonical spec of a link from `ip -json -details link show`; anything unknown never
 * matches.
 */
export function describeLink(link: JsonLink): string {
  const flags = link.flags ?? [];
  const up = flags.includes('UP') ? 'up' : 'down';
  const kind = link.linkinfo?.info_kind;
  const data = link.linkinfo?.info_data ?? {};
  if (kind === 'vxlan') {
    const ext = data.external ? 'external' : `id ${String(data.id)}`;
    return `vxlan ${ext} dstport ${String(data.port)} address ${link.address ?? '?'} ${flags.includes('NOARP') ? 'noarp' : 'arp'} ${up}`;
  }
  if (kind === 'gre') {
    if (data.external) return `gre external ${up}`;
    return `gre remote ${String(data.remote ?? 'any')} ${up}`;
  }
  return `${kind ?? 'unknown'} ${up}`;
}

/**
 * The project's permanent neighbours on a link (`ip -json neigh show nud permanent`): only
 * the gateway addresses; any other entry on the link is someone else's and left alone.
 */
export function linkNeighbours(link: string, neighs: readonly JsonNeigh[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of neighs) if (n.dev === link && n.dst !== undefined && GATEWAYS.has(n.dst)) out.set(n.dst, n.lladdr ?? '?');
  return out;
}
