// A Service's endpoints, gathered from all its EndpointSlices: the serving backends per
// address family (what bucket tables hash over) and this node's endpoints (what the
// serving-node side sets up). Computed once per Service and cached until a slice changes.
import { BackendPool } from './backend-pool.js';
import { compareBackends } from './maglev.js';
import type { Backend, EndpointInput, EndpointSliceInput, IpFamily } from './types.js';

export interface ServiceEndpoints {
  /** Ready and draining backends, deduplicated by address, sorted by address. */
  readonly backends: Readonly<Record<IpFamily, readonly Backend[]>>;
  /** Ready (not draining) backend count per family. */
  readonly ready: Readonly<Record<IpFamily, number>>;
  /** Endpoints on this node, ready or not: their pods get the VIP before traffic arrives. */
  readonly local: readonly EndpointInput[];
}

const NONE: readonly Backend[] = [];
const NO_LOCAL: readonly EndpointInput[] = [];
export const NO_ENDPOINTS: ServiceEndpoints = { backends: { 4: NONE, 6: NONE }, ready: { 4: 0, 6: 0 }, local: NO_LOCAL };

/**
 * EndpointSlice conditions to a backend: ready -> active; terminating but serving ->
 * draining (existing flows finish, no new buckets); anything else is not a backend.
 * From `pool` when given: the same endpoint in many Services is one Backend object.
 */
export function toBackend(e: EndpointInput, pool: BackendPool = new BackendPool()): Backend | undefined {
  if (e.terminating ? !e.serving : !e.ready) return undefined;
  return pool.backendFor(e, e.terminating);
}

/** `pool`: where Backend objects come from (the model keeps one, shared by all Services). */
export function collectEndpoints(slices: readonly EndpointSliceInput[], nodeName: string, pool: BackendPool = new BackendPool()): ServiceEndpoints {
  const v4: Backend[] = [];
  const v6: Backend[] = [];
  let local: EndpointInput[] | undefined;
  for (const slice of slices) {
    if (slice.addressType === 'FQDN') continue;
    const into = slice.addressType === 'IPv4' ? v4 : v6;
    for (const e of slice.endpoints) {
      if (e.nodeName === nodeName) (local ??= []).push(e);
      const b = toBackend(e, pool);
      if (b) into.push(b);
    }
  }
  const r4 = dedupe(v4);
  const r6 = dedupe(v6);
  return { backends: { 4: r4.backends, 6: r6.backends }, ready: { 4: r4.ready, 6: r6.ready }, local: local ?? NO_LOCAL };
}

/**
 * Sorts by address and drops repeats (the same address in two slices while a slice is
 * rewritten): a ready entry beats a draining one.
 */
function dedupe(list: Backend[]): { backends: readonly Backend[]; ready: number } {
  if (list.length === 0) return { backends: NONE, ready: 0 };
  list.sort((a, b) => compareBackends(a, b) || Number(a.draining) - Number(b.draining));
  let w = 0;
  let ready = 0;
  for (let r = 0; r < list.length; r++) {
    const b = list[r]!;
    if (w > 0 && list[w - 1]!.address === b.address) continue;
    list[w++] = b;
    if (!b.draining) ready++;
  }
  list.length = w;
  // An exact-size copy: a list grown by push keeps up to half again as many slots.
  return { backends: list.slice(), ready };
}
