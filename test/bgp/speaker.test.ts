// BgpSpeaker against the real programs: FRR (zebra + bgpd) as the data-centre router and
// one gobgpd per tunnel node, each in its own network namespace (needs root).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Announcement, Cidr, IpAddress } from '../../src/model/types.js';
import { metricsRegistry } from '../../src/observe/index.js';
import { waitFor } from '../../src/lab/index.js';
import { GobgpClient, withdrawAndWait, type BgpSpeaker } from '../../src/bgp/index.js';
import { createBgpLab, fibNextHops, fibRoute, waitEstablished, waitForNextHops, type BgpLab } from './bgp-lab.js';

const svc = { namespace: 'shop', name: 'web', uid: 'u-1' };

function ann(vip: string, extra: Partial<Announcement> = {}): Announcement {
  const family = vip.includes(':') ? 6 : 4;
  return {
    prefix: `${vip}/${family === 4 ? 32 : 128}` as Cidr,
    vip: vip as IpAddress,
    family,
    communities: [],
    largeCommunities: [],
    service: svc,
    ...extra,
  };
}

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await metricsRegistry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (m?.values as Array<{ labels: Record<string, string | number>; value: number }> | undefined)?.find((x) =>
    Object.entries(labels).every(([k, val]) => String(x.labels[k]) === val));
  return v?.value ?? 0;
}

