// One EndpointInput object per distinct endpoint, for whoever converts EndpointSlices
// (kube/objects.ts). A pod is listed in the slice of every Service that selects it: at
// 10,000 Services x 100 endpoints on 5,000 pods, an object (and a nested pod object) per
// listing was 1,000,000 of each, about 118 MB in the agent's heap, where 5,000 do.
// EndpointInputs are immutable values, so two slices may share one.
//
// Bounded like system/intern.ts's TextPool: when it holds `maxEntries` endpoints it forgets
// them all and starts again, so endpoints of removed pods cannot accumulate; endpoints still
// listed stay alive through their slices, and are pooled again as slices are rewritten.
import type { EndpointInput, IpAddress } from './types.js';

function sameEndpoint(a: EndpointInput, b: EndpointInput): boolean {
  return (
    a.nodeName === b.nodeName &&
    a.ready === b.ready &&
    a.serving === b.serving &&
    a.terminating === b.terminating &&
    a.pod?.namespace === b.pod?.namespace &&
    a.pod?.name === b.pod?.name &&
    a.pod?.uid === b.pod?.uid
  );
}

export class EndpointPool {
  /** By address: almost always one variant; more while a pod drains or moves. */
  private byAddress = new Map<IpAddress, EndpointInput[]>();
  private size = 0;

  constructor(private readonly maxEntries: number) {}

  /** The pooled endpoint equal to `e` (field by field), or `e`, now pooled. */
  intern(e: EndpointInput): EndpointInput {
    const variants = this.byAddress.get(e.address);
    if (variants) {
      for (const have of variants) if (sameEndpoint(have, e)) return have;
    }
    if (this.size >= this.maxEntries) {
      this.byAddress = new Map();
      this.size = 0;
      return this.intern(e);
    }
    if (variants) variants.push(e);
    else this.byAddress.set(e.address, [e]);
    this.size++;
    return e;
  }

  /** Distinct endpoints held (tests). */
  get endpoints(): number {
    return this.size;
  }
}
