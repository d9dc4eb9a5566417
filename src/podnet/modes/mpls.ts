// mpls: the serving node pushes the label towards the pod over the pod's veth
// (`encap mpls LABEL via inet POD`); the pod accepts MPLS on that interface, pops the
// label and delivers locally (`ip -f mpls route add LABEL dev lo`), the VIP being on lo.
import { LINK_PREFIX } from '../../system/index.js';
import type { PodModeDriver } from './mode.js';
import { arpSettings, confPath, hostPrefix, isIpv6, LO_LABEL, looseRpFilter } from './mode.js';

export const mpls: PodModeDriver = {
  mode: 'mpls',
  unsupported(vip) {
    // On lo an address can only be marked as the project's by an IPv4 label; an IPv6 VIP
    // there could not be told apart from the pod's own addresses, so it is never made.
    return isIpv6(vip) ? `mpls mode puts VIPs on lo, where an IPv6 address cannot carry the ${LINK_PREFIX} label` : undefined;
  },
  objects({ setup, podIf, encap }) {
    const vips = setup.vips.filter((v) => !isIpv6(v));
    return {
      links: [],
      addresses: vips.map((vip) => hostPrefix(vip, 'lo', LO_LABEL)),
      mplsRoutes: [{ label: encap.mplsLabel, dev: 'lo' }],
      sysctls: [
        // The label table must be large enough to hold the label (labels 0..N-1).
        { path: 'net/mpls/platform_labels', value: String(encap.mplsLabel + 1), compare: 'atLeast', restore: true },
        { path: confPath('mpls', podIf, 'input'), value: '1', compare: 'equal', restore: true },
        looseRpFilter('lo', false),
        ...arpSettings(podIf, vips),
      ],
    };
  },
};
