// What an encapsulation mode means for the rest of the system, written once beside the
// mode (STYLE.md: mode policy lives in the mode, not in `if (mode === ...)` spread over
// the code). Pure.
import type { EncapMode } from './types.js';

export interface ModeTraits {
  /**
   * Who sends a VIP's traffic to the pods and announces the VIP: the nodes matching
   * tunnelNodeSelector, or (mpls: labels reach only L2 neighbours) every node with a ready
   * local endpoint.
   */
  readonly announcers: 'tunnel-nodes' | 'serving-nodes';
  /** The endpoints a node's bucket table hashes over: all of the VIP's, or only its own. */
  readonly hashOver: 'all-endpoints' | 'local-endpoints';
  /** Every node computes the same table for a VIP, so it can be stored and shared. */
  readonly sharedTables: boolean;
  /** The pod side holds an MPLS route (the label pop) besides its links and addresses. */
  readonly podMplsRoute: boolean;
}

const TUNNELLED: ModeTraits = { announcers: 'tunnel-nodes', hashOver: 'all-endpoints', sharedTables: true, podMplsRoute: false };

const TRAITS: Readonly<Record<EncapMode, ModeTraits>> = {
  gre: TUNNELLED,
  'gre-lwt': TUNNELLED,
  'vxlan-lwt': TUNNELLED,
  mpls: { announcers: 'serving-nodes', hashOver: 'local-endpoints', sharedTables: false, podMplsRoute: true },
};

export function modeTraits(mode: EncapMode): ModeTraits {
  return TRAITS[mode];
}
