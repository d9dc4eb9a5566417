import type { EncapMode } from '../../model/types.js';
import { gre } from './gre.js';
import { greLwt } from './gre-lwt.js';
import type { PodModeDriver } from './mode.js';
import { mpls } from './mpls.js';
import { vxlanLwt } from './vxlan-lwt.js';

export const podModes: Readonly<Record<EncapMode, PodModeDriver>> = {
  gre,
  'gre-lwt': greLwt,
  'vxlan-lwt': vxlanLwt,
  mpls,
};

export { LO_LABEL } from './mode.js';
export type { PodModeContext, PodModeDriver, EncapSettings } from './mode.js';
export { VXLAN_POD_LINK, VXLAN_POD_LINK6, VXLAN_POD_MAC } from './vxlan-lwt.js';
export { GRE_POD_LINK } from './gre.js';
