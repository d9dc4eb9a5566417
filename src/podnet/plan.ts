// The pure diff between the objects a pod should have and what its namespace holds.
// Only the project's objects are ever named in a plan: links with the project prefix,
// addresses on them or labelled lo:kst, MPLS routes with the project's protocol, and the
// settings the modes ask for (whose original values are put back on removal).
import { LINK_PREFIX, ROUTE_PROTOCOL } from '../system/index.js';
import { LO_LABEL } from './modes/mode.js';
import type { KernelLink, LinkSpec, PodKernelState, PodObjects, SysctlSpec } from './objects.js';

export const RP_FILTER_ALL = 'net/ipv4/conf/all/rp_filter';

export interface SysctlWrite {
  readonly path: string;
  readonly value: string;
}

export interface PodPlan {
  /** Settings of devices that exist already (MPLS input before the MPLS route needs it). */
  readonly sysctlsBefore: readonly SysctlWrite[];
  /** `ip -batch -` lines: links and addresses. */
  readonly ipBatch: readonly string[];
  /** `ip -f mpls -batch -` lines (a batch has one address family). */
  readonly mplsBatch: readonly string[];
  /** Settings of links made by this batch, and originals put back. */
  readonly sysctlsAfter: readonly SysctlWrite[];
  /** Original values seen before the project first changed them (to restore later). */
  readonly originalsToRecord: ReadonlyMap<string, string>;
  /** Originals written back by this plan (forget them once it is applied). */
  readonly originalsRestored: readonly string[];
  readonly ops: number;
}

export const isOwnedLink = (name: string): boolean => name.startsWith(LINK_PREFIX);

/** Paths the reconciler must read for `planPod` to decide. */
export function sysctlPathsToRead(desired: PodObjects, originals: ReadonlyMap<string, string>): string[] {
  const paths = new Set(desired.sysctls.map((s) => s.path));
  if (desired.sysctls.some((s) => s.compare === 'rpfLoose')) paths.add(RP_FILTER_ALL);
  for (const p of originals.keys()) paths.add(p);
  return [...paths].sort();
}

function linkMatches(spec: LinkSpec, actual: KernelLink): boolean {
  if (actual.kind !== spec.kind) return false;
  if (spec.mac && actual.mac?.toLowerCase() !== spec.mac.toLowerCase()) return false;
  if (spec.noarp !== undefined && actual.noarp !== spec.noarp) return false;
  return Object.entries(spec.expect).every(([k, v]) => actual.info[k] === v);
}

function settingSatisfied(spec: SysctlSpec, current: string | undefined, sysctls: ReadonlyMap<string, string>): boolean {
  if (current === undefined) return false;
  switch (spec.compare) {
    case 'equal':
      return current === spec.value;
    case 'atLeast':
      return Number(current) >= Number(spec.value);
    case 'rpfLoose':
      // The kernel filters with max(all, dev): strict (1) only when that maximum is 1.
      return Math.max(Number(sysctls.get(RP_FILTER_ALL) ?? '0'), Number(current)) !== 1;
  }
}

export function planPod(desired: PodObjects, actual: PodKernelState, originals: ReadonlyMap<string, string>): PodPlan {
  const ipBatch: string[] = [];
  const mplsBatch: string[] = [];

  // Links: delete what is not wanted or no longer matches (a changed pod IP, VNI or mode
  // cannot be edited in place), create what is missing, bring up what is down.
  const kept = new Map<string, KernelLink>();
  for (const link of actual.links.filter((l) => isOwnedLink(l.name))) {
    const spec = desired.links.find((s) => s.name === link.name);
    if (spec && linkMatches(spec, link)) kept.set(link.name, link);
    else ipBatch.push(`link del ${link.name}`);
  }
  const linkAdds: string[] = [];
  for (const spec of desired.links) {
    const have = kept.get(spec.name);
    // No IPv6 link-local address of our own (it must be set before the link comes up).
    if (!have) linkAdds.push(`link add ${spec.name} ${spec.addArgs.join(' ')}`, `link set ${spec.name} addrgenmode none`, `link set ${spec.name} up`);
    else if (!have.up) linkAdds.push(`link set ${spec.name} up`);
  }

  // Addresses the project owns: every non-link-local address on a kept project link, and
  // the addresses labelled lo:kst.
  const key = (dev: string, addr: string, len: number) => `${dev} ${addr}/${len}`;
  const owned = new Set<string>();
  for (const link of actual.links) {
    const ours = kept.has(link.name);
    for (const a of link.addresses) {
      if (ours ? a.scope !== 'link' : link.name === 'lo' && a.label === LO_LABEL) owned.add(key(link.name, a.address, a.prefixLen));
    }
  }
  const wanted = new Map(desired.addresses.map((a) => [key(a.dev, a.address, a.prefixLen), a]));
  const addrDels = [...owned].filter((k) => !wanted.has(k)).sort().map((k) => {
    const [dev, cidr] = k.split(' ') as [string, string];
    return `addr del ${cidr} dev ${dev}`;
  });
  const addrAdds = [...wanted].filter(([k]) => !owned.has(k)).map(([, a]) =>
    `addr add ${a.address}/${a.prefixLen} dev ${a.dev}${a.label ? ` label ${a.label}` : ''}${a.address.includes(':') ? ' nodad' : ''}`);
  ipBatch.push(...addrDels, ...linkAdds, ...addrAdds);

  // MPLS routes with the project's protocol.
  for (const r of actual.mplsRoutes) {
    if (!desired.mplsRoutes.some((d) => d.label === r.label && d.dev === r.dev)) mplsBatch.push(`route del ${r.label}`);
  }
  for (const d of desired.mplsRoutes) {
    if (!actual.mplsRoutes.some((r) => r.label === d.label && r.dev === d.dev)) {
      mplsBatch.push(`route add ${d.label} dev ${d.dev} proto ${ROUTE_PROTOCOL}`);
    }
  }

  // Settings: write what differs; a setting of a device made by this batch waits for it.
  const sysctlsBefore: SysctlWrite[] = [];
  const sysctlsAfter: SysctlWrite[] = [];
  const originalsToRecord = new Map<string, string>();
  for (const spec of desired.sysctls) {
    const current = actual.sysctls.get(spec.path);
    if (settingSatisfied(spec, current, actual.sysctls)) continue;
    if (current === undefined) {
      sysctlsAfter.push({ path: spec.path, value: spec.value });
    } else {
      if (spec.restore && !originals.has(spec.path)) originalsToRecord.set(spec.path, current);
      sysctlsBefore.push({ path: spec.path, value: spec.value });
    }
  }
  const desiredPaths = new Set(desired.sysctls.map((s) => s.path));
  const originalsRestored: string[] = [];
  for (const [path, value] of originals) {
    if (desiredPaths.has(path)) continue;
    originalsRestored.push(path);
    // The device may be gone (nothing to restore then) or already back at its value.
    const current = actual.sysctls.get(path);
    if (current !== undefined && current !== value) sysctlsAfter.push({ path, value });
  }

  return {
    sysctlsBefore,
    ipBatch,
    mplsBatch,
    sysctlsAfter,
    originalsToRecord,
    originalsRestored,
    ops: ipBatch.length + mplsBatch.length + sysctlsBefore.length + sysctlsAfter.length,
  };
}
