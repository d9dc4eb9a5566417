// Finds a pod's network namespace without asking a container runtime: the candidates are
// the named namespaces (/run/netns, /var/run/netns) and the namespaces of the node's
// processes (/proc/PID/ns/net), deduplicated by inode; the one holding the pod IP is the
// pod's. The host's own namespace is never a candidate: a hostNetwork pod's IP is the
// node's, and the project must not touch the node from here.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand, type CommandRunner } from '../system/index.js';
import type { NetnsHandle } from './kernel-state.js';
import { parseIpAddrJson, runIp } from './kernel-state.js';
import type { KernelLink } from './objects.js';

export interface PodNamespace extends NetnsHandle {
  /** The interface holding the pod IP. */
  readonly podIf: string;
}

export interface PodLocator {
  readonly uid: string;
  readonly podIp: string;
  readonly containerIds: readonly string[];
}

export type LocateResult =
  | { readonly kind: 'found'; readonly ns: PodNamespace; readonly cached: boolean }
  | { readonly kind: 'not-found' }
  | { readonly kind: 'host-network' }
  | { readonly kind: 'ambiguous'; readonly paths: readonly string[] };

export interface NamespaceFinderOptions {
  readonly run?: CommandRunner;
  readonly procRoot?: string;
  readonly netnsDirs?: readonly string[];
  /** The agent's own (host) namespace; defaults to /proc/self/ns/net. */
  readonly hostNetnsPath?: string;
  /** Limit the candidates (tests on a shared machine); all when absent. */
  readonly accept?: (candidate: NetnsHandle) => boolean;
  /** Namespaces inspected at once during a scan. */
  readonly concurrency?: number;
  /** Called with the seconds each scan took (metrics). */
  readonly onScan?: (seconds: number, candidates: number) => void;
}

interface CacheEntry {
  readonly podIp: string;
  readonly containerKey: string;
  readonly ns: PodNamespace;
}

/** One candidate as the last scan saw it (`ip -d -j addr show`: links with details). */
export interface ScannedNamespace {
  readonly handle: NetnsHandle;
  /** address -> interface holding it */
  readonly addresses: ReadonlyMap<string, string>;
  readonly links: readonly KernelLink[];
}

/** Every candidate namespace, read once; `scan` is the finder's scan counter at the time. */
export interface NamespaceSurvey {
  readonly scan: number;
  readonly namespaces: readonly ScannedNamespace[];
}

const containerKey = (ids: readonly string[]) => [...ids].sort().join(',');

async function inodeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).ino;
  } catch {
    return undefined;
  }
}

export class NamespaceFinder {
  private readonly run: CommandRunner;
  private readonly procRoot: string;
  private readonly netnsDirs: readonly string[];
  private readonly hostNetnsPath: string;
  private readonly cache = new Map<string, CacheEntry>();
  scans = 0;
  /** The last scan's result, so the orphan sweep can reuse the scan of the same pass. */
  lastSurvey: NamespaceSurvey | undefined;

  constructor(private readonly opts: NamespaceFinderOptions = {}) {
    this.run = opts.run ?? runCommand;
    this.procRoot = opts.procRoot ?? '/proc';
    this.netnsDirs = opts.netnsDirs ?? ['/run/netns', '/var/run/netns'];
    this.hostNetnsPath = opts.hostNetnsPath ?? join(this.procRoot, 'self/ns/net');
  }

  /**
   * Locates every pod: cached entries are revalidated (same IP, same containers, and the
   * namespace file still has the same inode); one scan of all candidates serves the rest.
   */
  async locate(pods: readonly PodLocator[]): Promise<Map<string, LocateResult>> {
    const results = new Map<string, LocateResult>();
    const misses: PodLocator[] = [];
    for (const pod of pods) {
      const hit = this.cache.get(pod.uid);
      if (hit && hit.podIp === pod.podIp && hit.containerKey === containerKey(pod.containerIds) && (await inodeOf(hit.ns.path)) === hit.ns.inode) {
        results.set(pod.uid, { kind: 'found', ns: hit.ns, cached: true });
      } else {
        this.cache.delete(pod.uid);
        misses.push(pod);
      }
    }
    if (misses.length === 0) return results;

    const { namespaces, hostAddresses } = await this.scan();
    for (const pod of misses) {
      const matches = namespaces.filter((n) => n.addresses.has(pod.podIp));
      if (matches.length === 1) {
        const m = matches[0]!;
        const ns: PodNamespace = { ...m.handle, podIf: m.addresses.get(pod.podIp)! };
        this.cache.set(pod.uid, { podIp: pod.podIp, containerKey: containerKey(pod.containerIds), ns });
        results.set(pod.uid, { kind: 'found', ns, cached: false });
      } else if (matches.length > 1) {
        // A sandbox being replaced can briefly leave two; the old one goes away, retry then.
        results.set(pod.uid, { kind: 'ambiguous', paths: matches.map((m) => m.handle.path) });
      } else if (hostAddresses.has(pod.podIp)) {
        results.set(pod.uid, { kind: 'host-network' });
      } else {
        results.set(pod.uid, { kind: 'not-found' });
      }
    }
    return results;
  }

