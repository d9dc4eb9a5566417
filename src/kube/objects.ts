// Plain Kubernetes objects (JSON from the API server, or YAML documents for `kst
// validate`/`kst plan`) to the model's inputs. Pure and total: a malformed field becomes
// an ObjectIssue naming the object and the field path, never an exception; an object
// that cannot be used at all (no name, no service-name label) converts to undefined.
// Defaults follow the API: absent `ready` means ready, absent `serving` follows `ready`,
// absent namespace means "default" (as kubectl applies YAML).
import type { V1EndpointSlice, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import { EndpointPool, ipFamily, parseIp, NODE_BGP_ANNOTATION_PREFIX } from '../model/index.js';
import type { EndpointInput, EndpointSliceInput, IpAddress, NodeInput, PodInput, ServiceInput } from '../model/index.js';
import { TextPool } from '../system/index.js';

/**
 * A pod's address is listed in every EndpointSlice that selects it, a node's name in every
 * endpoint on it: one copy of each (system/intern.ts). Bounded far above a cluster's pods.
 */
const repeatedTexts = new TextPool(500_000);

/** The same pod in many Services' slices is one EndpointInput (model/endpoint-pool.ts); bounded likewise. */
const repeatedEndpoints = new EndpointPool(500_000);

export type ObjectKind = 'Service' | 'EndpointSlice' | 'Node' | 'Pod';

export interface ObjectIssue {
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
  /** Field path inside the object, e.g. "endpoints[1].addresses[0]". */
  readonly field: string;
  readonly message: string;
}

export interface Conversion<T> {
  /** Undefined when the object cannot be used at all. */
  readonly value?: T;
  readonly issues: readonly ObjectIssue[];
}

/** "Service default/web: spec.type: ..." */
export function describeIssue(i: ObjectIssue): string {
  return `${i.kind} ${i.namespace ? `${i.namespace}/` : ''}${i.name}: ${i.field ? `${i.field}: ` : ''}${i.message}`;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads fields of one object, recording issues with their path. */
class Reader {
  readonly issues: ObjectIssue[] = [];
  constructor(
    readonly kind: string,
    readonly name: string,
    readonly namespace?: string,
  ) {}

  issue(field: string, message: string): void {
    this.issues.push({ kind: this.kind, ...(this.namespace !== undefined ? { namespace: this.namespace } : {}), name: this.name, field, message });
  }

  object(v: unknown, field: string): Json {
    if (v === undefined || v === null) return {};
    if (isObject(v)) return v;
    this.issue(field, `expected an object, got ${show(v)}`);
    return {};
  }

  array(v: unknown, field: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (Array.isArray(v)) return v;
    this.issue(field, `expected a list, got ${show(v)}`);
    return [];
  }

  string(v: unknown, field: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    this.issue(field, `expected a string, got ${show(v)}`);
    return undefined;
  }

  bool(v: unknown, field: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    this.issue(field, `expected true or false, got ${show(v)}`);
    return undefined;
  }

  stringMap(v: unknown, field: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(this.object(v, field))) {
      if (typeof val === 'string') out[k] = val;
      else this.issue(`${field}["${k}"]`, `expected a string value, got ${show(val)} (quote it in YAML)`);
    }
    return out;
  }

  ip(v: unknown, field: string): IpAddress | undefined {
    const s = this.string(v, field);
    if (s === undefined) return undefined;
    const ip = parseIp(s);
    if (!ip) this.issue(field, `"${s}" is not an IP address`);
    return ip && repeatedTexts.intern(ip);
  }

  ips(values: unknown[], field: string): IpAddress[] {
    return values.map((v, i) => this.ip(v, `${field}[${i}]`)).filter((ip): ip is IpAddress => ip !== undefined);
  }
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Name and namespace first: every issue needs them. */
function identify(obj: unknown, kind: ObjectKind, namespaced: boolean): { r: Reader; meta: Json; ok: boolean } {
  const root = isObject(obj) ? obj : {};
  const meta = isObject(root.metadata) ? root.metadata : {};
  const name = typeof meta.name === 'string' && meta.name !== '' ? meta.name : undefined;
  const ns = namespaced ? (typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default') : undefined;
  const r = new Reader(kind, name ?? '(unnamed)', ns);
  if (!isObject(obj)) r.issue('', `expected an object, got ${show(obj)}`);
  if (name === undefined) r.issue('metadata.name', 'missing');
  return { r, meta, ok: name !== undefined && isObject(obj) };
}

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];

export function convertService(obj: unknown): Conversion<ServiceInput> {
  const { r, meta, ok } = identify(obj, 'Service', true);
  if (!ok) return { issues: r.issues };
  const o = obj as Json;
  const spec = r.object(o.spec, 'spec');
  const status = r.object(o.status, 'status');
  const creationTimestamp = timestampText(r, meta.creationTimestamp);
  const type = r.string(spec.type, 'spec.type') ?? 'ClusterIP';
  if (!SERVICE_TYPES.includes(type)) r.issue('spec.type', `"${type}" is not one of ${SERVICE_TYPES.join(', ')}`);
  const loadBalancerClass = r.string(spec.loadBalancerClass, 'spec.loadBalancerClass');
  const ranges = r
    .array(spec.loadBalancerSourceRanges, 'spec.loadBalancerSourceRanges')
    .map((v, i) => r.string(v, `spec.loadBalancerSourceRanges[${i}]`))
    .filter((v): v is string => v !== undefined);
  const lb = r.object(status.loadBalancer, 'status.loadBalancer');
  const statusIngressIps: string[] = [];
  r.array(lb.ingress, 'status.loadBalancer.ingress').forEach((ing, i) => {
    const ip = r.ip(r.object(ing, `status.loadBalancer.ingress[${i}]`).ip, `status.loadBalancer.ingress[${i}].ip`);
    if (ip) statusIngressIps.push(ip);
  });
  const ipFamilies: ('IPv4' | 'IPv6')[] = [];
  r.array(spec.ipFamilies, 'spec.ipFamilies').forEach((f, i) => {
    if (f === 'IPv4' || f === 'IPv6') ipFamilies.push(f);
    else r.issue(`spec.ipFamilies[${i}]`, `${show(f)} is not IPv4 or IPv6`);
  });
  const selector = r.stringMap(spec.selector, 'spec.selector');
  const value: ServiceInput = {
    namespace: r.namespace!,
    name: r.name,
    uid: r.string(meta.uid, 'metadata.uid') ?? '',
    creationTimestamp,
    type,
    ...(loadBalancerClass !== undefined ? { loadBalancerClass } : {}),
    annotations: r.stringMap(meta.annotations, 'metadata.annotations'),
    ...(meta.labels !== undefined ? { labels: r.stringMap(meta.labels, 'metadata.labels') } : {}),
    ...(typeof spec.loadBalancerIP === 'string' && spec.loadBalancerIP !== '' ? { loadBalancerIP: spec.loadBalancerIP } : {}),
    loadBalancerSourceRanges: ranges,
    statusIngressIps,
    hasSelector: Object.keys(selector).length > 0,
    ...(ipFamilies.length > 0 ? { ipFamilies } : {}),
  };
  return { value, issues: r.issues };
}

function timestampText(r: Reader, v: unknown): string {
  if (v instanceof Date) return v.toISOString().replace('.000Z', 'Z');
  const s = r.string(v, 'metadata.creationTimestamp');
  if (s === undefined) return ''; // offline YAML has none; age ties then go by namespace/name
  if (Number.isNaN(Date.parse(s))) r.issue('metadata.creationTimestamp', `"${s}" is not an RFC 3339 time`);
  return s;
}

const ADDRESS_TYPES = ['IPv4', 'IPv6', 'FQDN'] as const;

export function convertEndpointSlice(obj: unknown): Conversion<EndpointSliceInput> {
  const { r, meta, ok } = identify(obj, 'EndpointSlice', true);
  if (!ok) return { issues: r.issues };
  const o = obj as Json;
  const labels = r.stringMap(meta.labels, 'metadata.labels');
  const serviceName = labels['kubernetes.io/service-name'];
  if (!serviceName) r.issue('metadata.labels["kubernetes.io/service-name"]', 'missing: the slice belongs to no Service');
  const addressType = r.string(o.addressType, 'addressType');
  if (!ADDRESS_TYPES.includes(addressType as never)) r.issue('addressType', `${show(o.addressType)} is not one of IPv4, IPv6, FQDN`);
  if (!serviceName || !ADDRESS_TYPES.includes(addressType as never)) return { issues: r.issues };
  const type = addressType as EndpointSliceInput['addressType'];
  const endpoints: EndpointInput[] = [];
  r.array(o.endpoints, 'endpoints').forEach((raw, i) => {
    const field = `endpoints[${i}]`;
    const ep = r.object(raw, field);
    const c = r.object(ep.conditions, `${field}.conditions`);
    const ready = r.bool(c.ready, `${field}.conditions.ready`) ?? true;
    const serving = r.bool(c.serving, `${field}.conditions.serving`) ?? ready;
    const terminating = r.bool(c.terminating, `${field}.conditions.terminating`) ?? false;
    const listedNode = r.string(ep.nodeName, `${field}.nodeName`);
    const nodeName = listedNode === undefined ? undefined : repeatedTexts.intern(listedNode);
    const target = r.object(ep.targetRef, `${field}.targetRef`);
    const pod =
      target.kind === 'Pod' && typeof target.name === 'string'
        ? { namespace: typeof target.namespace === 'string' ? target.namespace : r.namespace!, name: target.name, ...(typeof target.uid === 'string' ? { uid: target.uid } : {}) }
        : undefined;
    const addresses = r.array(ep.addresses, `${field}.addresses`);
    if (addresses.length === 0) r.issue(`${field}.addresses`, 'empty: an endpoint needs an address');
    if (type === 'FQDN') return;
    addresses.forEach((a, j) => {
      const ip = r.ip(a, `${field}.addresses[${j}]`);
      if (!ip) return;
      if (`IPv${ipFamily(ip)}` !== type) {
        r.issue(`${field}.addresses[${j}]`, `${ip} is not an ${type} address (addressType ${type})`);
        return;
      }
      endpoints.push(repeatedEndpoints.intern({ address: ip, ...(nodeName !== undefined ? { nodeName } : {}), ready, serving, terminating, ...(pod ? { pod } : {}) }));
    });
  });
  // An exact-size copy: push() leaves up to half an array's capacity unused, and 10,000
  // slices keep theirs for as long as they do not change.
  return { value: { namespace: r.namespace!, name: r.name, serviceName, addressType: type, endpoints: endpoints.slice() }, issues: r.issues };
}

export function convertNode(obj: unknown): Conversion<NodeInput> {
  const { r, meta, ok } = identify(obj, 'Node', false);
  if (!ok) return { issues: r.issues };
  const o = obj as Json;
  const spec = r.object(o.spec, 'spec');
  const status = r.object(o.status, 'status');
  const internal: unknown[] = [];
  r.array(status.addresses, 'status.addresses').forEach((a, i) => {
    const addr = r.object(a, `status.addresses[${i}]`);
    if (addr.type === 'InternalIP') internal.push(addr.address);
  });
  let ready = false;
  r.array(status.conditions, 'status.conditions').forEach((c, i) => {
    const cond = r.object(c, `status.conditions[${i}]`);
    if (cond.type === 'Ready') ready = cond.status === 'True';
  });
  const taintKeys: string[] = [];
  r.array(spec.taints, 'spec.taints').forEach((t, i) => {
    const key = r.string(r.object(t, `spec.taints[${i}]`).key, `spec.taints[${i}].key`);
    if (key !== undefined) taintKeys.push(key);
  });
  const value: NodeInput = {
    name: r.name,
    labels: r.stringMap(meta.labels, 'metadata.labels'),
    internalIps: r.ips(internal, 'status.addresses[InternalIP]'),
    ready,
    unschedulable: r.bool(spec.unschedulable, 'spec.unschedulable') ?? false,
    taintKeys,
  };
  // Only the BGP annotations: others (kubeadm's, the CSI driver's) change on their own and
  // would make every such change a new NodeInput.
  const annotations = Object.fromEntries(Object.entries(r.stringMap(meta.annotations, 'metadata.annotations')).filter(([k]) => k.startsWith(NODE_BGP_ANNOTATION_PREFIX)));
  if (Object.keys(annotations).length > 0) return { value: { ...value, annotations }, issues: r.issues };
  return { value, issues: r.issues };
}

export function convertPod(obj: unknown): Conversion<PodInput> {
  const { r, meta, ok } = identify(obj, 'Pod', true);
  if (!ok) return { issues: r.issues };
  const o = obj as Json;
  const spec = r.object(o.spec, 'spec');
  const status = r.object(o.status, 'status');
  const listed = r.array(status.podIPs, 'status.podIPs').map((p, i) => r.object(p, `status.podIPs[${i}]`).ip);
  let podIps = r.ips(listed, 'status.podIPs');
  if (podIps.length === 0 && status.podIP !== undefined) podIps = r.ips([status.podIP], 'status.podIP');
  const containerIds: string[] = [];
  r.array(status.containerStatuses, 'status.containerStatuses').forEach((cs, i) => {
    const id = r.string(r.object(cs, `status.containerStatuses[${i}]`).containerID, `status.containerStatuses[${i}].containerID`);
    if (id) containerIds.push(id);
  });
  const nodeName = r.string(spec.nodeName, 'spec.nodeName');
  const value: PodInput = {
    namespace: r.namespace!,
    name: r.name,
    uid: r.string(meta.uid, 'metadata.uid') ?? '',
    ...(nodeName !== undefined ? { nodeName } : {}),
    podIps,
    hostNetwork: r.bool(spec.hostNetwork, 'spec.hostNetwork') ?? false,
    containerIds,
  };
  return { value, issues: r.issues };
}

/** The converters the kube area's SnapshotBuilder takes; issues go to `onIssue`. */
export function objectConverters(onIssue: (issue: ObjectIssue) => void = () => {}) {
  const unwrap =
    <T>(convert: (obj: unknown) => Conversion<T>) =>
    (obj: unknown): T | undefined => {
      const c = convert(obj);
      c.issues.forEach(onIssue);
      return c.value;
    };
  return { service: unwrap(convertService), endpointSlice: unwrap(convertEndpointSlice), node: unwrap(convertNode), pod: unwrap(convertPod) };
}

export interface ConvertedObjects {
  readonly services: ServiceInput[];
  readonly endpointSlices: EndpointSliceInput[];
  readonly nodes: NodeInput[];
  /** Every Pod, on any node (filter by node before building a ClusterSnapshot). */
  readonly pods: PodInput[];
  readonly issues: ObjectIssue[];
  /** Objects of other kinds ("apps/v1 Deployment"), counted, not converted. */
  readonly skipped: number;
}

/**
 * Converts a mixed list of objects, flattening `List` kinds (`kind: List`, `ServiceList`, ...).
 * Duplicates (same kind, namespace and name) are issues; the last one wins, like `kubectl apply`.
 */
export function convertObjects(objects: readonly unknown[]): ConvertedObjects {
  const out: ConvertedObjects = { services: [], endpointSlices: [], nodes: [], pods: [], issues: [], skipped: 0 };
  const seen = new Map<string, number>();
  const add = <T extends { name: string; namespace?: string }>(kind: string, list: T[], c: Conversion<T>) => {
    out.issues.push(...c.issues);
    if (!c.value) return;
    const k = `${kind}/${c.value.namespace ?? ''}/${c.value.name}`;
    const at = seen.get(k);
    if (at !== undefined) {
      out.issues.push({ kind, ...(c.value.namespace !== undefined ? { namespace: c.value.namespace } : {}), name: c.value.name, field: 'metadata.name', message: 'defined more than once; the last definition is used' });
      list[at] = c.value;
      return;
    }
    seen.set(k, list.length);
    list.push(c.value);
  };
  const visit = (obj: unknown): void => {
    if (obj === null || obj === undefined) return; // empty YAML document
    const kind = isObject(obj) && typeof obj.kind === 'string' ? obj.kind : undefined;
    if (kind !== undefined && kind.endsWith('List') && isObject(obj) && Array.isArray(obj.items)) {
      for (const item of obj.items) visit(item);
      return;
    }
    switch (kind) {
      case 'Service':
        return add('Service', out.services, convertService(obj));
      case 'EndpointSlice':
        return add('EndpointSlice', out.endpointSlices, convertEndpointSlice(obj));
      case 'Node':
        return add('Node', out.nodes, convertNode(obj));
      case 'Pod':
        return add('Pod', out.pods, convertPod(obj));
      case undefined:
        out.issues.push({ kind: '(unknown)', name: '(unknown)', field: 'kind', message: `missing; document starts ${show(obj)}` });
        return;
      default:
        (out as { skipped: number }).skipped++;
    }
  };
  objects.forEach(visit);
  return out;
}

// The client library's types, for callers that hold typed objects: the converters read
// the same fields by their JSON names, so typed objects serialised to JSON convert alike.
export type KubernetesInputObject = V1Service | V1EndpointSlice | V1Node | V1Pod;
