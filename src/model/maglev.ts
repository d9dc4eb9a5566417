// Consistent hashing of flow buckets onto backends: Maglev lookup-table population
// (Eisenbud et al., NSDI 2016), as in Cilium's pkg/maglev, plus an incremental
// `rebalance` for tables that are stored and must move as few buckets as possible.
//
// Invariants (property-tested in test/model/maglev.test.ts):
// - The table depends only on the SET of backends, the bucket count and the seed:
//   backends are ordered by address before population, and the hash is our own murmur3.
// - Every active backend owns floor(B/N) or ceil(B/N) buckets (Maglev's round-robin
//   turns guarantee it when N <= B): the best balance B buckets allow.
// - Draining backends own no bucket; they stay in `backends` so existing flows can be
//   recognised while they finish.
// - Disruption: Maglev is history-free (every node agrees without talking), but at
//   B = 256 a change of one of N backends moves 1/N + ~5% of buckets on average, up to
//   1/N + ~28% for small N. `rebalance` moves exactly the buckets that must move
//   (<= ceil(B/N)); it needs the previous table, so it is for stored tables (issue 7).
import { murmur3 } from './hash.js';
import type { Backend, BucketIndices, BucketTable } from './types.js';

export interface HashParams {
  readonly bucketCount: number;
  readonly seed: number;
}

/** Stable order of backends: canonical address text, compared by code unit (cheap, total). */
export function compareBackends(a: Backend, b: Backend): number {
  return a.address < b.address ? -1 : a.address > b.address ? 1 : 0;
}

const coprimeCache = new Map<number, Int32Array>();

/** Step sizes that visit every bucket: residues coprime to B (B need not be prime). */
function coprimes(bucketCount: number): Int32Array {
  let c = coprimeCache.get(bucketCount);
  if (c) return c;
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const list: number[] = [];
  for (let s = 1; s < bucketCount; s++) if (gcd(s, bucketCount) === 1) list.push(s);
  if (list.length === 0) list.push(1);
  c = Int32Array.from(list);
  coprimeCache.set(bucketCount, c);
  return c;
}

/**
 * Maglev population over `keys` (already in their stable order). Returns, for each
 * bucket, an index into `keys`. With more keys than buckets, the first B keys in order
 * get one bucket each.
 */
export function maglevBuckets(keys: readonly string[], params: HashParams): number[] {
  const m = params.bucketCount;
  const n = keys.length;
  if (n === 0) return [];
  if (n === 1) return new Array<number>(m).fill(0);
  const steps = coprimes(m);
  // pos[i] walks backend i's permutation offset, offset+skip, offset+2*skip, ... (mod B).
  const pos = new Int32Array(n);
  const skip = new Int32Array(n);
  const seed2 = (params.seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < n; i++) {
    const key = keys[i]!;
    pos[i] = murmur3(key, params.seed) % m;
    // A second, independent hash picks the permutation's step.
    skip[i] = steps[murmur3(key, seed2) % steps.length]!;
  }
  const entry = new Array<number>(m).fill(-1); // the result itself: no copy at the end
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      let c = pos[i]!;
      const step = skip[i]!;
      while (entry[c]! >= 0) {
        c += step;
        if (c >= m) c -= m;
      }
      entry[c] = i;
      c += step;
      pos[i] = c >= m ? c - m : c;
      if (++filled === m) return entry;
    }
  }
}

/** A bucket list of `length` that holds indices below `backendCount`, in as few bytes as that allows. */
export function bucketIndices(length: number, backendCount: number): Uint8Array | Uint16Array | Uint32Array {
  return backendCount <= 0x100 ? new Uint8Array(length) : backendCount <= 0x10000 ? new Uint16Array(length) : new Uint32Array(length);
}

const NO_BUCKETS: BucketIndices = new Uint8Array(0);

function sortedBackends(backends: readonly Backend[]): Backend[] {
  return [...backends].sort(compareBackends);
}

/** A freshly computed table: the same on every node for the same backends. */
export function buildBucketTable(backends: readonly Backend[], params: HashParams, alreadySorted = false): BucketTable {
  const sorted = alreadySorted ? backends : sortedBackends(backends);
  const activeIndex: number[] = [];
  const activeKeys: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const b = sorted[i]!;
    if (!b.draining) {
      activeIndex.push(i);
      activeKeys.push(b.address);
    }
  }
  const slots = maglevBuckets(activeKeys, params);
  if (slots.length === 0) return { backends: sorted, buckets: NO_BUCKETS, generation: 0 };
  const buckets = bucketIndices(slots.length, sorted.length);
  const mapped = activeIndex.length !== sorted.length;
  for (let k = 0; k < slots.length; k++) buckets[k] = mapped ? activeIndex[slots[k]!]! : slots[k]!;
  return { backends: sorted, buckets, generation: 0 };
}

