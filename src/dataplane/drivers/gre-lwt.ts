// gre-lwt: one metadata-based GRE link (`kst-gre`, external/collect_md) and per-route
// `encap ip dst POD`: no interface per endpoint. GRE is layer 3, so no neighbour is involved.
// Pod side: a GRE link with the pod's address as local (`type gre local POD`), the VIP on it.
// IPv6 VIPs use seg6 (seg6.ts) on the same link.
import type { IpFamily } from '../../model/types.js';
import { GRE_LWT_LINK } from '../layout.js';
import { greLwtLink } from '../links.js';
import { seg6Nexthop } from './seg6.js';
import type { EncapDriver } from './types.js';

export function greLwtDriver(): EncapDriver {
  return {
    mode: 'gre-lwt',
    families: [4, 6],
    links: () => [greLwtLink()],
    nexthop: (endpoint: string, family: IpFamily) =>
      family === 6 ? seg6Nexthop(GRE_LWT_LINK, endpoint) : `dev ${GRE_LWT_LINK} encap ip dst ${endpoint}`,
    usable: () => true,
  };
}
