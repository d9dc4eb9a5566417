// IPv6 VIPs in the gre and gre-lwt modes: SRv6 encapsulation with the endpoint pod as the
// only segment (`encap seg6 mode encap segs POD6`). Only kernels built with
// CONFIG_IPV6_SEG6_LWTUNNEL have it (docs/dataplane.md); vxlan-lwt carries IPv6 VIPs in
// VXLAN over IPv6 instead and needs no seg6. The pod decapsulates without any device: a
// segment routing header with segments-left 0 and an inner IPv6 packet is stripped by the
// kernel when `seg6_enabled` is on (net.ipv6.conf.all and the receiving interface), and
// the inner packet is delivered to the local VIP.

/** Nexthop of an IPv6 VIP's route to a pod; `dev` is the link the route hangs on (must be up). */
export function seg6Nexthop(dev: string, endpoint: string): string {
  return `dev ${dev} encap seg6 mode encap segs ${endpoint}`;
}
