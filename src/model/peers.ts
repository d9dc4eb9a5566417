// Which BGP peers one node dials, and with what: a peer's nodeSelector picks the nodes
// that dial it (MetalLB BGPPeer.spec.nodeSelectors, Cilium's nodeSelector), and a node's
// local ASN, router id and source addresses come, most specific first, from
//   1. the node's annotations (NODE_BGP_ANNOTATIONS; as kube-router's node annotations and
//      Cilium's CiliumBGPNodeConfigOverride: one value per node, set by whoever racks it),
//   2. the peer's own localAsn / sourceAddress (MetalLB BGPPeer myASN / sourceAddress: one
//      value per rack when the peer's selector is the rack),
//   3. bgp.asn / bgp.routerId (the cluster-wide default).
// Pure: the plan names a password's source (Secret or file), never its value.
import { ipFamily, parseIp } from './ip.js';
import { parseSelector, selectorMatches } from './selector.js';
import type { IpAddress, NodeInput, Problem } from './types.js';

/** Node annotations read by the model (fixed keys, documented in docs/bgp.md). */
export const NODE_BGP_ANNOTATIONS = {
  /** This node's local AS number ("64601"). */
  asn: 'cmd.nu/bgp-asn',
  /** This node's BGP router id (an IPv4 address). */
  routerId: 'cmd.nu/bgp-router-id',
  /** Source addresses of this node's sessions, comma-separated; each peer takes the one of its family. */
  sourceAddresses: 'cmd.nu/bgp-source-addresses',
} as const;

/** Annotation keys with this prefix are kept on NodeInput (kube/objects.ts); others are dropped. */
export const NODE_BGP_ANNOTATION_PREFIX = 'cmd.nu/bgp-';

export interface PeerSecretRef {
  readonly name: string;
  readonly key: string;
}

/** A configured peer, as the model reads it (structurally a subset of config's bgp.peers[]). */
export interface PeerSettings {
  readonly name?: string;
  readonly address: string;
  readonly asn: number;
  /** Label selector of the nodes that dial this peer; empty or absent: every node. */
  readonly nodeSelector?: string;
  readonly localAsn?: number;
  readonly sourceAddress?: string;
  readonly holdTimeSeconds: number;
  readonly keepaliveSeconds: number;
  readonly multihopTtl?: number;
  readonly bfdProfile?: string;
  readonly passwordSecretRef?: PeerSecretRef;
  readonly passwordFile?: string;
}

export interface BgpSettings {
  readonly asn?: number;
  readonly routerId?: string;
  readonly peers?: readonly PeerSettings[];
}

/** Where a session's password comes from; the model never holds the password itself. */
export type PasswordSource = { readonly kind: 'secret'; readonly name: string; readonly key: string } | { readonly kind: 'file'; readonly path: string };

/** One session this node opens. */
export interface NodePeer {
  /** bgp.peers[].name, or the address when unnamed. */
  readonly name: string;
  readonly address: IpAddress;
  readonly asn: number;
  readonly localAsn: number;
  /** Unset: the kernel picks the source address. */
  readonly sourceAddress?: IpAddress;
  readonly holdTimeSeconds: number;
  readonly keepaliveSeconds: number;
  readonly multihopTtl?: number;
  readonly bfdProfile?: string;
  readonly password?: PasswordSource;
  /** The peer's nodeSelector ("" = every node), for `kst plan`. */
  readonly nodeSelector: string;
}

export interface NodeBgp {
  /** gobgpd's global AS: the node annotation, else bgp.asn. */
  readonly asn: number;
  /** Unset: the agent uses its address towards the first peer (IPv4). */
  readonly routerId?: IpAddress;
  /** Where asn and routerId came from, for `kst plan`. */
  readonly asnFrom: 'node annotation' | 'bgp.asn';
  readonly routerIdFrom: 'node annotation' | 'bgp.routerId' | 'address towards the first peer';
  /** Sorted by address. */
  readonly peers: readonly NodePeer[];
}

const DEFAULT_ASN = 64512;

function nodeProblem(nodeName: string, message: string): Problem {
  return { ref: { kind: 'Node', name: nodeName }, reason: 'InvalidBgpNodeAnnotation', message };
}

