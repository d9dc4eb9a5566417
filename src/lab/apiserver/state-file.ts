// The lab API server's state on disk, so that a restarted server keeps its objects AND its
// resourceVersion counter (as etcd does): a restart never hands out a resourceVersion a
// client has already seen for something else.
//
// Format: JSON lines. The first line is a snapshot {revision, objects}; every later line is
// one change {revision, resource, put | delete}, appended synchronously before the server
// answers the request that made it, so what a client was told survives a crash of the
// process. Loading replays the lines and rewrites the file as one snapshot.
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { KubeObject } from './resources.js';

export interface StoredObject {
  /** resourceKey() of its type: "group/version/plural". */
  readonly resource: string;
  readonly object: KubeObject;
}

export interface StoreSnapshot {
  readonly revision: number;
  readonly objects: readonly StoredObject[];
}

export type JournalEntry =
  | { readonly revision: number; readonly resource: string; readonly put: KubeObject }
  | { readonly revision: number; readonly resource: string; readonly delete: { readonly namespace?: string; readonly name: string } };

const keyOf = (resource: string, o: { namespace?: string; name?: string }) => `${resource}|${o.namespace ?? ''}|${o.name ?? ''}`;

export class StateFile {
  constructor(readonly path: string) {}

  /** The stored state, or undefined when there is no file yet. A torn last line (a crash mid-append) is ignored. */
  load(): StoreSnapshot | undefined {
    if (!existsSync(this.path)) return undefined;
    const lines = readFileSync(this.path, 'utf8').split('\n').filter((l) => l.trim());
    if (!lines.length) return undefined;
    const first = JSON.parse(lines[0]!) as StoreSnapshot;
    if (typeof first.revision !== 'number' || !Array.isArray(first.objects)) throw new Error(`${this.path}: not a lab API server state file`);
    let revision = first.revision;
    const objects = new Map(first.objects.map((o) => [keyOf(o.resource, o.object.metadata ?? {}), o]));
    for (const [i, line] of lines.slice(1).entries()) {
      let entry: JournalEntry;
      try {
        entry = JSON.parse(line) as JournalEntry;
      } catch (err) {
        if (i === lines.length - 2) break;
        throw new Error(`${this.path}: line ${i + 2} is not JSON: ${(err as Error).message}`, { cause: err });
      }
      revision = Math.max(revision, entry.revision);
      if ('put' in entry) objects.set(keyOf(entry.resource, entry.put.metadata ?? {}), { resource: entry.resource, object: entry.put });
      else objects.delete(keyOf(entry.resource, entry.delete));
    }
    return { revision, objects: [...objects.values()] };
  }

  /** Replaces the file with one snapshot line (write + rename: never half a file). */
  rewrite(snapshot: StoreSnapshot): void {
    writeFileSync(`${this.path}.tmp`, `${JSON.stringify(snapshot)}\n`);
    renameSync(`${this.path}.tmp`, this.path);
  }

  append(entry: JournalEntry): void {
    appendFileSync(this.path, `${JSON.stringify(entry)}\n`);
  }
}
