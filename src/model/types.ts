// The model's vocabulary: what the kube adapter parses API objects into (inputs), and
// what the model computes for one node (DesiredState). Every adapter (dataplane, podnet,
// bgp, bfd) consumes DesiredState and nothing else from Kubernetes.
// All values are immutable; addresses are canonical text (see ip.ts).

import type { NodeBgp } from './peers.js';

export type IpFamily = 4 | 6;

/** Canonical textual IP address (IPv6 compressed, lower case). Build with `parseIp`. */
export type IpAddress = string & { readonly __brand: 'IpAddress' };

/** Canonical CIDR text, network address with host bits cleared: "203.0.113.0/24". */
export type Cidr = string & { readonly __brand: 'Cidr' };

export type EncapMode = 'gre' | 'gre-lwt' | 'vxlan-lwt' | 'mpls';

export interface ServiceRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

// ---------- inputs (parsed from API objects by the kube area) ----------

export interface ServiceInput extends ServiceRef {
  /** RFC 3339, used to let the oldest Service win a contested VIP. */
  readonly creationTimestamp: string;
  readonly type: string;
  readonly loadBalancerClass?: string;
  /** All annotations; the model reads the tunnel annotation key from config. */
  readonly annotations: Readonly<Record<string, string>>;
  /** metadata.labels (pools[].serviceSelector); absent = none. */
  readonly labels?: Readonly<Record<string, string>>;
  /** spec.loadBalancerIP (deprecated in Kubernetes, still used): a requested address. */
  readonly loadBalancerIP?: string;
  readonly loadBalancerSourceRanges: readonly string[];
  /** IPs currently in status.loadBalancer.ingress (for LoadBalancer allocation). */
  readonly statusIngressIps: readonly string[];
  readonly hasSelector: boolean;
  /** spec.ipFamilies: families to allocate for LoadBalancer Services; absent means ["IPv4"]. */
  readonly ipFamilies?: readonly ('IPv4' | 'IPv6')[];
}

export interface EndpointInput {
  readonly address: IpAddress;
  readonly nodeName?: string;
  /** EndpointSlice conditions; absent `ready` means ready (API semantics). */
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly pod?: { readonly namespace: string; readonly name: string; readonly uid?: string };
}

export interface EndpointSliceInput {
  readonly namespace: string;
  readonly name: string;
  /** From the `kubernetes.io/service-name` label. */
  readonly serviceName: string;
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly endpoints: readonly EndpointInput[];
}

