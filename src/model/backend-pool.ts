// One Backend object per distinct endpoint, shared by every VIP that lists it. In a real
// cluster many Services select the same pods: at 10,000 VIPs x 100 endpoints on 5,000 pods,
// a Backend per endpoint per VIP was 1,000,000 objects (about 55 MB) where 5,000 do.
// Backends are immutable values, so sharing one is safe.
//
// The pool shrinks: it only grows by misses, and once it holds twice the backends that were
// live at its last sweep, `sweep` keeps only those its owner still uses (the owner lists
// them), so backends of removed pods do not accumulate.
import type { Backend, EndpointInput, IpAddress } from './types.js';

/** The Backend an endpoint makes, without looking at its conditions (see toBackend). */
function sameBackend(b: Backend, e: EndpointInput, draining: boolean): boolean {
  return b.draining === draining && b.nodeName === e.nodeName && b.pod?.namespace === e.pod?.namespace && b.pod?.name === e.pod?.name;
}

function makeBackend(e: EndpointInput, draining: boolean): Backend {
  // Field order matches types.ts, so `kst plan --json` reads naturally.
  const pod = e.pod ? { namespace: e.pod.namespace, name: e.pod.name } : undefined;
  if (e.nodeName !== undefined && pod) return { address: e.address, nodeName: e.nodeName, pod, draining };
  if (e.nodeName !== undefined) return { address: e.address, nodeName: e.nodeName, draining };
  if (pod) return { address: e.address, pod, draining };
  return { address: e.address, draining };
}

export class BackendPool {
  /** By address: almost always one variant; more while a pod moves or starts draining. */
  private byAddress = new Map<IpAddress, Backend[]>();
  private size = 0;
  private liveAtSweep = 0;

  /** The shared Backend for an endpoint that is a backend (`draining`: terminating but serving). */
  backendFor(e: EndpointInput, draining: boolean): Backend {
    const variants = this.byAddress.get(e.address);
    if (variants) {
      for (const b of variants) if (sameBackend(b, e, draining)) return b;
    }
    const b = makeBackend(e, draining);
    if (variants) variants.push(b);
    else this.byAddress.set(e.address, [b]);
    this.size++;
    return b;
  }

  /** The pool's copy of an address it holds a backend for (canonical: it came from an EndpointInput). */
  knownAddress(text: string): IpAddress | undefined {
    return this.byAddress.get(text as IpAddress)?.[0]?.address;
  }

  /** True once the pool holds more than twice what was live at the last sweep (and at least `floor`). */
  needsSweep(floor = 4096): boolean {
    return this.size > Math.max(floor, 2 * this.liveAtSweep);
  }

  /** Keeps only `live` backends (every list the owner still hands out). */
  sweep(live: Iterable<readonly Backend[]>): void {
    const kept = new Map<IpAddress, Backend[]>();
    let size = 0;
    for (const list of live) {
      for (const b of list) {
        const variants = kept.get(b.address);
        if (!variants) kept.set(b.address, [b]);
        else if (!variants.includes(b)) variants.push(b);
        else continue;
        size++;
      }
    }
    this.byAddress = kept;
    this.size = this.liveAtSweep = size;
  }

  /** Distinct backends held (tests, bench). */
  get backends(): number {
    return this.size;
  }
}
