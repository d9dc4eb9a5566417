import type { Config } from '../../config/schema.js';
import type { EncapMode } from '../../model/types.js';
import { greDriver } from './gre.js';
import { greLwtDriver } from './gre-lwt.js';
import { mplsDriver, type RouteDeviceLookup } from './mpls.js';
import type { EncapDriver } from './types.js';
import { vxlanLwtDriver } from './vxlan-lwt.js';

export type { EncapDriver } from './types.js';
export type { RouteDeviceLookup } from './mpls.js';

export function createDriver(mode: EncapMode, encap: Config['encapsulation'], lookup: RouteDeviceLookup): EncapDriver {
  switch (mode) {
    case 'vxlan-lwt':
      return vxlanLwtDriver(encap);
    case 'gre-lwt':
      return greLwtDriver();
    case 'gre':
      return greDriver();
    case 'mpls':
      return mplsDriver(encap, lookup);
  }
}