describe('BgpSpeaker with gobgpd and FRR', () => {
  let lab: BgpLab;
  let n1: BgpLab['nodes'][number];
  let n2: BgpLab['nodes'][number];

  beforeAll(async () => {
    lab = await createBgpLab(2);
    [n1, n2] = lab.nodes as [typeof n1, typeof n2];
    for (const n of lab.nodes) n.speaker.start();
    try {
      await waitEstablished(lab, 30000);
    } catch (e) {
      throw new Error(`sessions not established: ${JSON.stringify(lab.nodes.map((n) => n.speaker.peerStates()))}\n${lab.router.logs()}\n${n1.gobgpd.logs()}`, { cause: e });
    }
  }, 60000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it('announces a VIP /32: the router learns it with the node as next hop and installs it in its FIB', async () => {
    const updatesBefore = await metricValue('kst_bgp_updates_total', { kind: 'announce' });
    n1.speaker.setAnnouncements([ann('203.0.113.10', { communities: ['65000:100'], largeCommunities: ['65000:1:2'] })]);
    const res = await n1.speaker.sync();
    expect(res).toMatchObject({ ok: true, added: 1 });
    await waitForNextHops(lab.routerNs, '203.0.113.10/32', [n1.v4], 10000);
    const route = await fibRoute(lab.routerNs, '203.0.113.10/32');
    expect(route?.protocol).toBe('bgp');
    const bgp = await lab.router.vtyshJson<{ paths: Array<{ community?: { string: string }; largeCommunity?: { string: string } }> }>('show bgp ipv4 unicast 203.0.113.10/32 json');
    expect(bgp.paths[0]?.community?.string).toBe('65000:100');
    expect(bgp.paths[0]?.largeCommunity?.string).toBe('65000:1:2');
    // Both lab speakers share the process's registry, so the gauge is checked via the result.
    expect(n1.speaker.lastResult()?.announced).toBe(1);
    expect(await metricValue('kst_bgp_updates_total', { kind: 'announce' })).toBeGreaterThanOrEqual(updatesBefore + 1);
    expect(await metricValue('kst_bgp_peer_state', { peer: '192.0.2.1' })).toBe(6);
  });

  it('spreads a VIP over both tunnel nodes (ECMP) and withdraws a node that stops announcing it', async () => {
    n2.speaker.setAnnouncements([ann('203.0.113.10')]);
    await n2.speaker.sync();
    await waitForNextHops(lab.routerNs, '203.0.113.10/32', [n1.v4, n2.v4], 10000);

    n2.speaker.setAnnouncements([]);
    expect(await n2.speaker.sync()).toMatchObject({ ok: true, withdrawn: 1 });
    await waitForNextHops(lab.routerNs, '203.0.113.10/32', [n1.v4], 10000);
    n1.speaker.setAnnouncements([]);
    await n1.speaker.sync();
    await waitForNextHops(lab.routerNs, '203.0.113.10/32', [], 10000);
  });

  it('announces an IPv6 /128 with next hop self', async () => {
    n1.speaker.setAnnouncements([ann('2001:db8:ff::10')]);
    await n1.speaker.sync();
    await waitFor(async () => (await fibNextHops(lab.routerNs, '2001:db8:ff::10/128')).length > 0, 10000, 50);
    const route = await fibRoute(lab.routerNs, '2001:db8:ff::10/128');
    expect(route?.protocol).toBe('bgp');
    // gobgpd sends its session address (or the link-local of that interface) as next hop.
    const hops = await fibNextHops(lab.routerNs, '2001:db8:ff::10/128');
    expect(hops.every((h) => h === n1.v6 || h.startsWith('fe80:'))).toBe(true);
    n1.speaker.setAnnouncements([]);
    await n1.speaker.sync();
    await waitForNextHops(lab.routerNs, '2001:db8:ff::10/128', [], 10000);
  });

  it('re-announces everything within seconds after gobgpd is SIGKILLed and restarted, and nothing stale', async () => {
    n1.speaker.setAnnouncements([ann('203.0.113.20'), ann('203.0.113.21')]);
    await n1.speaker.sync();
    await waitForNextHops(lab.routerNs, '203.0.113.21/32', [n1.v4], 10000);

    // Held down on purpose (BFD): must stay down after the restart.
    const v6peer = n1.peers[1]!.address;
    n1.speaker.setPeerAdminDown(v6peer, true, 'BFD down');
    await n1.speaker.sync();
    expect((await n1.client.listPeers(v6peer))[0]?.adminDown).toBe(true);

    await n1.gobgpd.stop('SIGKILL');
    await waitForNextHops(lab.routerNs, '203.0.113.20/32', [], 10000);
    // The set changes while the sidecar is down: .21 must not come back.
    n1.speaker.setAnnouncements([ann('203.0.113.20'), ann('203.0.113.22')]);
    const down = await n1.speaker.sync();
    expect(down.ok).toBe(false);
    expect(down.errors.join('\n')).toMatch(/gobgpd GetBgp failed: .*UNAVAILABLE/);

    const restarted = new Promise<void>((r) => n1.speaker.once('restarted', () => r()));
    const t0 = Date.now();
    await n1.gobgpd.start();
    await restarted;
    await waitForNextHops(lab.routerNs, '203.0.113.20/32', [n1.v4], 20000);
    await waitForNextHops(lab.routerNs, '203.0.113.22/32', [n1.v4], 5000);
    const seconds = (Date.now() - t0) / 1000;
    expect(seconds).toBeLessThan(20);
    expect(await fibNextHops(lab.routerNs, '203.0.113.21/32')).toEqual([]);
    expect((await n1.client.listLocalRoutes(4)).map((r) => r.prefix).sort()).toEqual(['203.0.113.20/32', '203.0.113.22/32']);
    expect((await n1.client.listPeers(v6peer))[0]?.adminDown).toBe(true);
    n1.speaker.setPeerAdminDown(v6peer, false);
    await n1.speaker.sync();
    expect((await n1.client.listPeers(v6peer))[0]?.adminDown).toBe(false);
  });

  it('a restarted agent adopts the running gobgpd and withdraws what it no longer wants', async () => {
    const speaker: BgpSpeaker = lab.restartAgent(n1);
    speaker.setAnnouncements([ann('203.0.113.22')]);
    speaker.start();
    const res = await speaker.sync();
    expect(res).toMatchObject({ ok: true, restarted: false, withdrawn: 1, added: 0 });
    await waitForNextHops(lab.routerNs, '203.0.113.20/32', [], 10000);
    expect(await fibNextHops(lab.routerNs, '203.0.113.22/32')).toEqual([n1.v4]);
  });

  it('reports a bad path with its VIP and Service, and still announces the rest', async () => {
    const before = await metricValue('kst_bgp_errors_total', { op: 'validate' });
    n2.speaker.setAnnouncements([ann('203.0.113.30', { communities: ['70000:1'] }), ann('127.0.0.1'), ann('203.0.113.31')]);
    expect(await n2.speaker.sync()).toMatchObject({ ok: true, added: 1 });
    await waitForNextHops(lab.routerNs, '203.0.113.31/32', [n2.v4], 10000);
    expect(await fibNextHops(lab.routerNs, '203.0.113.30/32')).toEqual([]);
    expect(await metricValue('kst_bgp_errors_total', { op: 'validate' })).toBe(before + 2);

    // What gobgpd itself refuses comes back with the operation and the route named.
    const bare = new GobgpClient({ target: 'unix:///nonexistent/kst-test.sock', callTimeoutMs: 2000 });
    await expect(bare.addPath({ prefix: '203.0.113.32/32', family: 4, communities: [], largeCommunities: [] })).rejects.toThrow(
      /^gobgpd AddPath path 203\.0\.113\.32\/32 failed: .*\(UNAVAILABLE\)$/);
    bare.close();
    await expect(n2.client.addPath({ prefix: '203.0.113.33/32', family: 4, communities: ['1:2:3'], largeCommunities: [] })).rejects.toThrow(
      'route 203.0.113.33/32: community "1:2:3" must be 2 numbers 0..65535 separated by ":"');
    n2.speaker.setAnnouncements([]);
    await n2.speaker.sync();
  });

  it('reports a bad peer config with the peer named, keeps the good peers, and gobgpd refusals too', async () => {
    const good = n2.peers;
    n2.speaker.setPeers([...good, { address: 'router-a', asn: 65000, holdTimeSeconds: 9, keepaliveSeconds: 3 }, { address: '192.0.2.99', asn: 65000, holdTimeSeconds: 9, keepaliveSeconds: 30 }]);
    const res = await n2.speaker.sync();
    expect(res.ok).toBe(false);
    expect(res.errors).toContain('peer router-a (AS 65000): gobgpd AddPeer peer router-a failed: address "router-a" is not an IP address');
    expect(res.errors).toContain('peer 192.0.2.99 (AS 65000): gobgpd AddPeer peer 192.0.2.99 failed: keepalive 30s must be below the hold time 9s');
    expect(await metricValue('kst_bgp_errors_total', { op: 'AddPeer' })).toBeGreaterThanOrEqual(2);
    expect((await n2.client.listPeers()).map((p) => p.state)).toEqual(['established', 'established']);
    // gobgpd's own refusal, with the peer named.
    await expect(n2.client.addPeer(good[0]!)).rejects.toThrow(`gobgpd AddPeer peer ${good[0]!.address} (AS 65000) failed: can't overwrite the existing peer: ${good[0]!.address} (UNKNOWN)`);
    await expect(n2.client.enablePeer('192.0.2.99')).rejects.toThrow("gobgpd EnablePeer peer 192.0.2.99 failed: neighbor that has 192.0.2.99 doesn't exist");
    n2.speaker.setPeers(good);
    expect((await n2.speaker.sync()).ok).toBe(true);
  });

  it('disable/enable peer (the BFD hooks) take the routes away and bring them back', async () => {
    const events: string[] = [];
    n1.speaker.on('peer', (p) => events.push(`${p.address} ${p.state}`));
    await n1.client.disablePeer(n1.peers[0]!.address, 'BFD down');
    await waitForNextHops(lab.routerNs, '203.0.113.22/32', [], 10000);
    await waitFor(() => events.some((e) => e.startsWith(`${n1.peers[0]!.address} idle`)), 5000);
    await n1.client.enablePeer(n1.peers[0]!.address);
    await waitForNextHops(lab.routerNs, '203.0.113.22/32', [n1.v4], 20000);
    await waitFor(() => events.includes(`${n1.peers[0]!.address} established`), 5000);

    // The declarative form on the speaker.
    n1.speaker.setPeerAdminDown(n1.peers[0]!.address, true, 'BFD down');
    expect((await n1.speaker.sync()).ok).toBe(true);
    await waitForNextHops(lab.routerNs, '203.0.113.22/32', [], 10000);
    expect(n1.speaker.peerStates()[0]).toMatchObject({ adminDown: true });
    n1.speaker.setPeerAdminDown(n1.peers[0]!.address, false);
    await n1.speaker.sync();
    await waitForNextHops(lab.routerNs, '203.0.113.22/32', [n1.v4], 20000);
  });

  it('withdrawAndWait withdraws, waits the grace time, then stops the speaker', async () => {
    const slept: number[] = [];
    const res = await withdrawAndWait(n1.speaker, { graceSeconds: 2, stop: true, sleep: async (ms) => {
      // During the grace time the router has already moved away from this node.
      await waitForNextHops(lab.routerNs, '203.0.113.22/32', [], 10000);
      slept.push(ms);
    } });
    expect(res?.ok).toBe(true);
    expect(slept).toEqual([2000]);
    expect((await n1.speaker.sync()).errors).toEqual(['speaker not started']);
  });
});

describe('BgpSpeaker without a reachable gobgpd', () => {
  it('reports the sidecar unreachable, keeps retrying with backoff and never throws', async () => {
    const { BgpSpeaker } = await import('../../src/bgp/index.js');
    const client = new GobgpClient({ target: 'unix:///nonexistent/kst-gobgpd.sock', callTimeoutMs: 1000 });
    const speaker = new BgpSpeaker({ client, global: { asn: 64512, routerId: '192.0.2.2', listenPort: -1 }, backoff: { initialMs: 50, maxMs: 200 } });
    let passes = 0;
    speaker.on('synced', () => (passes += 1));
    speaker.on('synced', () => {
      throw new Error('a buggy listener must not stop the loop');
    });
    speaker.start();
    speaker.setAnnouncements([ann('203.0.113.40')]);
    const res = await speaker.sync();
    expect(res.ok).toBe(false);
    expect(res.errors[0]).toMatch(/^gobgpd GetBgp failed: .*\(UNAVAILABLE\)$/);
    await waitFor(() => passes >= 4, 5000);
    speaker.stop();
    client.close();
  });
});
