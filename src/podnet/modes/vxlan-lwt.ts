// vxlan-lwt: the tunnel node sends `encap ip id VNI dst POD` through its `vxlan external`
// link; the pod receives the UDP datagram on its own IP, a VXLAN link with the same VNI
// and port decapsulates it, and the VIP on that link makes the inner packet local.
// IPv6 VIPs arrive by SRv6 (seg6Decap) and are made local on the same link.
// Convention shared with the tunnel side: src/dataplane/drivers/vxlan-lwt.ts.
import { VXLAN_POD_MAC } from '../../dataplane/index.js';
import { LINK_PREFIX } from '../../system/index.js';
import type { PodModeDriver } from './mode.js';
import { arpSettings, hostPrefix, isIpv6, looseRpFilter, seg6Decap } from './mode.js';

export const VXLAN_POD_LINK = `${LINK_PREFIX}-vxlan`;

/**
 * The pod link's own address is the inner destination MAC of the tunnel node's frames (its
 * permanent neighbour behind `via VXLAN_GATEWAY onlink`): an Ethernet device hands the IP
 * layer only frames addressed to it (TCP drops even broadcast ones), and it must differ
 * from the sender's MAC, which VXLAN would drop as a loop. One constant for both sides.
 */
export { VXLAN_POD_MAC };

export const vxlanLwt: PodModeDriver = {
  mode: 'vxlan-lwt',
  unsupported: () => undefined,
  objects({ setup, podIf, encap }) {
    const local = isIpv6(setup.podIp) ? 'local6' : 'local';
    return {
      links: [{
        name: VXLAN_POD_LINK,
        kind: 'vxlan',
        addArgs: [
          'address', VXLAN_POD_MAC,
          'arp', 'off',
          'type', 'vxlan', 'id', String(encap.vni), 'dstport', String(encap.vxlanPort), 'local', setup.podIp,
          // Receive-only: never learn remote MACs (the link never transmits).
          'nolearning',
        ],
        expect: { id: encap.vni, port: encap.vxlanPort, [local]: setup.podIp, learning: false },
        mac: VXLAN_POD_MAC,
        noarp: true,
      }],
      addresses: setup.vips.map((vip) => hostPrefix(vip, VXLAN_POD_LINK)),
      mplsRoutes: [],
      sysctls: [
        ...(setup.vips.some((v) => !isIpv6(v)) ? [looseRpFilter(VXLAN_POD_LINK, true)] : []),
        ...arpSettings(podIf, setup.vips),
        ...seg6Decap(podIf, setup.vips),
      ],
    };
  },
};
