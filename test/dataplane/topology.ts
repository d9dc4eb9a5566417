// A tunnel node, a client and pods in network namespaces on one layer-2 fabric (a bridge
// in its own namespace): client -> tunnel node -> (encap) -> pod, replies pod -> client.
// The pod side is set up by hand here, following the convention in
// src/dataplane/drivers/vxlan-lwt.ts (the product's pod side is the podnet area's).
import { NetnsSet } from '../../src/lab/index.js';
import { runCommand } from '../../src/system/index.js';
import { VXLAN_POD_MAC } from '../../src/dataplane/index.js';

export const CLIENT4 = '192.0.2.100';
export const CLIENT6 = '2001:db8:f::100';
export const TUNNEL4 = '192.0.2.1';
export const TUNNEL6 = '2001:db8:f::1';
export const pod4 = (i: number): string => `192.0.2.${11 + i}`;
export const pod6 = (i: number): string => `2001:db8:f::${(0x11 + i).toString(16)}`;

export interface Fabric {
  readonly sets: NetnsSet;
  readonly fabric: string;
  readonly client: string;
  readonly tunnel: string;
  readonly pods: string[];
  /** Interface of the tunnel node on the fabric. */
  readonly tunnelIf: string;
}

const ip = (netns: string, ...args: string[]) => runCommand('ip', ['-n', netns, ...args]);
const sysctl = (netns: string, kv: string) => runCommand('sysctl', ['-q', '-w', kv], { netns });

async function attach(sets: NetnsSet, fabric: string, ns: string, addrs: string[], mtu?: number): Promise<string> {
  const { aIf, bIf } = await sets.link(fabric, ns, { bAddrs: addrs });
  await ip(fabric, 'link', 'set', aIf, 'master', 'br0');
  if (mtu) {
    await ip(fabric, 'link', 'set', aIf, 'mtu', String(mtu));
    await ip(ns, 'link', 'set', bIf, 'mtu', String(mtu));
  }
  return bIf;
}

/**
 * Builds the fabric with `podCount` pods. `mtu` sets the fabric's MTU except the client's
 * link (an underlay with room for the encapsulation, as data centres configure it).
 * Pod-side SRv6 settings are left to the product (PodNetworks), which must make them itself.
 */
export async function buildFabric(podCount: number, opts: { mtu?: number } = {}): Promise<Fabric> {
  const sets = new NetnsSet();
  try {
    const fabric = await sets.create('kdf');
    await ip(fabric, 'link', 'add', 'br0', 'type', 'bridge');
    if (opts.mtu) await ip(fabric, 'link', 'set', 'br0', 'mtu', String(opts.mtu));
    await ip(fabric, 'link', 'set', 'br0', 'up');
    const client = await sets.create('kdc');
    await attach(sets, fabric, client, [`${CLIENT4}/24`, `${CLIENT6}/64`]);
    const tunnel = await sets.create('kdt');
    const tunnelIf = await attach(sets, fabric, tunnel, [`${TUNNEL4}/24`, `${TUNNEL6}/64`], opts.mtu);
    await ip(client, 'route', 'add', '203.0.113.0/24', 'via', TUNNEL4);
    await ip(client, '-6', 'route', 'add', '2001:db8:ff::/48', 'via', TUNNEL6);
    const pods: string[] = [];
    for (let i = 0; i < podCount; i++) {
      const pod = await sets.create('kdp');
      await attach(sets, fabric, pod, [`${pod4(i)}/24`, `${pod6(i)}/64`], opts.mtu);
      pods.push(pod);
      for (const kv of ['net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']) await sysctl(pod, kv);
    }
    return { sets, fabric, client, tunnel, pods, tunnelIf };
  } catch (err) {
    await sets.destroy();
    throw err;
  }
}

/**
 * The pod side of vxlan-lwt, by the documented convention (src/dataplane/drivers/vxlan-lwt.ts),
 * plus the VIPs as local addresses: IPv4 VIPs on kst-vxlan, IPv6 VIPs on kst-vxlan6, the
 * IPv6 VXLAN link bound to the pod's IPv6 address `local6` (the tunnel's outer destination).
 */
export async function setupVxlanPod(pod: string, vips4: readonly string[], vips6: readonly string[] = [], local6?: string, vni = 4242, port = 4789): Promise<void> {
  await ip(pod, 'link', 'add', 'kst-vxlan', 'address', VXLAN_POD_MAC, 'type', 'vxlan', 'id', String(vni), 'dstport', String(port), 'nolearning');
  await ip(pod, 'link', 'set', 'kst-vxlan', 'arp', 'off', 'up');
  await sysctl(pod, 'net.ipv4.conf.kst-vxlan.rp_filter=0');
  for (const v of vips4) await ip(pod, 'addr', 'add', `${v}/32`, 'dev', 'kst-vxlan');
  if (vips6.length === 0) return;
  if (!local6) throw new Error(`setupVxlanPod ${pod}: IPv6 VIPs need the pod's IPv6 address (local6)`);
  await ip(pod, 'link', 'add', 'kst-vxlan6', 'address', VXLAN_POD_MAC, 'type', 'vxlan', 'id', String(vni), 'dstport', String(port), 'local', local6, 'nolearning');
  await ip(pod, 'link', 'set', 'kst-vxlan6', 'arp', 'off', 'up');
  for (const v of vips6) await ip(pod, 'addr', 'add', `${v}/128`, 'dev', 'kst-vxlan6', 'nodad');
}
