// vxlan-lwt: one metadata-based VXLAN link (`kst-vxlan`, external/collect_md) and per-route
// `encap ip id VNI dst POD`: no interface per endpoint.
//
// POD-SIDE CONVENTION (the serving node's podnet area sets this up inside each pod):
//   - a VXLAN link in the pod, MAC 02:6b:73:74:00:02 (VXLAN_POD_MAC):
//       ip link add kst-vxlan address 02:6b:73:74:00:02 type vxlan \
//         id <encapsulation.vni, 4242> dstport <encapsulation.vxlanPort, 4789> nolearning
//       ip link set kst-vxlan arp off up
//     (no remote, not external: it receives on 0.0.0.0:<port> for that VNI)
//   - the VIP as a local address on it:  ip addr add <VIP>/32 dev kst-vxlan
//   - reverse-path filtering must not drop the client's packets arriving on kst-vxlan while
//     the route back to the client leaves by eth0: net.ipv4.conf.all.rp_filter and
//     net.ipv4.conf.kst-vxlan.rp_filter = 0 (or 2, loose).
//   - why that MAC: the node's routes go `via 169.254.75.83 dev kst-vxlan onlink`, and the
//     node has one permanent neighbour 169.254.75.83 -> 02:6b:73:74:00:02, so every inner
//     frame is addressed to that MAC (source: the node's 02:6b:73:74:00:01). A pod link with
//     the node's own MAC would drop the frames as loops (VXLAN ignores its own source MAC).
//   - replies leave directly from the pod (source = VIP) by its ordinary default route.
// IPv6 VIPs use seg6 (see seg6.ts) on the same link.
import type { Config } from '../../config/schema.js';
import type { IpFamily } from '../../model/types.js';
import { VXLAN_LINK } from '../layout.js';
import { VXLAN_GATEWAY, vxlanLink } from '../links.js';
import { seg6Nexthop } from './seg6.js';
import type { EncapDriver } from './types.js';

export function vxlanLwtDriver(encap: Config['encapsulation']): EncapDriver {
  return {
    mode: 'vxlan-lwt',
    families: [4, 6],
    links: () => [vxlanLink(encap.vxlanPort)],
    nexthop: (endpoint: string, family: IpFamily) =>
      family === 6 ? seg6Nexthop(VXLAN_LINK, endpoint) : `via ${VXLAN_GATEWAY} dev ${VXLAN_LINK} onlink encap ip id ${encap.vni} dst ${endpoint}`,
    usable: () => true,
  };
}
