// A Service's endpoints, gathered from all its EndpointSlices: the serving backends per
// address family (what bucket tables hash over) and this node's endpoints (what the
// serving-node side sets up). Computed once per Service and cached until a slice changes.
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

export const NO_ENDPOINTS: ServiceEndpoints = { backends: { 4: [], 6: [] }, ready: { 4: 0, 6: 0 }, local: [] };

/**
 * EndpointSlice conditions to a backend: ready -> active; terminating but serving ->
 * draining (existing flows finish, no new buckets); anything else is not a backend.
 */
export function toBackend(e: EndpointInput): Backend | undefined {
  if (e.terminating ? !e.serving : !e.ready) return undefined;
  // Field order matches types.ts, so `kst plan --json` reads naturally.
  if (e.nodeName !== undefined && e.pod) return { address: e.address, nodeName: e.nodeName, pod: { namespace: e.pod.namespace, name: e.pod.name }, draining: e.terminating };
  if (e.nodeName !== undefined) return { address: e.address, nodeName: e.nodeName, draining: e.terminating };
  if (e.pod) return { address: e.address, pod: { namespace: e.pod.namespace, name: e.pod.name }, draining: e.terminating };
  return { address: e.address, draining: e.terminating };
}

export function collectEndpoints(slices: readonly EndpointSliceInput[], nodeName: string): ServiceEndpoints {
  const v4: Backend[] = [];
  const v6: Backend[] = [];
  const local: EndpointInput[] = [];
  for (const slice of slices) {
    if (slice.addressType === 'FQDN') continue;
    const into = slice.addressType === 'IPv4' ? v4 : v6;
    for (const e of slice.endpoints) {
      if (e.nodeName === nodeName) local.push(e);
      const b = toBackend(e);
      if (b) into.push(b);
    }
  }
  const r4 = dedupe(v4);
  const r6 = dedupe(v6);
  return { backends: { 4: r4.backends, 6: r6.backends }, ready: { 4: r4.ready, 6: r6.ready }, local };
}

/**
 * Sorts by address and drops repeats (the same address in two slices while a slice is
 * rewritten): a ready entry beats a draining one.
 */
function dedupe(list: Backend[]): { backends: Backend[]; ready: number } {
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
  return { backends: list, ready };
}