/**
 * Moves the fewest buckets of `previous` so that the active (non-draining) backends of
 * `newBackends` are balanced again (each floor(B/N) or ceil(B/N) buckets):
 * - buckets of backends that left or started draining go to backends below their quota;
 * - a backend above its quota gives up only its surplus;
 * - the backends currently owning the most buckets get the ceil(B/N) quotas.
 * Every bucket that moves had to move, so the result is minimal for a balanced table.
 * Deterministic: ties go by backend order and bucket index. `generation` grows by one
 * when any bucket's backend (address) changes. With no usable previous table (none,
 * empty, or another bucket count) it falls back to buildBucketTable.
 */
export function rebalance(previous: BucketTable | undefined, newBackends: readonly Backend[], params: HashParams): BucketTable {
  const m = params.bucketCount;
  const sorted = sortedBackends(newBackends);
  const active = sorted.map((b, i) => ({ b, i })).filter((x) => !x.b.draining);
  if (!previous || previous.buckets.length !== m || active.length === 0) {
    const fresh = buildBucketTable(sorted, params, true);
    const changed = !previous || !sameOwners(previous, fresh);
    return { ...fresh, generation: (previous?.generation ?? 0) + (changed && previous ? 1 : 0) };
  }
  const slotOf = new Map<string, number>(); // address -> position in `active`
  active.forEach((x, k) => slotOf.set(x.b.address, k));
  const owner = new Int32Array(m).fill(-1); // bucket -> position in `active`, -1 = free
  const count = new Int32Array(active.length);
  for (let bucket = 0; bucket < m; bucket++) {
    const addr = previous.backends[previous.buckets[bucket]!]?.address;
    const k = addr === undefined ? undefined : slotOf.get(addr);
    if (k !== undefined) {
      owner[bucket] = k;
      count[k]!++;
    }
  }
  // Quotas: the `extra` backends holding the most buckets (ties: backend order) keep ceil.
  const n = active.length;
  const base = Math.floor(m / n);
  const extra = m % n;
  const quota = new Int32Array(n).fill(base);
  const byCount = [...Array(n).keys()].sort((a, b) => count[b]! - count[a]! || a - b);
  for (let r = 0; r < extra; r++) quota[byCount[r]!]!++;
  // Release surplus, from the highest bucket index down (deterministic choice).
  for (let bucket = m - 1; bucket >= 0; bucket--) {
    const k = owner[bucket]!;
    if (k >= 0 && count[k]! > quota[k]!) {
      owner[bucket] = -1;
      count[k]!--;
    }
  }
  // Hand free buckets round-robin to backends below quota, so a newcomer's buckets spread.
  const hungry = [...Array(n).keys()].filter((k) => count[k]! < quota[k]!);
  let turn = 0;
  for (let bucket = 0; bucket < m; bucket++) {
    if (owner[bucket]! >= 0) continue;
    while (count[hungry[turn % hungry.length]!]! >= quota[hungry[turn % hungry.length]!]!) turn++;
    const k = hungry[turn % hungry.length]!;
    owner[bucket] = k;
    count[k]!++;
    turn++;
  }
  const buckets = bucketIndices(m, sorted.length);
  for (let bucket = 0; bucket < m; bucket++) buckets[bucket] = active[owner[bucket]!]!.i;
  const table: BucketTable = { backends: sorted, buckets, generation: previous.generation };
  return sameOwners(previous, table) ? table : { ...table, generation: previous.generation + 1 };
}

/** Same address in every bucket (backend indices may differ between the two tables). */
export function sameOwners(a: BucketTable, b: BucketTable): boolean {
  if (a.buckets.length !== b.buckets.length) return false;
  for (let i = 0; i < a.buckets.length; i++) {
    if (a.backends[a.buckets[i]!]?.address !== b.backends[b.buckets[i]!]?.address) return false;
  }
  return true;
}

/** Buckets whose backend address differs between two tables of the same size. */
export function movedBuckets(a: BucketTable, b: BucketTable): number {
  let moved = 0;
  const len = Math.max(a.buckets.length, b.buckets.length);
  for (let i = 0; i < len; i++) {
    const x = a.buckets[i];
    const y = b.buckets[i];
    if (x === undefined || y === undefined || a.backends[x]?.address !== b.backends[y]?.address) moved++;
  }
  return moved;
}

/** Buckets per backend address (draining backends show 0): for `kst plan` and tests. */
export function bucketShares(table: BucketTable): Map<string, number> {
  const shares = new Map<string, number>();
  for (const b of table.backends) shares.set(b.address, 0);
  for (const i of table.buckets) {
    const addr = table.backends[i]!.address;
    shares.set(addr, (shares.get(addr) ?? 0) + 1);
  }
  return shares;
}
