// Bucket tables stored on the Service (issue 7): one elected writer records each VIP's
// bucket -> backend table in an annotation, and every node starts from it, so nodes with
// lagging watches, restarted agents and future versions of the hashing code agree.
//
// Annotation `${annotationKey}-tables`, compact JSON (docs/stored-tables.md):
//   {"v":1,"tables":{"203.0.113.10":{"generation":3,"backends":["198.51.100.1",...],"buckets":"<base64>"}}}
// `buckets` holds one byte per bucket (an index into `backends`), or two bytes big-endian
// per bucket when there are more than 256 backends. 256 buckets -> 344 base64 characters.
//
// Parsing is strict: anything unexpected is a Problem ("InvalidStoredTable") and the
// entry is ignored, so the model falls back to computing (and the writer repairs it).
import { parseIp } from './ip.js';
import { bucketIndices, rebalance, type HashParams } from './maglev.js';
import type { Backend, BucketIndices, BucketTable, IpAddress, Problem, ServiceRef } from './types.js';

export const STORED_TABLE_VERSION = 1;
export const STORED_TABLE_REASON = 'InvalidStoredTable';

/** One VIP's stored table: addresses only (draining is a property of the live endpoints). */
export interface StoredTable {
  readonly generation: number;
  readonly backends: readonly IpAddress[];
  /** Parsed: the smallest typed array for the backend count (shared with the table when it is used as is). */
  readonly buckets: BucketIndices;
}

/**
 * The one copy of an address text the caller already holds (the model: its endpoints'
 * addresses), or undefined. A known address is canonical, so it needs no parseIp either:
 * at 10,000 VIPs x 100 endpoints that is a million strings and parses saved.
 */
export type KnownAddress = (text: string) => IpAddress | undefined;
const noneKnown: KnownAddress = () => undefined;

export interface StoredTables {
  /** Valid entries by VIP (canonical text). */
  readonly tables: ReadonlyMap<IpAddress, StoredTable>;
  /** What was wrong, one line per bad entry (empty when all is well). */
  readonly errors: readonly string[];
}

export const NO_STORED_TABLES: StoredTables = { tables: new Map(), errors: [] };

/** The annotation that carries a Service's stored tables. */
export const storedTablesKey = (annotationKey: string): string => `${annotationKey}-tables`;

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function parseEntry(vip: string, raw: unknown, known: KnownAddress): StoredTable | string {
  if (!isRecord(raw)) return `tables["${vip}"] is not an object`;
  for (const k in raw) if (k !== 'generation' && k !== 'backends' && k !== 'buckets') return `tables["${vip}"]: unknown field "${k}"`;
  const { generation, backends, buckets } = raw;
  if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) return `tables["${vip}"].generation must be a non-negative integer`;
  if (!Array.isArray(backends) || backends.length === 0) return `tables["${vip}"].backends must be a non-empty list of addresses`;
  const addresses: IpAddress[] = new Array<IpAddress>(backends.length);
  const seen = new Set<string>();
  for (let i = 0; i < backends.length; i++) {
    const b: unknown = backends[i];
    const ip = typeof b !== 'string' ? undefined : (known(b) ?? parseIp(b));
    if (ip === undefined || ip !== b) return `tables["${vip}"].backends[${i}]: ${JSON.stringify(b)} is not a canonical IP address`;
    if (seen.has(ip)) return `tables["${vip}"].backends[${i}]: ${ip} is listed twice`;
    seen.add(ip);
    addresses[i] = ip;
  }
  if (typeof buckets !== 'string' || !BASE64.test(buckets) || buckets.length % 4 !== 0) return `tables["${vip}"].buckets must be base64`;
  const bytes = Buffer.from(buckets, 'base64');
  const wide = addresses.length > 256;
  if (bytes.length === 0 || (wide && bytes.length % 2 !== 0)) return `tables["${vip}"].buckets: ${bytes.length} bytes do not make whole buckets`;
  // Its own array, not a view of `bytes` (a small Buffer is a view of a shared 8 kB slab).
  const list = bucketIndices(wide ? bytes.length / 2 : bytes.length, addresses.length);
  for (let i = 0; i < list.length; i++) {
    const index = wide ? bytes.readUInt16BE(2 * i) : bytes[i]!;
    if (index >= addresses.length) return `tables["${vip}"].buckets: bucket ${i} points to backend ${index}, but there are ${addresses.length}`;
    list[i] = index;
  }
  return { generation, backends: addresses, buckets: list };
}

