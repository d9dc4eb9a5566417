// gre: one classic GRE link per endpoint (`kst-g<hash>` with `remote POD`), as the original
// project did; each bucket route points at the endpoint's link. IPv6 VIPs use seg6 (seg6.ts)
// hung on `lo`, since there is no shared link in this mode.
import type { IpFamily } from '../../model/types.js';
import { greEndpointLink, greEndpointLinkName } from '../links.js';
import { seg6Nexthop } from './seg6.js';
import type { EncapDriver } from './types.js';

export function greDriver(): EncapDriver {
  return {
    mode: 'gre',
    families: [4, 6],
    links: (endpoints) => endpoints.filter((e) => !e.includes(':')).map(greEndpointLink),
    nexthop: (endpoint: string, family: IpFamily) =>
      family === 6 ? seg6Nexthop('lo', endpoint) : `dev ${greEndpointLinkName(endpoint)}`,
    usable: () => true,
  };
}