  /**
   * Every candidate with its links: the last scan when it was made after scan number
   * `sinceScan` (the pass that asks already scanned), otherwise a new one.
   */
  async survey(sinceScan = Number.POSITIVE_INFINITY): Promise<NamespaceSurvey> {
    if (this.lastSurvey && this.lastSurvey.scan > sinceScan) return this.lastSurvey;
    await this.scan();
    return this.lastSurvey!;
  }

  /** Drops a pod's cached namespace (pod gone, or its IP was not where the cache said). */
  forget(uid: string): void {
    this.cache.delete(uid);
  }

  get cachedPods(): number {
    return this.cache.size;
  }

  /** Every candidate namespace except the host's, one handle per inode (named ones first). */
  async candidates(): Promise<{ candidates: NetnsHandle[]; hostInode: number | undefined }> {
    const hostInode = await inodeOf(this.hostNetnsPath);
    const paths: string[] = [];
    for (const dir of this.netnsDirs) {
      const names = await readdir(dir).catch(() => [] as string[]);
      paths.push(...names.sort().map((n) => join(dir, n)));
    }
    const pids = (await readdir(this.procRoot).catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
    paths.push(...pids.sort((a, b) => Number(a) - Number(b)).map((p) => join(this.procRoot, p, 'ns/net')));

    const inodes = await mapLimit(paths, 64, inodeOf);
    const seen = new Set<number>(hostInode === undefined ? [] : [hostInode]);
    const candidates: NetnsHandle[] = [];
    paths.forEach((path, i) => {
      const inode = inodes[i];
      if (inode === undefined || seen.has(inode)) return;
      seen.add(inode);
      const handle = { path, inode };
      if (!this.opts.accept || this.opts.accept(handle)) candidates.push(handle);
    });
    return { candidates, hostInode };
  }

  private async scan(): Promise<{ namespaces: ScannedNamespace[]; hostAddresses: ReadonlyMap<string, string> }> {
    const started = process.hrtime.bigint();
    this.scans += 1;
    const { candidates } = await this.candidates();
    const [hostAddresses, scanned] = await Promise.all([
      this.linksIn(undefined),
      mapLimit(candidates, this.opts.concurrency ?? 8, async (handle): Promise<ScannedNamespace | undefined> => {
        const links = await this.linksIn(handle);
        // The process may have exited (or the name been removed) between stat and enter.
        if (!links || (await inodeOf(handle.path)) !== handle.inode) return undefined;
        return { handle, addresses: addressMap(links), links };
      }),
    ]);
    const namespaces = scanned.filter((n): n is ScannedNamespace => n !== undefined);
    this.lastSurvey = { scan: this.scans, namespaces };
    this.opts.onScan?.(Number(process.hrtime.bigint() - started) / 1e9, candidates.length);
    return { namespaces, hostAddresses: hostAddresses ? addressMap(hostAddresses) : new Map() };
  }

  /** `ip -d -j addr show`: details cost little, and let the orphan sweep reuse the scan. */
  private async linksIn(handle: NetnsHandle | undefined): Promise<KernelLink[] | undefined> {
    const args = [...(handle ? ['-d'] : []), '-j', 'addr', 'show'];
    const opts = { allowFailure: true, timeoutMs: 10000 };
    const res = handle ? await runIp(this.run, handle, args, opts) : await this.run('ip', args, opts);
    if (res.code !== 0) return undefined;
    try {
      return parseIpAddrJson(res.stdout);
    } catch {
      return undefined;
    }
  }
}

function addressMap(links: readonly KernelLink[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const link of links) for (const a of link.addresses) out.set(a.address, link.name);
  return out;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
