// `kst status`'s BGP rows against real gobgpd and FRR: session state, uptime, prefix
// counts that match what each side announced, and why a session last went down.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Announcement, Cidr, IpAddress } from '../../src/model/types.js';
import { metricsRegistry, type BgpPeerReport } from '../../src/observe/index.js';
import { waitFor } from '../../src/lab/index.js';
import { renderBgpPeers } from '../../src/cli/bgp-peers.js';
import { createBgpLab, waitEstablished, waitForNextHops, type BgpLab } from './bgp-lab.js';

const svc = { namespace: 'shop', name: 'web', uid: 'u-1' };
const ROUTER_V4 = '192.0.2.1';
const ROUTER_V6 = '2001:db8:1::1';

function ann(vip: string): Announcement {
  const family = vip.includes(':') ? 6 : 4;
  return { prefix: `${vip}/${family === 4 ? 32 : 128}` as Cidr, vip: vip as IpAddress, family, communities: [], largeCommunities: [], service: svc };
}

async function uptimeMetric(peer: string): Promise<number | undefined> {
  const m = (await metricsRegistry.getMetricsAsJSON()).find((x) => x.name === 'kst_bgp_peer_uptime_seconds');
  return (m?.values as Array<{ labels: Record<string, string | number>; value: number }> | undefined)?.find((v) => v.labels.peer === peer)?.value;
}

describe('BGP peer details (kst status) with gobgpd and FRR', () => {
  let lab: BgpLab;
  let node: BgpLab['nodes'][number];
  let last: BgpPeerReport[] = [];

  const row = (address: string): BgpPeerReport | undefined => last.find((p) => p.address === address);
  /** Polls the speaker's report until `ok` holds; the failure shows the last rows. */
  async function reportUntil(ok: () => boolean, what: string): Promise<void> {
    try {
      await waitFor(async () => {
        last = await node.speaker.peerReport(2000);
        return ok();
      }, 20000, 200);
    } catch (e) {
      throw new Error(`${what}: last report ${JSON.stringify(last)}`, { cause: e });
    }
  }

  beforeAll(async () => {
    lab = await createBgpLab(1);
    node = lab.nodes[0]!;
    node.speaker.start();
    await waitEstablished(lab, 30000);
    // The router originates 2 IPv4 prefixes and 1 IPv6 prefix towards the node.
    await lab.router.vtysh(
      'configure terminal', 'router bgp 65000', 'no bgp network import-check',
      'address-family ipv4 unicast', 'network 198.51.100.0/25', 'network 198.51.100.128/25', 'exit-address-family',
      'address-family ipv6 unicast', 'network 2001:db8:ff::/48', 'exit-address-family',
    );
    node.speaker.setAnnouncements([ann('203.0.113.10'), ann('203.0.113.11'), ann('203.0.113.12'), ann('2001:db8:10::10')]);
    expect(await node.speaker.sync()).toMatchObject({ ok: true, added: 4 });
    await waitForNextHops(lab.routerNs, '203.0.113.12/32', [node.v4], 10000);
  }, 90000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it('reports Established with uptime and the prefix counts each side announced', async () => {
    await reportUntil(
      () => row(ROUTER_V4)?.prefixesAccepted === 2 && row(ROUTER_V6)?.prefixesAccepted === 1 && (row(ROUTER_V4)?.uptimeSeconds ?? 0) > 0,
      'counts or uptime never arrived',
    );
    // FRR also sends our own VIPs back (eBGP, no sender-side loop check): gobgpd counts
    // them as received and rejects them (AS loop), so received = router's + ours echoed.
    expect(row(ROUTER_V4)).toMatchObject({ state: 'established', adminDown: false, prefixesReceived: 2 + 3, prefixesAccepted: 2, prefixesAdvertised: 3 });
    expect(row(ROUTER_V6)).toMatchObject({ state: 'established', adminDown: false, prefixesReceived: 1 + 1, prefixesAccepted: 1, prefixesAdvertised: 1 });
    expect(row(ROUTER_V4)?.uptimeSeconds).toBeGreaterThan(0);
    expect(row(ROUTER_V4)?.uptimeSeconds).toBeLessThan(600);
    expect(row(ROUTER_V4)?.downtimeSeconds).toBeUndefined();
    expect(row(ROUTER_V4)?.lastError).toBeUndefined();
    expect(await uptimeMetric(ROUTER_V4)).toBeGreaterThan(0);

    const text = renderBgpPeers(last, new Date()).join('\n');
    expect(text).toMatch(/192\.0\.2\.1 +65000 +established +\d+s +5 +2 +3 +- +-/);
  });

  it('names a NOTIFICATION from the router as the last reset reason', async () => {
    const before = row(ROUTER_V4)?.uptimeSeconds ?? 0;
    await lab.router.vtysh(`clear bgp ${node.v4}`);
    await reportUntil(() => row(ROUTER_V4)?.lastError !== undefined && row(ROUTER_V4)?.state === 'established', 'no reset reason after clear bgp');
    expect(row(ROUTER_V4)?.lastError).toBe('NOTIFICATION received from the peer');
    expect(row(ROUTER_V4)?.lastErrorAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    // A new session: its uptime starts again (<= the old one plus the time this took).
    expect(row(ROUTER_V4)?.uptimeSeconds).toBeLessThanOrEqual(before + 30);
  });

  it('shows an administratively held-down peer with the agent\'s reason and time down', async () => {
    node.speaker.setPeerAdminDown(ROUTER_V6, true, 'BFD session down');
    await reportUntil(() => row(ROUTER_V6)?.adminDown === true && row(ROUTER_V6)?.state !== 'established', 'peer never went admin down');
    expect(row(ROUTER_V6)).toMatchObject({ adminDown: true, lastError: 'administratively down: BFD session down', prefixesReceived: 0 });
    expect(row(ROUTER_V6)?.uptimeSeconds).toBeUndefined();
    expect(row(ROUTER_V6)?.downtimeSeconds).toBeGreaterThanOrEqual(0);
    expect(await uptimeMetric(ROUTER_V6)).toBe(0);
    expect(renderBgpPeers(last, new Date()).join('\n')).toMatch(/2001:db8:1::1 +65000 +\w+ \(admin\) +\d+s .*administratively down: BFD session down \(\d+s ago\)/);

    node.speaker.setPeerAdminDown(ROUTER_V6, false);
    await reportUntil(() => row(ROUTER_V6)?.state === 'established', 'peer never came back');
  });
});
