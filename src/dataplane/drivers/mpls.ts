// mpls: runs on the serving node, which the router reaches directly (MPLS over Ethernet
// only reaches layer-2 neighbours). The node hashes among its LOCAL endpoints only and
// pushes the label towards the pod over the pod's veth:
//   VIP/32 encap mpls LABEL via inet POD dev <host side of the pod's veth>
// The veth is the device of this node's own route to the pod IP (`ip route get POD`),
// which every CNI that gives pods a veth installs. Pod side: `ip -f mpls route add LABEL
// dev lo` (pop) and the VIP on lo. IPv4 only: IPv6 VIPs are reported and not programmed.
import type { Config } from '../../config/schema.js';
import type { Backend } from '../../model/types.js';
import type { EncapDriver } from './types.js';

/** Device of this node's route to an address, or undefined when there is none. */
export type RouteDeviceLookup = (address: string) => Promise<string | undefined>;

export function mplsDriver(encap: Config['encapsulation'], lookup: RouteDeviceLookup): EncapDriver {
  const devices = new Map<string, string | undefined>();
  return {
    mode: 'mpls',
    families: [4],
    links: () => [],
    nexthop(endpoint: string) {
      const dev = devices.get(endpoint);
      if (!dev) throw new Error(`no route to pod ${endpoint} on this node: cannot find its veth`);
      return `encap mpls ${encap.mplsLabel} via inet ${endpoint} dev ${dev}`;
    },
    usable: (backend: Backend, node: string) => backend.nodeName === node,
    async prepare(endpoints, fresh) {
      if (fresh) devices.clear();
      const missing = endpoints.filter((e) => !devices.has(e) || devices.get(e) === undefined);
      const found = await Promise.all(missing.map(async (e) => [e, await lookup(e)] as const));
      for (const [e, dev] of found) devices.set(e, dev);
    },
  };
}
