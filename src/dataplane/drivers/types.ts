import type { Backend, EncapMode, IpFamily } from '../../model/types.js';
import type { LinkSpec } from '../state.js';

/**
 * One encapsulation, seen from the node that sends packets to endpoints. The plan asks it
 * for the links it needs and for the nexthop of a route to one endpoint; it never talks
 * to the kernel except in `prepare` (lookups before a plan, e.g. mpls's pod veths).
 */
export interface EncapDriver {
  readonly mode: EncapMode;
  /** VIP families this driver can carry. */
  readonly families: readonly IpFamily[];
  /**
   * Links needed to reach these endpoints (those some bucket points at); `families`: the
   * families of the VIPs this node routes (held ones too), whose routes need the links.
   */
  links(endpoints: readonly string[], families: ReadonlySet<IpFamily>): LinkSpec[];
  /**
   * Nexthop text of the route to one endpoint (`dev ... encap ...`), canonical: it is
   * compared with the readback. Throws an Error naming the endpoint when it cannot be reached.
   */
  nexthop(endpoint: string, family: IpFamily): string;
  /** Backends this node may send to; the plan re-spreads the others' buckets (mpls: local only). */
  usable(backend: Backend, node: string): boolean;
  /** Kernel lookups the next plan needs; `fresh` drops cached answers (full resync). */
  prepare?(endpoints: readonly string[], fresh: boolean): Promise<void>;
}
