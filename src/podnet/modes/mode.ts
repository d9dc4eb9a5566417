// One interface for every encapsulation: a mode turns a PodSetup into the objects the
// project needs in that pod's namespace. Modes are pure; reconcile.ts applies their output.
import type { Config } from '../../config/schema.js';
import type { EncapMode, IpAddress, PodSetup } from '../../model/types.js';
import { LINK_PREFIX } from '../../system/index.js';
import type { AddrSpec, PodObjects, SysctlSpec } from '../objects.js';

export type EncapSettings = Config['encapsulation'];

export interface PodModeContext {
  readonly setup: PodSetup;
  /** The pod's own interface, the one holding the pod IP (the CNI's veth end). */
  readonly podIf: string;
  readonly encap: EncapSettings;
}

export interface PodModeDriver {
  readonly mode: EncapMode;
  /** Why this mode cannot make `vip` local in a pod, or undefined when it can. */
  unsupported(vip: IpAddress, setup: PodSetup): string | undefined;
  /** The project's objects for the setup; VIPs `unsupported` refuses are left out. */
  objects(ctx: PodModeContext): PodObjects;
}

/** Label of the project's IPv4 addresses on `lo` (IPv4 labels must start with the device name). */
export const LO_LABEL = `lo:${LINK_PREFIX}`;

export const isIpv6 = (ip: string): boolean => ip.includes(':');

/** The pod's address of a family (its podIPs, or podIp alone), or undefined when it has none. */
export function podAddress(setup: PodSetup, family: 4 | 6): IpAddress | undefined {
  return (setup.podIps ?? [setup.podIp]).find((a) => isIpv6(a) === (family === 6));
}

export function hostPrefix(vip: IpAddress, dev: string, label?: string): AddrSpec {
  return { address: vip, prefixLen: isIpv6(vip) ? 128 : 32, dev, ...(label ? { label } : {}) };
}

export const confPath = (family: 'ipv4' | 'mpls', dev: string, key: string): string => `net/${family}/conf/${dev}/${key}`;

/**
 * The pod must never answer ARP for a VIP on its real interface (arp_ignore=1: only for
 * addresses on the interface asked), nor use a VIP as the sender of its own ARP requests
 * (arp_announce=2), or the node would learn VIP -> pod and bypass the tunnel.
 * Only IPv4 has ARP; IPv6 VIPs live on NOARP devices or on links nobody solicits.
 */
export function arpSettings(podIf: string, vips: readonly IpAddress[]): SysctlSpec[] {
  if (!vips.some((v) => !isIpv6(v))) return [];
  return [
    { path: confPath('ipv4', podIf, 'arp_ignore'), value: '1', compare: 'equal', restore: true },
    { path: confPath('ipv4', podIf, 'arp_announce'), value: '2', compare: 'equal', restore: true },
  ];
}

/**
 * Decapsulated packets arrive on the decap device with the client's address as source,
 * whose route points out of the pod's interface: strict reverse-path filtering would drop
 * them, loose (2) accepts them as long as the pod has a route back (its default route).
 */
export function looseRpFilter(dev: string, owned: boolean): SysctlSpec {
  return owned
    ? { path: confPath('ipv4', dev, 'rp_filter'), value: '2', compare: 'equal', restore: false }
    : { path: confPath('ipv4', dev, 'rp_filter'), value: '2', compare: 'rpfLoose', restore: true };
}

/**
 * IPv6 VIPs reach the pod as SRv6 in the gre modes (`encap seg6 mode encap segs POD6`;
 * vxlan-lwt uses VXLAN over IPv6 instead): the kernel strips the outer header itself
 * when the last segment is the pod's address and seg6 is enabled on `all` and on the
 * receiving interface; the inner packet is then delivered to the VIP like any local address.
 */
export function seg6Decap(podIf: string, vips: readonly IpAddress[]): SysctlSpec[] {
  if (!vips.some(isIpv6)) return [];
  return [
    { path: 'net/ipv6/conf/all/seg6_enabled', value: '1', compare: 'equal', restore: true },
    { path: `net/ipv6/conf/${podIf}/seg6_enabled`, value: '1', compare: 'equal', restore: true },
  ];
}