function parseAsn(text: string): number | undefined {
  if (!/^\d{1,10}$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return n >= 1 && n <= 4294967295 ? n : undefined;
}

/** A stable text of a peer list, to tell whether the sessions must change. */
export function nodeBgpKey(b: NodeBgp | undefined): string {
  return JSON.stringify(b ?? null);
}

/**
 * The sessions of `nodeName`. An invalid node annotation is a Problem and the node dials no
 * peer at all (fail closed: a wrong ASN or a duplicate router id is worse than no session),
 * rather than dialling with half of its settings.
 */
export function nodeBgp(bgp: BgpSettings, nodeName: string, node: NodeInput | undefined): { readonly plan: NodeBgp; readonly problems: readonly Problem[] } {
  const problems: Problem[] = [];
  const ann = node?.annotations ?? {};
  const asnText = ann[NODE_BGP_ANNOTATIONS.asn];
  const ridText = ann[NODE_BGP_ANNOTATIONS.routerId];
  const srcText = ann[NODE_BGP_ANNOTATIONS.sourceAddresses];
  const nodeAsn = asnText === undefined ? undefined : parseAsn(asnText);
  if (asnText !== undefined && nodeAsn === undefined) problems.push(nodeProblem(nodeName, `metadata.annotations["${NODE_BGP_ANNOTATIONS.asn}"]: "${asnText}" is not an AS number (1..4294967295); this node opens no BGP session until it is fixed`));
  let routerId: IpAddress | undefined;
  if (ridText !== undefined) {
    const ip = parseIp(ridText.trim());
    if (!ip || ipFamily(ip) !== 4) problems.push(nodeProblem(nodeName, `metadata.annotations["${NODE_BGP_ANNOTATIONS.routerId}"]: "${ridText}" is not an IPv4 address (a router id is a dotted quad); this node opens no BGP session until it is fixed`));
    else routerId = ip;
  }
  const sources = new Map<4 | 6, IpAddress>();
  if (srcText !== undefined) {
    for (const part of srcText.split(',').map((s) => s.trim())) {
      const ip = parseIp(part);
      if (!ip) problems.push(nodeProblem(nodeName, `metadata.annotations["${NODE_BGP_ANNOTATIONS.sourceAddresses}"]: "${part}" is not an IP address; this node opens no BGP session until it is fixed`));
      else if (sources.has(ipFamily(ip))) problems.push(nodeProblem(nodeName, `metadata.annotations["${NODE_BGP_ANNOTATIONS.sourceAddresses}"]: more than one IPv${ipFamily(ip)} address; give one per family`));
      else sources.set(ipFamily(ip), ip);
    }
  }
  const cfgRid = bgp.routerId !== undefined ? parseIp(bgp.routerId) : undefined;
  const asn = nodeAsn ?? bgp.asn ?? DEFAULT_ASN;
  const plan: NodeBgp = {
    asn,
    ...(routerId ?? cfgRid ? { routerId: (routerId ?? cfgRid)! } : {}),
    asnFrom: nodeAsn !== undefined ? 'node annotation' : 'bgp.asn',
    routerIdFrom: routerId ? 'node annotation' : cfgRid ? 'bgp.routerId' : 'address towards the first peer',
    peers: [],
  };
  if (problems.length > 0 || !node) return { plan, problems };

  const peers: NodePeer[] = [];
  for (const p of bgp.peers ?? []) {
    const address = parseIp(p.address);
    if (!address) continue; // config validation reports it
    const selector = parseSelector(p.nodeSelector ?? '');
    if (!selector.ok || !selectorMatches(selector.selector, node.labels)) continue;
    const fam = ipFamily(address);
    const configured = p.sourceAddress !== undefined ? parseIp(p.sourceAddress) : undefined;
    const source = sources.get(fam) ?? (configured && ipFamily(configured) === fam ? configured : undefined);
    const password: PasswordSource | undefined = p.passwordSecretRef
      ? { kind: 'secret', name: p.passwordSecretRef.name, key: p.passwordSecretRef.key }
      : p.passwordFile !== undefined
        ? { kind: 'file', path: p.passwordFile }
        : undefined;
    peers.push({
      name: p.name ?? address,
      address,
      asn: p.asn,
      // A per-node ASN is the node's AS towards every peer; else the peer's, else the global.
      localAsn: nodeAsn ?? p.localAsn ?? asn,
      ...(source ? { sourceAddress: source } : {}),
      holdTimeSeconds: p.holdTimeSeconds,
      keepaliveSeconds: p.keepaliveSeconds,
      ...(p.multihopTtl !== undefined ? { multihopTtl: p.multihopTtl } : {}),
      ...(p.bfdProfile !== undefined ? { bfdProfile: p.bfdProfile } : {}),
      ...(password ? { password } : {}),
      nodeSelector: p.nodeSelector ?? '',
    });
  }
  peers.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { plan: { ...plan, peers }, problems };
}
