// The lab API server's storage: objects per resource type, one cluster-wide monotonically
// increasing resourceVersion (like etcd's revision), and the change history that watches
// replay. Compaction forgets history, so a watch from before it gets 410 Expired.
// Every write is decoded and validated as the real server does (./validation.ts), and
// journaled to a state file when one is given, so the counter survives restarts.
//
// Stored objects are never mutated: a write stores a new object beside its JSON text, made
// once, as the real server's watch cache keeps each object serialised. Lists and watches send
// that text as it is (10,000 EndpointSlices of 100 endpoints are 200 MB: copying and
// serialising them per request took minutes); only get()/list() hand out copies.
import { randomBytes, randomUUID } from 'node:crypto';
import { ApiError, alreadyExists, apiVersionOf, conflict, invalid, notFound, resourceKey, type KubeObject, type ResourceType } from './resources.js';
import type { JournalEntry, StoreSnapshot } from './state-file.js';
import { assertValid, convertSecretStringData, decodeTimes } from './validation.js';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** An object as stored: never mutated, with its JSON text and its place in list order. */
export interface StoredEntry {
  readonly object: KubeObject;
  readonly json: string;
  /** "namespace/name": lists are in this order (etcd's key order, bytewise). */
  readonly key: string;
}

export interface Change {
  readonly resourceVersion: number;
  readonly resource: ResourceType;
  readonly type: ChangeType;
  /** The object as stored (DELETED: as last stored, with the deletion's resourceVersion). Never mutated. */
  readonly object: KubeObject;
  /** `object` as JSON text. */
  readonly json: string;
  /** The object before a MODIFIED change; watches with selectors need it. */
  readonly previous?: KubeObject;
  /** The entry a MODIFIED or DELETED change replaced: lists at an earlier resourceVersion undo the change with it. */
  readonly replaced?: StoredEntry;
}

export type ChangeListener = (change: Change) => void;

const objectKey = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;

/** A private copy of a plain JSON value, as the wire would carry it (undefined keys dropped). */
const copyJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

const stored = (object: KubeObject): StoredEntry => ({ object, json: JSON.stringify(object), key: objectKey(object.metadata?.namespace, object.metadata?.name ?? '') });

const byKey = (a: StoredEntry, b: StoredEntry) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

export interface ObjectStoreOptions {
  /** Changes kept for resuming watches. */
  readonly historyLimit?: number;
  /** Called with every change before it is visible (the state file's append). */
  readonly journal?: (entry: JournalEntry) => void;
}

export class ObjectStore {
  private revision: number;
  private readonly objects = new Map<string, Map<string, StoredEntry>>();
  private history: Change[] = [];
  /** Watches must start at or after this revision; earlier ones get 410. */
  private oldestWatchable = 0;
  private readonly listeners = new Set<ChangeListener>();
  private readonly historyLimit: number;

  constructor(private readonly options: ObjectStoreOptions = {}) {
    this.revision = 1000;
    this.historyLimit = options.historyLimit ?? 10000;
  }

  /** Every object with its type key, and the counter: what a state file keeps. */
  snapshot(): StoreSnapshot {
    const objects = [...this.objects].flatMap(([resource, bucket]) => [...bucket.values()].map((s) => ({ resource, object: s.object })));
    return { revision: this.revision, objects };
  }

  /**
   * Loads a snapshot into an empty store, as a restarted server does: the same objects and
   * counter, no watch history (a watch from before the restart gets 410, like a new watch cache).
   */
  restore(snapshot: StoreSnapshot): void {
    for (const { resource, object } of snapshot.objects) {
      let bucket = this.objects.get(resource);
      if (!bucket) this.objects.set(resource, (bucket = new Map()));
      const s = stored(object);
      bucket.set(s.key, s);
    }
    this.revision = snapshot.revision;
    this.compact();
  }

  /**
   * Simulates a REPLACED server (a cluster restored from an old etcd backup, a new cluster at
   * the same address): the counter restarts at `revision`, BELOW what clients have seen; every
   * object is renumbered upwards from there (so the state is consistent), history is gone.
   * Clients resuming at their old, now future, resourceVersion see what a real server does.
   */
  rewind(revision: number): void {
    if (!Number.isInteger(revision) || revision < 1 || revision >= this.revision) {
      throw new Error(`lab apiserver: cannot rewind resourceVersions to ${revision}: the server is at ${this.revision}`);
    }
    this.revision = revision;
    for (const bucket of this.objects.values()) {
      for (const [key, s] of bucket) bucket.set(key, stored({ ...s.object, metadata: { ...s.object.metadata, resourceVersion: String(++this.revision) } }));
    }
    this.compact();
  }