export interface NodeInput {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly internalIps: readonly IpAddress[];
  readonly ready: boolean;
  readonly unschedulable: boolean;
  readonly taintKeys: readonly string[];
  /** Only the keys starting with NODE_BGP_ANNOTATION_PREFIX (peers.ts); absent = none. */
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface PodInput {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly nodeName?: string;
  readonly podIps: readonly IpAddress[];
  readonly hostNetwork: boolean;
  /** Restart detection: changes when a sandbox is recreated with the same IP. */
  readonly containerIds: readonly string[];
}

/** Everything the model reads from Kubernetes; a snapshot, not a live view. */
export interface ClusterSnapshot {
  readonly services: readonly ServiceInput[];
  readonly endpointSlices: readonly EndpointSliceInput[];
  readonly nodes: readonly NodeInput[];
  /** Pods on this node only (the serving-node side needs them). */
  readonly localPods: readonly PodInput[];
}

// ---------- outputs (the desired state of one node) ----------

/** One backend of a VIP, in the stable order the bucket table indexes into. */
export interface Backend {
  readonly address: IpAddress;
  readonly nodeName?: string;
  readonly pod?: { readonly namespace: string; readonly name: string };
  /** Terminating but still serving: keeps existing flows, gets no new buckets. */
  readonly draining: boolean;
}

/**
 * Bucket -> index into a table's backends, read-only. The model builds the smallest typed
 * array that holds the indices (`bucketIndices` in maglev.ts: one or two bytes a bucket where
 * a number[] takes eight; at 10,000 VIPs x 256 buckets, 2.5-5 MB instead of 20 MB). Tables
 * made by hand (tests, fixtures) may be plain arrays. JSON.stringify writes a typed array
 * as an object: convert with Array.from where a list is wanted.
 */
export type BucketIndices = readonly number[] | Readonly<Uint8Array> | Readonly<Uint16Array> | Readonly<Uint32Array>;

/**
 * Bucket -> backend for one VIP: `buckets[i]` is an index into `backends`, for
 * i in 0..B-1. Draining backends appear in `backends` but in no bucket.
 */
export interface BucketTable {
  readonly backends: readonly Backend[];
  readonly buckets: BucketIndices;
  /** Increases whenever `buckets` changes (stored tables, issue 7); 0 when computed locally. */
  readonly generation: number;
}

export interface VipPlan {
  readonly vip: IpAddress;
  readonly family: IpFamily;
  readonly service: ServiceRef;
  readonly pool: string;
  /** Empty when the VIP has no ready endpoint; then it is not announced. */
  readonly table: BucketTable;
  /** Client prefixes allowed to reach the VIP; empty = everyone. */
  readonly sourceRanges: readonly Cidr[];
  readonly announced: boolean;
  /** Why it is (not) announced, for `kst status`: "ready endpoints", "no ready endpoints", ... */
  readonly announceReason: string;
  /**
   * Set when this node's kernel cannot carry the VIP (an IPv6 VIP whose encapsulation needs
   * seg6 on a kernel without it): neither announced nor programmed, whatever its endpoints.
   */
  readonly kernelMissing?: string;
}

export interface Announcement {
  /** Host route: VIP/32 or VIP/128. */
  readonly prefix: Cidr;
  readonly vip: IpAddress;
  readonly family: IpFamily;
  readonly communities: readonly string[];
  readonly largeCommunities: readonly string[];
  readonly localPref?: number;
  readonly service: ServiceRef;
  /** The only peers (addresses) that may receive it (pools[].peers, the Service's peers annotation); absent: every peer. */
  readonly peers?: readonly IpAddress[];
}

/** What the serving-node side must set up in one local pod's network namespace. */
export interface PodSetup {
  readonly pod: { readonly namespace: string; readonly name: string; readonly uid: string };
  /** The address that finds the pod's network namespace (its first pod IP). */
  readonly podIp: IpAddress;
  /**
   * All the pod's addresses (status.podIPs): a dual-stack pod is reached at its address of
   * each VIP's family (vxlan-lwt binds a VXLAN link per family to it). Absent: podIp only.
   */
  readonly podIps?: readonly IpAddress[];
  readonly containerIds: readonly string[];
  /** VIPs this pod serves, to be made local inside it. */
  readonly vips: readonly IpAddress[];
  readonly mode: EncapMode;
}

/** Something wrong with a user's object; becomes an Event and a log line. */
export interface Problem {
  readonly ref: { readonly kind: 'Service' | 'Pod' | 'Node'; readonly namespace?: string; readonly name: string; readonly uid?: string };
  /** UpperCamelCase Event reason, e.g. "InvalidTunnelAddress". */
  readonly reason: string;
  readonly message: string;
}

export interface DesiredState {
  readonly node: string;
  /** This node carries tunnel traffic (tunnel modes) or serves local endpoints (mpls). */
  readonly isTunnelNode: boolean;
  readonly mode: EncapMode;
  readonly bucketCount: number;
  readonly hashSeed: number;
  /** Sorted by VIP; includes VIPs without ready endpoints (not announced). */
  readonly vips: readonly VipPlan[];
  /** What this node announces, sorted by prefix. */
  readonly announcements: readonly Announcement[];
  /** Pod namespaces on this node to prepare, sorted by pod namespace/name. */
  readonly podSetups: readonly PodSetup[];
  readonly problems: readonly Problem[];
  /**
   * Set while this node may not attract traffic (maintenance taint, exclude-from-external-
   * load-balancers label, NotReady, gone; cordoned only with bgp.withdrawWhenCordoned): it announces nothing but keeps forwarding, and BFD goes AdminDown.
   */
  readonly maintenance?: string;
  /** The BGP sessions this node opens (peers.ts); absent when the settings list no peers field. */
  readonly bgp?: NodeBgp;
}
