// Peers per node against real gobgpd and FRR: the node dials only the peers whose
// nodeSelector matches its labels, with the local AS the plan gives it (FRR refuses the
// session otherwise), and a peer that leaves the node's selection is removed from gobgpd:
// FRR sees the session go and drops the routes it learnt over it, while the other
// session and its routes stay.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Announcement, Cidr, IpAddress } from '../../src/model/types.js';
import { waitFor } from '../../src/lab/index.js';
import { createNodePeersLab, NODE, ROUTER, ROUTER_ASN, routerBgpdConfig, waitNeighbor, type NodePeersLab } from './node-peers-lab.js';
import { fibNextHops, waitForNextHops } from './bgp-lab.js';

const svc = { namespace: 'shop', name: 'web', uid: 'u-1' };
const ann = (vip: string): Announcement => {
  const family = vip.includes(':') ? 6 : 4;
  return { prefix: `${vip}/${family === 4 ? 32 : 128}` as Cidr, vip: vip as IpAddress, family, communities: [], largeCommunities: [], service: svc };
};

// The router expects the node in AS 64601 (rack a's AS, given per peer) on IPv4, and in
// the cluster AS 64512 on IPv6.
const routerBgpd = routerBgpdConfig({ routerAsn: ROUTER_ASN, nodeAsn4: 64601, nodeAsn6: 64512, ebgp: true });

const peer = { asn: ROUTER_ASN, holdTimeSeconds: 9, keepaliveSeconds: 3 };

describe('peers per node (gobgpd + FRR)', () => {
  let lab: NodePeersLab;

  beforeAll(async () => {
    lab = await createNodePeersLab({
      bgp: {
        asn: 64512,
        routerId: NODE.v4,
        peers: [
          { ...peer, name: 'tor-a', address: ROUTER.v4, nodeSelector: 'rack=a', localAsn: 64601 },
          { ...peer, name: 'spine6', address: ROUTER.v6 },
        ],
      },
      routerBgpd,
    });
  }, 60000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it('a rack-a node dials both peers, with the rack AS towards tor-a; FRR learns the VIP', async () => {
    await lab.apply({ labels: { rack: 'a' } });
    lab.speaker.setAnnouncements([ann('203.0.113.70'), ann('2001:db8:70::1')]);
    await waitNeighbor(lab, NODE.v4, (s) => s === 'Established', 30000);
    await waitNeighbor(lab, NODE.v6, (s) => s === 'Established', 30000);
    const peers = await lab.client.listPeers();
    expect(peers.map((p) => [p.address, p.config.localAsn ?? 64512]).sort()).toEqual([[ROUTER.v6, 64512], [ROUTER.v4, 64601]].sort());
    await waitForNextHops(lab.routerNs, '203.0.113.70/32', [NODE.v4], 10000);
    await waitForNextHops(lab.routerNs, '2001:db8:70::1/128', [NODE.v6], 10000);
  }, 60000);

  it('relabelled to rack b: tor-a is removed from gobgpd, FRR drops the session and its route; the other session stays', async () => {
    await lab.apply({ labels: { rack: 'b' } });
    await waitFor(async () => !(await lab.client.listPeers()).some((p) => p.address === ROUTER.v4), 10000, 100);
    await waitNeighbor(lab, NODE.v4, (s) => s !== 'Established', 15000);
    await waitForNextHops(lab.routerNs, '203.0.113.70/32', [], 15000);
    expect(await lab.neighborState(NODE.v6)).toBe('Established');
    expect(await fibNextHops(lab.routerNs, '2001:db8:70::1/128')).toEqual([NODE.v6]);
    expect(lab.speaker.peerStates().map((p) => p.address)).toEqual([ROUTER.v6]);
  }, 60000);

  it('back in rack a: the session and the route return', async () => {
    await lab.apply({ labels: { rack: 'a' } });
    await waitNeighbor(lab, NODE.v4, (s) => s === 'Established', 30000);
    await waitForNextHops(lab.routerNs, '203.0.113.70/32', [NODE.v4], 10000);
  }, 60000);
});
