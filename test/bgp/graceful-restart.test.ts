// Graceful restart (RFC 4724) against a real FRR bgpd + bfdd: a node's gobgpd, driven by a
// BgpSpeaker with gracefulRestart set, and the agent's BFD (a child process, SIGKILLable
// like a crashed agent). The router has FRR's defaults (GR helper; BFD with no
// `check-control-plane-failure` exception, as the lab has it): it must keep the node's route
// in its FIB while gobgpd and the BFD are dead, take the refreshed route back when they
// return, and still withdraw at once a node that goes silent (BFD Down while the session is
// up). A control without graceful restart shows the same kill does withdraw the route (so
// the assertion can fail).
// Order-of-magnitude bounds only; the figures are the flows bench's (fibGapMs).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { BgpSpeaker, PeerSpec } from '../../src/bgp/index.js';
import { FrrRouter, NetnsSet, waitFor } from '../../src/lab/index.js';
import { BgpNode } from '../support/bgp-node.js';
import { fibNextHops, waitForNextHops } from './bgp-lab.js';

const R4 = '198.51.100.73';
const N4 = '198.51.100.74';
const VIP = '203.0.113.88/32';
const RESTART_TIME = 60;

/** Polls the router's FIB for `ms`; returns the longest stretch without `hop` as next hop. */
async function longestGap(routerNs: string, hop: string, ms: number): Promise<number> {
  const end = Date.now() + ms;
  let missingSince: number | undefined;
  let worst = 0;
  while (Date.now() < end) {
    const t = Date.now();
    const present = (await fibNextHops(routerNs, VIP)).includes(hop);
    if (!present && missingSince === undefined) missingSince = t;
    if (present && missingSince !== undefined) {
      worst = Math.max(worst, t - missingSince);
      missingSince = undefined;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return Math.max(worst, missingSince !== undefined ? Date.now() - missingSince : 0);
}

describe('graceful restart against FRR (gobgpd and the agent\'s BFD killed and restarted)', () => {
  const ns = new NetnsSet();
  let router: FrrRouter;
  let routerNs: string;
  let nodeNs: string;
  let node: BgpNode | undefined;
  const peer = (gr: boolean): PeerSpec => ({
    address: R4, asn: 65000, holdTimeSeconds: 9, keepaliveSeconds: 3, connectRetrySeconds: 1,
    ...(gr ? { gracefulRestart: { restartTimeSeconds: RESTART_TIME } } : {}),
  });
  const newSpeaker = (gr: boolean): BgpSpeaker => node!.newSpeaker([peer(gr)], [{ prefix: VIP, family: 4, communities: [], largeCommunities: [] }]);
  const frrNeighbor = async (): Promise<Record<string, unknown>> =>
    ((await router.vtyshJson<Record<string, Record<string, unknown>>>(`show bgp neighbors ${N4} json`))[N4] ?? {});
  const established = async (): Promise<boolean> => (await frrNeighbor()).bgpState === 'Established';

  beforeAll(async () => {
    routerNs = await ns.create('kgrr');
    nodeNs = await ns.create('kgrn');
    await ns.link(routerNs, nodeNs, { aAddrs: [`${R4}/29`], bAddrs: [`${N4}/29`] });
    router = new FrrRouter({
      netns: routerNs,
      bfddConf: ['bfd', ' profile fast', '  transmit-interval 100', '  receive-interval 100', '  detect-multiplier 3'].join('\n'),
      bgpdConf: ['router bgp 65000', ` bgp router-id ${R4}`, ' no bgp ebgp-requires-policy',
        ` neighbor ${N4} remote-as 64512`, ` neighbor ${N4} timers 3 9`, ` neighbor ${N4} timers connect 1`,
        ` neighbor ${N4} bfd profile fast`].join('\n'),
    });
    await router.start();
    node = await BgpNode.start(nodeNs, N4, R4);
  }, 60000);

  afterAll(async () => {
    await node?.destroy();
    await router?.stop();
    await ns.destroy();
  });

  it('advertises the capability and FRR, as helper, sees it with our restart time', async () => {
    newSpeaker(true);
    await waitForNextHops(routerNs, VIP, [N4], 30000);
    await node!.bfd!.waitForState(R4, 'Up', 30000);
    const n = await frrNeighbor();
    expect(JSON.stringify(n.gracefulRestartInfo ?? n)).toMatch(/restart/i);
    const gr = n.gracefulRestartInfo as { remoteGrMode?: string; timers?: { receivedRestartTimer?: number } } | undefined;
    expect(gr?.remoteGrMode).toBe('Restart');
    expect(gr?.timers?.receivedRestartTimer).toBe(RESTART_TIME);
  }, 60000);

  it('a restarted agent adopting the running gobgpd withdraws nothing before its first announcement set (fail static)', async () => {
    const s = node!.newSpeaker([peer(true)]);
    expect((await s.sync()).ok).toBe(true);
    // The model is not ready yet: the route stays in gobgpd and at the router.
    expect(await longestGap(routerNs, N4, 2000)).toBe(0);
    expect((await node!.client!.listLocalRoutes(4)).map((r) => r.prefix)).toEqual([VIP]);
    s.setRoutes([{ prefix: VIP, family: 4, communities: [], largeCommunities: [] }]);
    expect(await s.sync()).toMatchObject({ ok: true, added: 0, withdrawn: 0 });
    expect(await fibNextHops(routerNs, VIP)).toEqual([N4]);
  }, 60000);

  it('keeps the route in the router\'s FIB while gobgpd and the BFD are SIGKILLed, and refreshes it when they return', async () => {
    const t0 = Date.now();
    // An agent and its gobgpd dying together (restart-all, a crash): the kernel closes the
    // TCP session at once (graceful restart starts at the router), BFD goes Down at the
    // router only after its detection time, which FRR then ignores (the session is down).
    await node!.killAgentAndGobgpd();
    // Dead for 5 s: the route must stay (stale), BFD Down notwithstanding.
    const gapWhileDead = await longestGap(routerNs, N4, 5000);
    expect(gapWhileDead).toBe(0);
    expect(await established()).toBe(false);
    const route = await router.vtyshJson<{ paths?: Array<{ stale?: boolean }> }>(`show bgp ipv4 unicast ${VIP} json`);
    expect(route.paths?.[0]?.stale).toBe(true);

    // They come back (new processes): the Restart State bit keeps the stale route until our End-of-RIB.
    await node!.gobgpd.start();
    const bfd = await node!.startBfd();
    newSpeaker(true);
    let worst = 0;
    await waitFor(async () => {
      worst = Math.max(worst, await longestGap(routerNs, N4, 200));
      return established();
    }, 40000, 0);
    // Refreshed: not stale any more.
    await waitFor(async () => {
      const r = await router.vtyshJson<{ paths?: Array<{ stale?: boolean }> }>(`show bgp ipv4 unicast ${VIP} json`);
      return r.paths?.length === 1 && !r.paths[0]!.stale;
    }, 15000, 200);
    worst = Math.max(worst, await longestGap(routerNs, N4, 1000));
    expect(worst).toBe(0);
    await bfd.waitForState(R4, 'Up', 30000);
    // Order of magnitude: back within the restart time, and well within a minute here.
    expect(Date.now() - t0).toBeLessThan(RESTART_TIME * 1000);
  }, 90000);

  it('a node that goes silent (no FIN, all packets dropped): BFD Down withdraws its route at once, graceful restart notwithstanding', async () => {
    await node!.bfd!.waitForState(R4, 'Up', 30000);
    await waitFor(established, 30000, 200);
    await waitForNextHops(routerNs, VIP, [N4], 30000);
    // A dead node sends nothing more: BFD (300 ms) or the hold timer (9 s) can tell.
    const t = Date.now();
    await node!.silence();
    await waitForNextHops(routerNs, VIP, [], 9000);
    const ms = Date.now() - t;
    console.log(`graceful-restart.test: a silent node's VIP left the router's FIB ${ms} ms after it went silent (BFD 100 ms x 3, hold time 9 s, graceful restart on)`);
    expect(ms).toBeLessThan(3000);
    // Withdrawn, not kept stale: the BFD Down came while the session was up.
    const route = await router.vtyshJson<{ paths?: unknown[] }>(`show bgp ipv4 unicast ${VIP} json`);
    expect(route.paths ?? []).toHaveLength(0);
    await node!.unsilence();
    await waitFor(established, 40000, 200);
    await waitForNextHops(routerNs, VIP, [N4], 30000);
  }, 90000);

  it('an agent crash alone (our BFD dies, gobgpd lives): withdrawn by default; kept with the router\'s check-control-plane-failure', async () => {
    await node!.bfd!.waitForState(R4, 'Up', 30000);
    // Default: a BFD Down while the session is up is taken for a forwarding failure (C bit clear
    // or not): safe, traffic moves to the other tunnel nodes.
    const t = Date.now();
    await node!.killBfd();
    await waitForNextHops(routerNs, VIP, [], 10000);
    const ms = Date.now() - t;
    console.log(`graceful-restart.test: without check-control-plane-failure, BFD Down withdrew the VIP ${ms} ms after our BFD was killed`);
    expect(ms).toBeLessThan(3000);
    // The opt-in exception: our C bit is clear, so FRR ignores the BFD Down of a GR-capable peer.
    await router.vtysh('configure terminal', 'router bgp 65000', `neighbor ${N4} bfd check-control-plane-failure`);
    await (await node!.startBfd()).waitForState(R4, 'Up', 30000);
    await waitFor(established, 40000, 200);
    await waitForNextHops(routerNs, VIP, [N4], 30000);
    await node!.killBfd();
    // BFD Down at the router after 300 ms; 3 s is ten detection times.
    const gap = await longestGap(routerNs, N4, 3000);
    expect(gap).toBe(0);
    expect(await established()).toBe(true);
    const peers = await router.vtyshJson<Record<string, { status?: string }>>('show bfd peers json');
    expect(JSON.stringify(peers)).toMatch(/"status":"down"/);
    await router.vtysh('configure terminal', 'router bgp 65000', `no neighbor ${N4} bfd check-control-plane-failure`);
    await node!.startBfd();
  }, 120000);

  it('control: without graceful restart the same SIGKILL withdraws the route within seconds', async () => {
    newSpeaker(false);
    // UpdatePeer (capability change) resets the session; wait until it is back with the route.
    await waitFor(async () => (await established()) && !JSON.stringify((await frrNeighbor()).gracefulRestartInfo ?? {}).includes('"remoteGrMode":"Restart"'), 40000, 200);
    await waitForNextHops(routerNs, VIP, [N4], 30000);
    const t = Date.now();
    void node!.speaker!.stop();
    await node!.gobgpd.stop('SIGKILL');
    await waitForNextHops(routerNs, VIP, [], 10000);
    expect(Date.now() - t).toBeLessThan(5000);
    await node!.gobgpd.start();
  }, 90000);
});