/** Parses the annotation's text. Never throws: bad entries are reported and left out. */
export function parseStoredTables(text: string, known: KnownAddress = noneKnown): StoredTables {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { tables: new Map(), errors: [`not valid JSON (${err instanceof Error ? err.message : String(err)})`] };
  }
  if (!isRecord(doc)) return { tables: new Map(), errors: ['must be a JSON object {"v":1,"tables":{...}}'] };
  if (doc.v !== STORED_TABLE_VERSION) return { tables: new Map(), errors: [`"v" is ${JSON.stringify(doc.v)}; this agent reads version ${STORED_TABLE_VERSION}`] };
  if (!isRecord(doc.tables)) return { tables: new Map(), errors: ['"tables" must be an object keyed by VIP'] };
  const tables = new Map<IpAddress, StoredTable>();
  const errors: string[] = [];
  for (const [vip, raw] of Object.entries(doc.tables)) {
    const ip = parseIp(vip);
    if (ip === undefined || ip !== vip) {
      errors.push(`tables key "${vip}" is not a canonical IP address`);
      continue;
    }
    const entry = parseEntry(vip, raw, known);
    if (typeof entry === 'string') errors.push(entry);
    else tables.set(ip, entry);
  }
  return { tables, errors };
}

/** The Problem for a Service whose stored tables could not all be read. */
export function storedTableProblem(service: ServiceRef, annotation: string, errors: readonly string[]): Problem {
  return {
    ref: { kind: 'Service', namespace: service.namespace, name: service.name, uid: service.uid },
    reason: STORED_TABLE_REASON,
    message: `metadata.annotations["${annotation}"]: ${errors.join('; ')}; the table is computed instead and the writer will replace it`,
  };
}

/** Compact canonical text: VIPs sorted, fixed field order (equal tables give equal text). */
export function formatStoredTables(tables: ReadonlyMap<IpAddress, StoredTable>): string {
  const out: Record<string, { generation: number; backends: readonly string[]; buckets: string }> = {};
  for (const vip of [...tables.keys()].sort()) {
    const t = tables.get(vip)!;
    const wide = t.backends.length > 256;
    const bytes = Buffer.alloc(t.buckets.length * (wide ? 2 : 1));
    for (let i = 0; i < t.buckets.length; i++) {
      if (wide) bytes.writeUInt16BE(t.buckets[i]!, i * 2);
      else bytes.writeUInt8(t.buckets[i]!, i);
    }
    out[vip] = { generation: t.generation, backends: t.backends, buckets: bytes.toString('base64') };
  }
  return JSON.stringify({ v: STORED_TABLE_VERSION, tables: out });
}

/**
 * What the writer stores for a computed table: addresses in table order. A table computed
 * without a stored one has generation 0 and is stored as generation 1, so a stored table
 * always has a generation >= 1.
 */
export function toStoredTable(table: BucketTable): StoredTable {
  return { generation: Math.max(1, table.generation), backends: table.backends.map((b) => b.address), buckets: table.buckets };
}

/**
 * The table for a VIP given its stored table and the current backends (sorted, with
 * draining ones). Same inputs, same table on every node:
 * - same addresses, the configured bucket count, and balanced (every active backend owns
 *   floor or ceil of B/N buckets, none on a draining one): the stored table as is;
 * - otherwise `rebalance` from it: only the buckets that must move move, generation + 1.
 * Balance is checked, not assumed: an endpoint that drained and came back is listed in
 * the stored table with no bucket, and only rebalancing gives it its share again.
 */
export function tableFromStored(stored: StoredTable, backends: readonly Backend[], params: HashParams): BucketTable {
  if (stored.buckets.length === params.bucketCount && stored.backends.length === backends.length && stored.backends.every((a, i) => a === backends[i]!.address)) {
    if (isBalanced(stored.buckets, backends)) return { backends, buckets: stored.buckets, generation: stored.generation };
  }
  const previous: BucketTable = { backends: stored.backends.map((address) => ({ address, draining: false })), buckets: stored.buckets, generation: stored.generation };
  return rebalance(previous, backends, params);
}

/** Every active backend owns floor(B/N) or ceil(B/N) of `buckets` (indices into `backends`), no draining one owns any. */
function isBalanced(buckets: BucketIndices, backends: readonly Backend[]): boolean {
  const counts = new Int32Array(backends.length);
  for (const b of buckets) counts[b]!++;
  let active = 0;
  for (const b of backends) if (!b.draining) active++;
  if (active === 0) return false;
  const low = Math.floor(buckets.length / active);
  const high = Math.ceil(buckets.length / active);
  for (let i = 0; i < backends.length; i++) {
    const c = counts[i]!;
    if (backends[i]!.draining ? c > 0 : c < low || c > high) return false;
  }
  return true;
}
