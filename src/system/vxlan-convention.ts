// The VXLAN conventions the tunnel node (src/dataplane) and the pod side (src/podnet)
// share: here, below both, so that neither area imports the other.

/**
 * The tunnel node's VXLAN link is Ethernet: the inner frame needs a destination MAC the
 * pod accepts as its own, different from the sender's (VXLAN drops frames whose source is
 * its own MAC as loops). Every VXLAN route goes `via VXLAN_GATEWAY onlink` (IPv4 VIPs) or
 * `via VXLAN_GATEWAY6` (IPv6 VIPs; a link-local gateway is on-link by definition), each a
 * link-local address with one permanent neighbour entry: VXLAN_POD_MAC. Convention: the
 * pod's VXLAN links carry VXLAN_POD_MAC. The node's link is NOARP, so no ARP or neighbour
 * solicitation is ever sent into it.
 * ("kst" = 6b 73 74; 02 = locally administered unicast; 169.254.75.83 and fe80::4b53 = "KS".)
 */
export const VXLAN_NODE_MAC = '02:6b:73:74:00:01';
export const VXLAN_POD_MAC = '02:6b:73:74:00:02';
export const VXLAN_GATEWAY = '169.254.75.83';
export const VXLAN_GATEWAY6 = 'fe80::4b53';
