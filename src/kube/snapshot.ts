// From the informers' objects to the model's ClusterSnapshot: the one place where the kube
// area calls the object conversion (objects.ts). Conversion is memoised per object
// identity: informers replace an object on every update, so an unchanged object is
// converted once, however often snapshots are taken.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ClusterSnapshot, EndpointSliceInput, NodeInput, PodInput, ServiceInput } from '../model/types.js';
import { objectConverters } from './objects.js';

/** Where an ingested object (SnapshotBuilder.ingest) keeps its converted value. */
const CONVERTED = Symbol('converted');
type ConvertedObject = KubernetesObject & { readonly [CONVERTED]: unknown };
export type KindName = 'Service' | 'EndpointSlice' | 'Node' | 'Pod';

/** Per-object conversion; undefined drops an object the model must not see. */
export interface ObjectConverters {
  service(obj: unknown): ServiceInput | undefined;
  endpointSlice(obj: unknown): EndpointSliceInput | undefined;
  node(obj: unknown): NodeInput | undefined;
  pod(obj: unknown): PodInput | undefined;
}

/** objects.ts's conversion, issues dropped (the watcher passes its own to log them). */
export const defaultConverters: ObjectConverters = objectConverters();

export interface ClusterObjects {
  readonly services: readonly KubernetesObject[];
  readonly endpointSlices: readonly KubernetesObject[];
  readonly nodes: readonly KubernetesObject[];
  readonly localPods: readonly KubernetesObject[];
}

/**
 * Listed objects come from the typed client (timestamps are Date objects), watched ones
 * are plain JSON (timestamps are strings): this makes both the plain JSON the API server
 * sent, with RFC 3339 timestamps in the server's own second-precision form.
 */
export function plainObject(obj: KubernetesObject): unknown {
  return JSON.parse(
    JSON.stringify(obj, (_key, value: unknown) =>
      typeof value === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/.test(value) ? value.replace('.000Z', 'Z') : value,
    ),
  );
}

export type ConversionErrorHandler = (kind: string, obj: KubernetesObject, err: unknown) => void;

/** Two snapshots from the same builder are equal exactly when they hold the same values. */
export function sameSnapshot(a: ClusterSnapshot, b: ClusterSnapshot): boolean {
  const same = <T>(x: readonly T[], y: readonly T[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  return same(a.services, b.services) && same(a.endpointSlices, b.endpointSlices) && same(a.nodes, b.nodes) && same(a.localPods, b.localPods);
}

/**
 * Builds snapshots whose unchanged parts are the very same values as in the previous one:
 * conversion is memoised per informer object, and a new object version that converts to
 * what the previous version did (a Node heartbeat, a Pod status detail the model ignores)
 * keeps the previous value. So `sameSnapshot` is a cheap reference comparison, and the
 * cost of a change is one conversion plus a sort, not a deep comparison of the cluster.
 */
export class SnapshotBuilder {
  private readonly memo = new WeakMap<KubernetesObject, { value: unknown }>();
  /** Per kind: each object's value by "namespace/name", in sorted order (a Map keeps insertion order). */
  private previous = new Map<string, Map<string, unknown>>();

  constructor(
    private readonly converters: ObjectConverters = defaultConverters,
    private readonly onError: ConversionErrorHandler = () => {},
  ) {}

  /**
   * What a feed keeps of an object (FeedSource.transform): its identity and its converted
   * value, nothing else. build() takes these as it takes raw objects. Conversion happens
   * once per object version either way; here it happens on arrival, so the raw object
   * (typed by the client, ~1 kB per endpoint) is garbage at once.
   */
  ingest(kind: KindName, obj: KubernetesObject): KubernetesObject {
    const convert = this.converterOf(kind);
    const shell: ConvertedObject = {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: { name: obj.metadata?.name, namespace: obj.metadata?.namespace, resourceVersion: obj.metadata?.resourceVersion, uid: obj.metadata?.uid },
      [CONVERTED]: this.convertOne(kind, obj, convert),
    };
    return shell;
  }

  private converterOf(kind: KindName): (plain: unknown) => unknown {
    switch (kind) {
      case 'Service':
        return (o) => this.converters.service(o);
      case 'EndpointSlice':
        return (o) => this.converters.endpointSlice(o);
      case 'Node':
        return (o) => this.converters.node(o);
      case 'Pod':
        return (o) => this.converters.pod(o);
    }
  }

  build(objects: ClusterObjects): ClusterSnapshot {
    return {
      services: this.convertAll('Service', objects.services, (o) => this.converters.service(o)),
      endpointSlices: this.convertAll('EndpointSlice', objects.endpointSlices, (o) => this.converters.endpointSlice(o)),
      nodes: this.convertAll('Node', objects.nodes, (o) => this.converters.node(o)),
      localPods: this.convertAll('Pod', objects.localPods, (o) => this.converters.pod(o)),
    };
  }

  private convertAll<T>(kind: string, objects: readonly KubernetesObject[], convert: (plain: unknown) => T | undefined): T[] {
    const before = this.previous.get(kind) ?? new Map<string, unknown>();
    const current = new Map<string, unknown>();
    for (const obj of objects) {
      const key = `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
      let cached = this.memo.get(obj);
      if (!cached) {
        cached = { value: CONVERTED in obj ? (obj as ConvertedObject)[CONVERTED] : this.convertOne(kind, obj, convert) };
        const old = before.get(key);
        if (old !== undefined && cached.value !== undefined && JSON.stringify(old) === JSON.stringify(cached.value)) cached.value = old;
        this.memo.set(obj, cached);
      }
      if (cached.value !== undefined) current.set(key, cached.value);
    }
    // Updates are far more frequent than additions and removals: when the set of objects
    // is unchanged, the previous order is reused instead of sorting again.
    const sameKeys = current.size === before.size && [...before.keys()].every((k) => current.has(k));
    const keys = sameKeys ? [...before.keys()] : [...current.keys()].sort();
    const sorted = new Map(keys.map((k) => [k, current.get(k)]));
    this.previous.set(kind, sorted);
    return [...sorted.values()] as T[];
  }

  private convertOne<T>(kind: string, obj: KubernetesObject, convert: (plain: unknown) => T | undefined): T | undefined {
    try {
      // No plainObject() copy (a JSON round trip of every object, 200 MB of garbage for a
      // 10k list): the converters read the same fields by their JSON names from typed
      // objects too, and take a creationTimestamp as a Date.
      return convert(obj);
    } catch (err) {
      // One bad object must not hide the others.
      this.onError(kind, obj, err);
      return undefined;
    }
  }
}
