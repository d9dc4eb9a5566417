// What the project owns inside one pod's network namespace, as plain data: the desired
// objects a mode asks for (PodObjects) and what was read back from the kernel
// (PodKernelState). The diff between the two is pure (plan.ts).
import type { IpAddress } from '../model/types.js';

/** A link the project creates in the pod; its name starts with LINK_PREFIX. */
export interface LinkSpec {
  readonly name: string;
  /** `ip -d` linkinfo kind: "vxlan", "gre", "ip6gre". */
  readonly kind: string;
  /** Arguments after `link add NAME` in an `ip -batch` line. */
  readonly addArgs: readonly string[];
  /**
   * Fields of `linkinfo.info_data` the existing link must have; any difference means the
   * link is recreated (a changed pod IP, VNI or port cannot be edited in place).
   */
  readonly expect: Readonly<Record<string, string | number | boolean>>;
  /** Link-layer address the link must carry (vxlan: the inner destination MAC). */
  readonly mac?: string;
  /** The link must not do ARP (`arp off`): the VIP on it is never announced or answered for. */
  readonly noarp?: boolean;
}

/** A VIP made local: on a project link, or on `lo` with the project's label (IPv4 only). */
export interface AddrSpec {
  readonly address: IpAddress;
  readonly prefixLen: number;
  readonly dev: string;
  /** IPv4 address label marking the address as the project's on a shared device (`lo:kst`). */
  readonly label?: string;
}

/** `ip -f mpls route add LABEL dev DEV proto 245`: pop and deliver locally. */
export interface MplsRouteSpec {
  readonly label: number;
  readonly dev: string;
}

/**
 * A kernel setting, addressed by its /proc/sys path below /proc/sys (slash form, so an
 * interface name with dots stays one component).
 *  - equal: must have exactly `value`;
 *  - atLeast: numeric value must be >= `value` (net/mpls/platform_labels);
 *  - rpfLoose: reverse-path filter must not be strict, given net/ipv4/conf/all/rp_filter
 *    (the kernel applies max(all, dev)); written as `value` when it is.
 */
export interface SysctlSpec {
  readonly path: string;
  readonly value: string;
  readonly compare: 'equal' | 'atLeast' | 'rpfLoose';
  /** Setting of a device the project does not own: put the original back on removal. */
  readonly restore: boolean;
}

export interface PodObjects {
  readonly links: readonly LinkSpec[];
  readonly addresses: readonly AddrSpec[];
  readonly mplsRoutes: readonly MplsRouteSpec[];
  readonly sysctls: readonly SysctlSpec[];
}

export const NO_OBJECTS: PodObjects = { links: [], addresses: [], mplsRoutes: [], sysctls: [] };

// ---------- read back ----------

export interface KernelAddress {
  readonly address: string;
  readonly prefixLen: number;
  readonly family: 4 | 6;
  readonly scope: string;
  readonly label?: string;
}

export interface KernelLink {
  readonly name: string;
  readonly up: boolean;
  readonly noarp: boolean;
  readonly kind?: string;
  readonly mac?: string;
  readonly info: Readonly<Record<string, unknown>>;
  readonly addresses: readonly KernelAddress[];
}

export interface KernelMplsRoute {
  readonly label: number;
  readonly dev?: string;
  readonly protocol: string;
}

export interface PodKernelState {
  readonly links: readonly KernelLink[];
  /** Only the project's MPLS routes (protocol 245); empty where MPLS is absent. */
  readonly mplsRoutes: readonly KernelMplsRoute[];
  /** /proc/sys path -> value, for the paths asked about; missing files are absent. */
  readonly sysctls: ReadonlyMap<string, string>;
}
