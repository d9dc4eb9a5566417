// gre (one tunnel interface per endpoint on the tunnel node): the pod has a GRE link bound
// to its own IP that accepts GRE from any tunnel node, with the VIP on it.
// IPv6 VIPs arrive by SRv6 (seg6Decap) and are made local on the same link.
// Named kst-gre: with ip_gre loaded, gre0/gretap0/erspan0 already exist in every namespace.
import { LINK_PREFIX } from '../../system/index.js';
import type { LinkSpec } from '../objects.js';
import type { PodModeContext, PodModeDriver } from './mode.js';
import { arpSettings, hostPrefix, isIpv6, looseRpFilter, seg6Decap } from './mode.js';

export const GRE_POD_LINK = `${LINK_PREFIX}-gre`;

/** GRE over the pod IP's family: gre for IPv4 pods, ip6gre for IPv6 pods. */
export function greKind(podIp: string): 'gre' | 'ip6gre' {
  return isIpv6(podIp) ? 'ip6gre' : 'gre';
}

export function greObjects(ctx: PodModeContext, link: LinkSpec) {
  const { setup, podIf } = ctx;
  return {
    links: [link],
    addresses: setup.vips.map((vip) => hostPrefix(vip, link.name)),
    mplsRoutes: [],
    sysctls: [
      ...(setup.vips.some((v) => !isIpv6(v)) ? [looseRpFilter(link.name, true)] : []),
      ...arpSettings(podIf, setup.vips),
      ...seg6Decap(podIf, setup.vips),
    ],
  };
}

export const gre: PodModeDriver = {
  mode: 'gre',
  unsupported: () => undefined,
  objects(ctx) {
    const kind = greKind(ctx.setup.podIp);
    // local = pod IP, remote any: one link receives from every tunnel node.
    return greObjects(ctx, {
      name: GRE_POD_LINK,
      kind,
      addArgs: ['type', kind, 'local', ctx.setup.podIp],
      expect: { local: ctx.setup.podIp },
    });
  },
};
