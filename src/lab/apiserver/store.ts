// The lab API server's storage: objects per resource type, one cluster-wide monotonically
// increasing resourceVersion (like etcd's revision), and the change history that watches
// replay. Compaction forgets history, so a watch from before it gets 410 Expired.
import { randomBytes, randomUUID } from 'node:crypto';
import { ApiError, apiVersionOf, notFound, resourceKey, type KubeObject, type ResourceType } from './resources.js';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface Change {
  readonly resourceVersion: number;
  readonly resource: ResourceType;
  readonly type: ChangeType;
  readonly object: KubeObject;
  /** The object before a MODIFIED change; watches with selectors need it. */
  readonly previous?: KubeObject;
}

export type ChangeListener = (change: Change) => void;

const objectKey = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;

/** Compares objects ignoring resourceVersion: an update that changes nothing is a no-op. */
function sameContent(a: KubeObject, b: KubeObject): boolean {
  const strip = (o: KubeObject) => JSON.stringify({ ...o, metadata: { ...o.metadata, resourceVersion: undefined } });
  return strip(a) === strip(b);
}

export class ObjectStore {
  private revision = 1000;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private history: Change[] = [];
  /** Watches must start at or after this revision; earlier ones get 410. */
  private oldestWatchable = 0;
  private readonly listeners = new Set<ChangeListener>();

  constructor(private readonly historyLimit = 10000) {}

  get resourceVersion(): number {
    return this.revision;
  }

  private bucket(type: ResourceType): Map<string, KubeObject> {
    const key = resourceKey(type);
    let bucket = this.objects.get(key);
    if (!bucket) {
      bucket = new Map();
      this.objects.set(key, bucket);
    }
    return bucket;
  }

  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const obj = this.bucket(type).get(objectKey(ns(type, namespace), name));
    if (!obj) throw notFound(type, name);
    return structuredClone(obj);
  }

  list(type: ResourceType, namespace?: string): KubeObject[] {
    const all = [...this.bucket(type).values()];
    return structuredClone(namespace ? all.filter((o) => o.metadata?.namespace === namespace) : all);
  }

  create(type: ResourceType, input: KubeObject, namespace?: string): KubeObject {
    const obj = structuredClone(input);
    const meta = (obj.metadata ??= {});
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
    if (!meta.name) throw new ApiError(422, 'Invalid', `${type.kind} is invalid: metadata.name: Required value`);
    if (type.namespaced) {
      const wanted = namespace ?? meta.namespace ?? 'default';
      if (meta.namespace && meta.namespace !== wanted) {
        throw new ApiError(400, 'BadRequest', `the namespace of the provided object (${meta.namespace}) does not match the namespace sent on the request (${wanted})`);
      }
      meta.namespace = wanted;
    } else delete meta.namespace;
    const key = objectKey(meta.namespace, meta.name);
    const bucket = this.bucket(type);
    if (bucket.has(key)) throw new ApiError(409, 'AlreadyExists', `${type.plural} "${meta.name}" already exists`);
    obj.apiVersion = apiVersionOf(type);
    obj.kind = type.kind;
    meta.uid ??= randomUUID();
    meta.creationTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    meta.resourceVersion = String(++this.revision);
    bucket.set(key, obj);
    this.record({ resourceVersion: this.revision, resource: type, type: 'ADDED', object: obj });
    return structuredClone(obj);
  }

  /**
   * Replaces an object. `part` says which part the caller may change: the whole object
   * except status (main resource of a type with a status subresource), only status
   * (the /status subresource), or everything (types without status, and test controls).
   * A resourceVersion in the input must match the stored one (optimistic concurrency).
   */
  update(type: ResourceType, input: KubeObject, part: 'main' | 'status' | 'all', namespace?: string): KubeObject {
    const meta = input.metadata ?? {};
    const name = meta.name ?? '';
    const key = objectKey(ns(type, namespace ?? meta.namespace), name);
    const bucket = this.bucket(type);
    const current = bucket.get(key);
    if (!current) throw notFound(type, name);
    if (meta.resourceVersion && meta.resourceVersion !== current.metadata?.resourceVersion) {
      throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${type.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    let next: KubeObject;
    if (part === 'status') next = { ...structuredClone(current), status: structuredClone(input.status) };
    else {
      next = structuredClone(input);
      if (part === 'main' && type.hasStatus) {
        if (current.status === undefined) delete next.status;
        else next.status = structuredClone(current.status);
      }
    }
    // Identity and bookkeeping are the server's, whatever the client sent.
    next.apiVersion = apiVersionOf(type);
    next.kind = type.kind;
    next.metadata = {
      ...next.metadata,
      name,
      uid: current.metadata?.uid,
      creationTimestamp: current.metadata?.creationTimestamp,
      resourceVersion: current.metadata?.resourceVersion,
    };
    if (type.namespaced) next.metadata.namespace = current.metadata?.namespace;
    else delete next.metadata.namespace;
    if (sameContent(current, next)) return structuredClone(current);
    next.metadata.resourceVersion = String(++this.revision);
    bucket.set(key, next);
    this.record({ resourceVersion: this.revision, resource: type, type: 'MODIFIED', object: next, previous: current });
    return structuredClone(next);
  }

  delete(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const key = objectKey(ns(type, namespace), name);
    const bucket = this.bucket(type);
    const current = bucket.get(key);
    if (!current) throw notFound(type, name);
    bucket.delete(key);
    // The DELETED event carries the revision of the deletion, as the real server's does.
    const gone: KubeObject = { ...current, metadata: { ...current.metadata, resourceVersion: String(++this.revision) } };
    this.record({ resourceVersion: this.revision, resource: type, type: 'DELETED', object: gone });
    return structuredClone(gone);
  }

  /** Changes after `resourceVersion`, or 'expired' when history no longer reaches back that far. */
  changesSince(resourceVersion: number): Change[] | 'expired' {
    if (resourceVersion < this.oldestWatchable) return 'expired';
    return this.history.filter((c) => c.resourceVersion > resourceVersion);
  }

  /** Forgets all history: every watch that resumes from an earlier revision gets 410 Expired. */
  compact(): void {
    this.history = [];
    this.oldestWatchable = this.revision;
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private record(change: Change): void {
    this.history.push(change);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.oldestWatchable = dropped[dropped.length - 1]!.resourceVersion;
    }
    for (const listener of this.listeners) listener(change);
  }
}

function ns(type: ResourceType, namespace: string | undefined): string | undefined {
  return type.namespaced ? (namespace ?? 'default') : undefined;
}
