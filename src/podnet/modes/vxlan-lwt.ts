// vxlan-lwt: the tunnel node sends `encap ip id VNI dst POD` (IPv4 VIPs) or `encap ip6 id
// VNI dst POD6 csum` (IPv6 VIPs) through its `vxlan external` link; the pod receives the
// UDP datagram on its address of the VIP's family, a VXLAN link of that family with the same
// VNI and port decapsulates it, and the VIP on that link makes the inner packet local.
// A VXLAN device has one address family, so a pod serving both has two links: kst-vxlan
// bound to its IPv4 address and kst-vxlan6 bound to its IPv6 address. No seg6 anywhere.
// Convention shared with the tunnel side: src/dataplane/drivers/vxlan-lwt.ts.
import { VXLAN_POD_MAC } from '../../system/vxlan-convention.js';
import type { IpAddress } from '../../model/types.js';
import { LINK_PREFIX } from '../../system/index.js';
import type { AddrSpec, LinkSpec } from '../objects.js';
import type { PodModeContext, PodModeDriver } from './mode.js';
import { arpSettings, hostPrefix, isIpv6, looseRpFilter, podAddress } from './mode.js';

export const VXLAN_POD_LINK = `${LINK_PREFIX}-vxlan`;
export const VXLAN_POD_LINK6 = `${LINK_PREFIX}-vxlan6`;

/**
 * The pod link's own address is the inner destination MAC of the tunnel node's frames (its
 * permanent neighbours behind `via VXLAN_GATEWAY onlink` and `via VXLAN_GATEWAY6`): an
 * Ethernet device hands the IP layer only frames addressed to it (TCP drops even broadcast
 * ones), and it must differ from the sender's MAC, which VXLAN would drop as a loop. One
 * constant for both sides and both families.
 */
export { VXLAN_POD_MAC };

/** The decap link of one family, bound (`local`) to the pod's address of that family. */
function vxlanPodLink(name: string, local: IpAddress, encap: PodModeContext['encap']): LinkSpec {
  return {
    name,
    kind: 'vxlan',
    addArgs: [
      'address', VXLAN_POD_MAC,
      'arp', 'off',
      'type', 'vxlan', 'id', String(encap.vni), 'dstport', String(encap.vxlanPort), 'local', local,
      // Receive-only: never learn remote MACs (the link never transmits).
      'nolearning',
    ],
    // No udp6zerocsumrx on the IPv6 link: the tunnel node sends with a UDP checksum (`csum`).
    expect: { id: encap.vni, port: encap.vxlanPort, [isIpv6(local) ? 'local6' : 'local']: local, learning: false },
    mac: VXLAN_POD_MAC,
    noarp: true,
  };
}

export const vxlanLwt: PodModeDriver = {
  mode: 'vxlan-lwt',
  unsupported(vip, setup) {
    const family = isIpv6(vip) ? 6 : 4;
    return podAddress(setup, family) === undefined
      ? `vxlan-lwt carries an IPv${family} VIP to the pod's IPv${family} address, and pod ${setup.pod.namespace}/${setup.pod.name} has none`
      : undefined;
  },
  objects({ setup, podIf, encap }) {
    const links: LinkSpec[] = [];
    const addresses: AddrSpec[] = [];
    for (const [family, name] of [[4, VXLAN_POD_LINK], [6, VXLAN_POD_LINK6]] as const) {
      const vips = setup.vips.filter((v) => isIpv6(v) === (family === 6));
      const local = podAddress(setup, family);
      if (vips.length === 0 || local === undefined) continue;
      links.push(vxlanPodLink(name, local, encap));
      addresses.push(...vips.map((vip) => hostPrefix(vip, name)));
    }
    return {
      links,
      addresses,
      mplsRoutes: [],
      sysctls: [
        // IPv6 has no reverse-path filter of its own and no ARP: both concern IPv4 only.
        ...(links.some((l) => l.name === VXLAN_POD_LINK) ? [looseRpFilter(VXLAN_POD_LINK, true)] : []),
        ...arpSettings(podIf, setup.vips),
      ],
    };
  },
};
