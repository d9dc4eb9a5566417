// Per-VIP peers and attributes against gobgpd and FRR: a VIP restricted to some peers
// reaches only those (gobgpd's export policy), a change of the restriction reaches paths
// already sent, and FRR receives the communities, large communities and
// LOCAL_PREF the VIP carries.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Announcement, Cidr, IpAddress } from '../../src/model/types.js';
import { waitFor } from '../../src/lab/index.js';
import { createNodePeersLab, NODE, ROUTER, ROUTER_ASN, routerBgpdConfig, waitNeighbor, type NodePeersLab } from './node-peers-lab.js';

const svc = { namespace: 'shop', name: 'web', uid: 'u-1' };
const ann = (vip: string, extra: Partial<Announcement> = {}): Announcement => {
  const family = vip.includes(':') ? 6 : 4;
  return { prefix: `${vip}/${family === 4 ? 32 : 128}` as Cidr, vip: vip as IpAddress, family, communities: [], largeCommunities: [], service: svc, ...extra };
};

// iBGP (same AS), so that LOCAL_PREF is sent and FRR keeps it.
const routerBgpd = routerBgpdConfig({ routerAsn: 64512, nodeAsn4: 64512, nodeAsn6: 64512, ebgp: false });

type Paths = { paths?: Array<{ community?: { string: string }; largeCommunity?: { string: string }; locPrf?: number }> };

describe('per-VIP peers and attributes (gobgpd export policy, FRR)', () => {
  let lab: NodePeersLab;
  const has = async (prefix: string): Promise<boolean> => {
    const fam = prefix.includes(':') ? 'ipv6' : 'ipv4';
    const j = await lab.router.vtyshJson<Paths>(`show bgp ${fam} unicast ${prefix} json`);
    return (j.paths?.length ?? 0) > 0;
  };

  beforeAll(async () => {
    void ROUTER_ASN;
    lab = await createNodePeersLab({
      bgp: { asn: 64512, routerId: NODE.v4, peers: [{ address: ROUTER.v4, asn: 64512, holdTimeSeconds: 9, keepaliveSeconds: 3 }, { address: ROUTER.v6, asn: 64512, holdTimeSeconds: 9, keepaliveSeconds: 3 }] },
      routerBgpd,
      verbose: process.env.KST_TEST_VERBOSE === '1',
    });
    await lab.apply({});
    await waitNeighbor(lab, NODE.v4, (s) => s === 'Established', 30000);
    await waitNeighbor(lab, NODE.v6, (s) => s === 'Established', 30000);
    await waitFor(() => lab.speaker.peerStates().every((p) => p.state === 'established'), 10000, 100);
  }, 60000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it('a VIP restricted to another peer does not reach this one; unrestricted and allowed VIPs do, with their attributes', async () => {
    lab.speaker.setAnnouncements([
      ann('203.0.113.80', { peers: [ROUTER.v6 as IpAddress] }), // not for the IPv4 session
      ann('203.0.113.81', { communities: ['64512:81'], largeCommunities: ['64512:8:1'], localPref: 181 }),
      ann('203.0.113.82', { peers: [ROUTER.v4 as IpAddress], communities: ['64512:82'] }),
      ann('2001:db8:80::1', { peers: [ROUTER.v6 as IpAddress], localPref: 280 }),
    ]);
    const r = await lab.speaker.sync();
    expect(r).toMatchObject({ ok: true });
    await waitFor(() => has('203.0.113.81/32'), 10000, 200);
    await waitFor(() => has('203.0.113.82/32'), 10000, 200);
    await waitFor(() => has('2001:db8:80::1/128'), 10000, 200);
    await new Promise((res) => setTimeout(res, 1000));
    expect(await has('203.0.113.80/32')).toBe(false);
    // gobgpd has it; only the export policy keeps it from the IPv4 session.
    expect((await lab.client.listLocalRoutes(4)).map((x) => x.prefix)).toContain('203.0.113.80/32');
    const p81 = (await lab.router.vtyshJson<Paths>('show bgp ipv4 unicast 203.0.113.81/32 json')).paths![0]!;
    expect([p81.community?.string, p81.largeCommunity?.string, p81.locPrf]).toEqual(['64512:81', '64512:8:1', 181]);
    const p6 = (await lab.router.vtyshJson<Paths>('show bgp ipv6 unicast 2001:db8:80::1/128 json')).paths![0]!;
    expect(p6.locPrf).toBe(280);
  }, 60000);

  it('the restriction changes: the path held back reaches the newly allowed peer, and one now excluded is withdrawn from it', async () => {
    lab.speaker.setAnnouncements([
      ann('203.0.113.80', { peers: [ROUTER.v4 as IpAddress, ROUTER.v6 as IpAddress] }),
      ann('203.0.113.81', { communities: ['64512:81'], largeCommunities: ['64512:8:1'], localPref: 181 }),
      ann('203.0.113.82', { peers: [ROUTER.v6 as IpAddress], communities: ['64512:82'] }),
      ann('2001:db8:80::1', { peers: [ROUTER.v6 as IpAddress], localPref: 280 }),
    ]);
    expect(await lab.speaker.sync()).toMatchObject({ ok: true });
    await waitFor(() => has('203.0.113.80/32'), 10000, 200);
    await waitFor(async () => !(await has('203.0.113.82/32')), 10000, 200);
    expect(await has('203.0.113.81/32')).toBe(true);
  }, 60000);
});