  get resourceVersion(): number {
    return this.revision;
  }

  private bucket(type: ResourceType): Map<string, StoredEntry> {
    const key = resourceKey(type);
    let bucket = this.objects.get(key);
    if (!bucket) {
      bucket = new Map();
      this.objects.set(key, bucket);
    }
    return bucket;
  }

  has(type: ResourceType, namespace: string | undefined, name: string): boolean {
    return this.bucket(type).has(objectKey(ns(type, namespace), name));
  }

  /** A copy of one object (the caller may change it). */
  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const s = this.bucket(type).get(objectKey(ns(type, namespace), name));
    if (!s) throw notFound(type, name);
    return JSON.parse(s.json) as KubeObject;
  }

  /** Copies of the objects (of one namespace), in list order. */
  list(type: ResourceType, namespace?: string): KubeObject[] {
    return this.entries(type, namespace).map((s) => JSON.parse(s.json) as KubeObject);
  }

  /** The stored objects (of one namespace), in list order: for serving, never to be changed. */
  entries(type: ResourceType, namespace?: string): StoredEntry[] {
    const all = [...this.bucket(type).values()];
    return (namespace ? all.filter((s) => s.object.metadata?.namespace === namespace) : all).sort(byKey);
  }

  /**
   * The stored objects as they were at `resourceVersion`, in list order (etcd serves any
   * revision it has not compacted; this server rebuilds it from the watch history), or
   * 'expired' when history no longer reaches back that far.
   */
  entriesAt(type: ResourceType, resourceVersion: number, namespace?: string): StoredEntry[] | 'expired' {
    if (resourceVersion >= this.revision) return this.entries(type, namespace);
    if (resourceVersion < this.oldestWatchable) return 'expired';
    const resource = resourceKey(type);
    const state = new Map(this.bucket(type));
    // Undo the later changes, newest first.
    for (let i = this.history.length - 1; i >= 0 && this.history[i]!.resourceVersion > resourceVersion; i--) {
      const change = this.history[i]!;
      if (resourceKey(change.resource) !== resource) continue;
      const key = objectKey(change.object.metadata?.namespace, change.object.metadata?.name ?? '');
      if (change.replaced) state.set(key, change.replaced);
      else state.delete(key);
    }
    const all = [...state.values()];
    return (namespace ? all.filter((s) => s.object.metadata?.namespace === namespace) : all).sort(byKey);
  }

  /** `owned`: the input is the caller's no more (a parsed request body); otherwise it is copied. */
  create(type: ResourceType, input: KubeObject, namespace?: string, owned = false): KubeObject {
    return JSON.parse(this.createEntry(type, input, namespace, owned).json) as KubeObject;
  }

  /** create() without the copy of the result. */
  createEntry(type: ResourceType, input: KubeObject, namespace?: string, owned = false): StoredEntry {
    const obj = owned ? input : copyJson(input);
    decodeTimes(type, obj);
    convertSecretStringData(type, obj);
    const meta = (obj.metadata ??= {});
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
    if (!meta.name) throw invalid(type.group, type.kind, '', [{ type: 'FieldValueRequired', field: 'metadata.name', detail: 'name or generateName is required' }]);
    if (type.namespaced) {
      const wanted = namespace ?? meta.namespace ?? 'default';
      if (meta.namespace && meta.namespace !== wanted) {
        throw new ApiError(400, 'BadRequest', `the namespace of the provided object (${meta.namespace}) does not match the namespace sent on the request (${wanted})`);
      }
      meta.namespace = wanted;
    } else delete meta.namespace;
    assertValid(type, obj);
    const key = objectKey(meta.namespace, meta.name);
    const bucket = this.bucket(type);
    if (bucket.has(key)) throw alreadyExists(type, meta.name);
    obj.apiVersion = apiVersionOf(type);
    obj.kind = type.kind;
    meta.uid ??= randomUUID();
    meta.creationTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    meta.resourceVersion = String(++this.revision);
    const s = stored(obj);
    bucket.set(key, s);
    this.record({ resourceVersion: this.revision, resource: type, type: 'ADDED', object: obj, json: s.json });
    return s;
  }

  /**
   * Replaces an object. `part` says which part the caller may change: the whole object
   * except status (main resource of a type with a status subresource), only status
   * (the /status subresource), or everything (types without status, and test controls).
   * A resourceVersion in the input must match the stored one (optimistic concurrency); types
   * that refuse unconditional updates (Leases) need one (`conditional`: PUT, not PATCH or controls).
   * `owned` as for create().
   */
  update(type: ResourceType, input: KubeObject, part: 'main' | 'status' | 'all', namespace?: string, conditional = false, owned = false): KubeObject {
    return JSON.parse(this.updateEntry(type, input, part, namespace, conditional, owned).json) as KubeObject;
  }

  /** update() without the copy of the result. */
  updateEntry(type: ResourceType, input: KubeObject, part: 'main' | 'status' | 'all', namespace?: string, conditional = false, owned = false): StoredEntry {
    input = owned ? input : copyJson(input);
    decodeTimes(type, input);
    convertSecretStringData(type, input);
    const meta = input.metadata ?? {};
    const name = meta.name ?? '';
    const key = objectKey(ns(type, namespace ?? meta.namespace), name);
    const bucket = this.bucket(type);
    const currentStored = bucket.get(key);
    if (!currentStored) throw notFound(type, name);
    const current = currentStored.object;
    if (conditional && !type.unconditionalUpdate && !meta.resourceVersion) {
      // The real registry answers this with Invalid on the resource (not the Kind), value 0x0.
      throw invalid(type.group, type.plural, name, [{ type: 'FieldValueInvalid', field: 'metadata.resourceVersion', value: '0x0', detail: 'must be specified for an update' }]);
    }
    if (meta.resourceVersion && meta.resourceVersion !== current.metadata?.resourceVersion) throw conflict(type, name);
    // Parts of the stored object may be shared with the new one: neither is ever changed.
    let next: KubeObject;
    if (part === 'status') next = { ...current, status: input.status };
    else {
      next = input;
      if (part === 'main' && type.hasStatus) {
        if (current.status === undefined) delete next.status;
        else next.status = current.status;
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
    assertValid(type, next);
    // An update that changes nothing is a no-op (same text with the same resourceVersion).
    if (JSON.stringify(next) === currentStored.json) return currentStored;
    next.metadata.resourceVersion = String(++this.revision);
    const s = stored(next);
    bucket.set(key, s);
    this.record({ resourceVersion: this.revision, resource: type, type: 'MODIFIED', object: next, json: s.json, previous: current, replaced: currentStored });
    return s;
  }

  delete(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const key = objectKey(ns(type, namespace), name);
    const bucket = this.bucket(type);
    const current = bucket.get(key);
    if (!current) throw notFound(type, name);
    bucket.delete(key);
    // The DELETED event carries the revision of the deletion, as the real server's does.
    const gone = stored({ ...current.object, metadata: { ...current.object.metadata, resourceVersion: String(++this.revision) } });
    this.record({ resourceVersion: this.revision, resource: type, type: 'DELETED', object: gone.object, json: gone.json, replaced: current });
    return JSON.parse(gone.json) as KubeObject;
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
    const resource = resourceKey(change.resource);
    const meta = change.object.metadata ?? {};
    this.options.journal?.(
      change.type === 'DELETED'
        ? { revision: change.resourceVersion, resource, delete: { ...(meta.namespace ? { namespace: meta.namespace } : {}), name: meta.name ?? '' } }
        : { revision: change.resourceVersion, resource, put: change.object },
    );
    this.history.push(change);
    if (this.history.length > this.historyLimit) {
      // Dropped in blocks, not one by one: a splice per write is O(history) each.
      const dropped = this.history.splice(0, this.history.length - this.historyLimit + Math.ceil(this.historyLimit / 10));
      this.oldestWatchable = dropped[dropped.length - 1]!.resourceVersion;
    }
    for (const listener of this.listeners) listener(change);
  }
}

function ns(type: ResourceType, namespace: string | undefined): string | undefined {
  return type.namespaced ? (namespace ?? 'default') : undefined;
}
