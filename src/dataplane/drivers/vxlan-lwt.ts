// vxlan-lwt: one metadata-based VXLAN link (`kst-vxlan`, external/collect_md) and per-route
// `encap ip id VNI dst POD` (IPv4 VIPs) or `encap ip6 id VNI dst POD6 csum` (IPv6 VIPs):
// no interface per endpoint. A VIP is tunnelled to endpoints of its own family, so an IPv6
// VIP rides VXLAN with an IPv6 outer header to the pod's IPv6 address. That needs nothing
// but VXLAN in the kernel (no seg6, which some kernel builds lack: docs/dataplane.md).
//
// POD-SIDE CONVENTION (the serving node's podnet area sets this up inside each pod):
//   - a VXLAN link per family in the pod, MAC 02:6b:73:74:00:02 (VXLAN_POD_MAC), bound to
//     the pod's address of that family (an IPv6 VXLAN device is a device of its own):
//       ip link add kst-vxlan address 02:6b:73:74:00:02 type vxlan \
//         id <encapsulation.vni, 4242> dstport <encapsulation.vxlanPort, 4789> local POD nolearning
//       ip link add kst-vxlan6 address 02:6b:73:74:00:02 type vxlan \
//         id <vni> dstport <port> local POD6 nolearning
//       ip link set kst-vxlan[6] arp off up
//     (no remote, not external: each receives on its family's wildcard socket for that VNI)
//   - the VIPs as local addresses on them: ip addr add <VIP>/32 dev kst-vxlan,
//     ip addr add <VIP6>/128 dev kst-vxlan6 nodad
//   - reverse-path filtering must not drop the client's packets arriving on kst-vxlan while
//     the route back to the client leaves by eth0: net.ipv4.conf.all.rp_filter and
//     net.ipv4.conf.kst-vxlan.rp_filter = 0 (or 2, loose). IPv6 has no such filter.
//   - why that MAC: the node's routes go `via 169.254.75.83 dev kst-vxlan onlink` and
//     `via fe80::4b53 dev kst-vxlan`, and the node has permanent neighbours for both ->
//     02:6b:73:74:00:02, so every inner frame is addressed to that MAC (source: the node's
//     02:6b:73:74:00:01). A pod link with the node's own MAC would drop the frames as loops
//     (VXLAN ignores its own source MAC).
//   - `csum`: over IPv6 a UDP checksum of zero is not allowed (RFC 6935/6936) and a VXLAN
//     device drops such datagrams unless told otherwise (udp6zerocsumrx). The sender computes
//     the checksum, so the pod link stays at the kernel's defaults and the inner frame is
//     covered end to end.
//   - replies leave directly from the pod (source = VIP) by its ordinary default route.
import type { Config } from '../../config/schema.js';
import type { IpFamily } from '../../model/types.js';
import { VXLAN_LINK } from '../layout.js';
import { VXLAN_GATEWAY, VXLAN_GATEWAY6, vxlanLink } from '../links.js';
import type { EncapDriver } from './types.js';

export function vxlanLwtDriver(encap: Config['encapsulation']): EncapDriver {
  return {
    mode: 'vxlan-lwt',
    families: [4, 6],
    links: (_endpoints, families) => [vxlanLink(encap.vxlanPort, families.has(6))],
    nexthop: (endpoint: string, family: IpFamily) =>
      family === 6
        ? `via ${VXLAN_GATEWAY6} dev ${VXLAN_LINK} encap ip6 id ${encap.vni} dst ${endpoint} csum`
        : `via ${VXLAN_GATEWAY} dev ${VXLAN_LINK} onlink encap ip id ${encap.vni} dst ${endpoint}`,
    usable: () => true,
  };
}
