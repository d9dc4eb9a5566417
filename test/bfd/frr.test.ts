// The project's BFD against the real FRR bfdd (and bgpd for the route withdrawal part):
// router namespace running FRR, node namespace running the agent's BFD (a child process,
// so it can be SIGKILLed like a crashed agent) and gobgpd announcing a VIP.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BfdChild } from '../../src/bfd/child.js';
import { ensureGtsm } from '../../src/bfd/index.js';
import { GobgpClient, GobgpdProcess } from '../../src/bgp/index.js';
import { FrrRouter, NetnsSet, waitFor } from '../../src/lab/index.js';
import { frrCounters as readFrrCounters, frrPeer as readFrrPeer, type FrrCounters, type FrrPeer } from './frr-peers.js';

const R4 = '198.51.100.65';
const N4 = '198.51.100.66';
const R6 = '2001:db8:bfd0::1';
const N6 = '2001:db8:bfd0::2';
const VIP = '203.0.113.77';
const fast = { minTxMs: 100, minRxMs: 100, multiplier: 3 };

describe('BFD against FRR bfdd (real peer)', () => {
  const ns = new NetnsSet();
  let router: FrrRouter;
  let routerNs: string;
  let nodeNs: string;
  let agent: BfdChild | undefined;
  let gobgpd: GobgpdProcess | undefined;
  let bgp: GobgpClient | undefined;

  const frrPeer = (peer: string): Promise<FrrPeer | undefined> => readFrrPeer(router, peer);
  const frrCounters = (peer: string): Promise<FrrCounters> => readFrrCounters(router, peer);
  const vipInFib = async (): Promise<boolean> => (await router.kernelRoutes(4)).some((r) => r.dst === VIP && r.protocol === 'bgp');
  const sessions = [
    { peer: R4, local: N4, profile: fast },
    // Differing intervals: we send every 300 ms at most and want FRR's packets no faster than 200 ms.
    { peer: R6, local: N6, profile: { minTxMs: 300, minRxMs: 200, multiplier: 3 } },
  ];

  beforeAll(async () => {
    routerNs = await ns.create('kbfr');
    nodeNs = await ns.create('kbfn');
    const { aIf } = await ns.link(routerNs, nodeNs, { aAddrs: [`${R4}/29`, `${R6}/64`], bAddrs: [`${N4}/29`, `${N6}/64`] });
    router = new FrrRouter({
      netns: routerNs,
      // IPv4: the session bgpd asks for (`neighbor X bfd profile fast`); IPv6: a bfdd-only peer.
      bfddConf: ['bfd', ' profile fast', '  transmit-interval 100', '  receive-interval 100', '  detect-multiplier 3',
        ` peer ${N6} interface ${aIf}`, '  profile fast'].join('\n'),
      bgpdConf: ['router bgp 65000', ` bgp router-id ${R4}`, ' no bgp ebgp-requires-policy',
        ` neighbor ${N4} remote-as 64512`, ` neighbor ${N4} timers 10 30`, ` neighbor ${N4} timers connect 1`,
        ` neighbor ${N4} bfd profile fast`].join('\n'),
    });
    await router.start();
    await ensureGtsm({ netns: nodeNs });
    gobgpd = new GobgpdProcess({ netns: nodeNs });
    await gobgpd.start();
    bgp = new GobgpClient({ target: gobgpd.target, callTimeoutMs: 5000 });
    await bgp.startBgp({ asn: 64512, routerId: N4, listenPort: -1 });
    await bgp.addPeer({ address: R4, asn: 65000, holdTimeSeconds: 30, keepaliveSeconds: 10, connectRetrySeconds: 1 });
    await bgp.addPath({ prefix: `${VIP}/32`, family: 4, communities: [], largeCommunities: [] });
    agent = await BfdChild.start(nodeNs);
    await agent.setSessions(sessions);
  }, 60000);

  afterAll(async () => {
    await agent?.kill();
    bgp?.close();
    await gobgpd?.destroy();
    await router?.stop();
    await ns.destroy();
  });

  it('comes Up with FRR on IPv4 (session created by bgpd) and IPv6 (bfdd peer), discriminators exchanged', async () => {
    await agent!.waitForState(R6, 'Up', 15000);
    // bgpd registers its BFD session once the BGP session has a local address.
    await agent!.waitForState(R4, 'Up', 30000);
    const ours = await agent!.status();
    for (const [peer, local] of [[R4, N4], [R6, N6]] as const) {
      const frr = await frrPeer(local);
      const mine = ours.find((s) => s.peer === peer)!;
      expect(frr?.status).toBe('up');
      expect(frr?.['remote-id']).toBe(mine.localDiscriminator);
      expect(mine.remoteDiscriminator).toBe(frr?.id);
    }
    const v4 = ours.find((s) => s.peer === R4)!;
    expect(v4).toMatchObject({ state: 'Up', txIntervalMs: 100, rxIntervalMs: 100, detectionTimeMs: 300 });
  }, 60000);

  it('differing intervals negotiate to the slower side, in what both report and in the packet rates', async () => {
    await agent!.waitForState(R6, 'Up', 15000);
    // Let the Poll Sequence that followed coming Up finish.
    await new Promise((r) => setTimeout(r, 500));
    const frr = (await frrPeer(N6))!;
    expect(frr).toMatchObject({ 'remote-transmit-interval': 300, 'remote-receive-interval': 200, 'transmit-interval': 100, 'receive-interval': 100 });
    const mine = (await agent!.status()).find((s) => s.peer === R6)!;
    // Ours: max(300, FRR's 100) = 300; FRR's: max(100, our 200) = 200; detection 3 x max(200, 100).
    expect(mine).toMatchObject({ txIntervalMs: 300, rxIntervalMs: 200, detectionTimeMs: 600 });
    const t0 = Date.now();
    const frrBefore = (await frrCounters(N6))['control-packet-output'];
    const mineBefore = (await agent!.status()).find((s) => s.peer === R6)!.counters.txPackets;
    await new Promise((r) => setTimeout(r, 3000));
    const frrAfter = (await frrCounters(N6))['control-packet-output'];
    const mineAfter = (await agent!.status()).find((s) => s.peer === R6)!.counters.txPackets;
    const elapsed = Date.now() - t0;
    // Mean spacing of each side's packets: FRR's 200 ms and our 300 ms, each less 0-25 % jitter
    // (mean ~87 %); at FRR's own 100 ms it would be ~90 ms. Loose bounds: vtysh reads take time.
    const frrSpacing = elapsed / (frrAfter - frrBefore);
    const ourSpacing = elapsed / (mineAfter - mineBefore);
    expect(frrSpacing).toBeGreaterThan(140);
    expect(frrSpacing).toBeLessThan(260);
    expect(ourSpacing).toBeGreaterThan(210);
    expect(ourSpacing).toBeLessThan(380);
  }, 30000);

  it('agent AdminDown is seen by FRR as the neighbour going administratively down', async () => {
    await agent!.waitForState(R6, 'Up', 15000);
    await agent!.adminDown(R6);
    await waitFor(async () => (await frrPeer(N6))?.status === 'down', 3000, 50);
    expect(await frrPeer(N6)).toMatchObject({ status: 'down', 'remote-diagnostic': 'administratively down', diagnostic: 'neighbor signaled session down' });
    await agent!.adminUp(R6);
    await agent!.waitForState(R6, 'Up', 10000);
    await waitFor(async () => (await frrPeer(N6))?.status === 'up', 5000, 50);
  }, 30000);

  it('shutting the session on the FRR side makes the agent go Down (neighbour signalled), and Up again after', async () => {
    await agent!.waitForState(R6, 'Up', 15000);
    const before = agent!.states.length;
    await router.vtysh('configure terminal', 'bfd', `peer ${N6} interface ${(await ifOf(router, N6))}`, 'shutdown');
    await agent!.waitForState(R6, 'Down', 5000);
    const ev = agent!.states.slice(before).find((e) => e.peer === R6 && e.to === 'Down');
    // FRR 8.4 sends State AdminDown with diag 0 on shutdown.
    expect(ev).toMatchObject({ from: 'Up', diag: 'neighbor-signaled-session-down' });
    expect((await agent!.status()).find((s) => s.peer === R6)?.remoteState).toBe('AdminDown');
    await router.vtysh('configure terminal', 'bfd', `peer ${N6} interface ${(await ifOf(router, N6))}`, 'no shutdown');
    await agent!.waitForState(R6, 'Up', 10000);
  }, 30000);

  it('killing the agent BFD: FRR declares Down within its detection time and withdraws the node\'s route from its FIB', async () => {
    await agent!.waitForState(R4, 'Up', 30000);
    await waitFor(vipInFib, 20000, 100);
    const t0 = Date.now();
    await agent!.kill();
    await waitFor(async () => (await frrPeer(N4))?.status === 'down', 5000, 20);
    const downMs = Date.now() - t0;
    await waitFor(async () => !(await vipInFib()), 5000, 20);
    const withdrawnMs = Date.now() - t0;
    const frr = (await frrPeer(N4))!;
    expect(frr.diagnostic).toBe('control detection time expired');
    // Detection time is 300 ms; the bound only says "BFD, not the 30 s BGP hold time" (vtysh polls are slow).
    expect(downMs).toBeLessThan(1500);
    expect(withdrawnMs).toBeLessThan(3000);
    // gobgpd is still running: the withdrawal came from BFD, not from the BGP session dying.
    expect(gobgpd!.pid).toBeDefined();
    process.stdout.write(`FRR declared BFD down ${downMs} ms and withdrew ${VIP} ${withdrawnMs} ms after the agent was killed\n`);
  }, 60000);

  it('a restarted agent comes Up again, and killing FRR\'s bfdd makes the agent detect Down by timeout', async () => {
    agent = await BfdChild.start(nodeNs);
    await agent.setSessions(sessions);
    try {
      await agent.waitForState(R6, 'Up', 15000);
    } catch (e) {
      process.stdout.write(`${JSON.stringify(await agent.status(), null, 1)}\n${await router.vtysh('show bfd peers')}\n${router.logs()}\n`);
      throw e;
    }
    const bfdd = router.pid('bfdd')!;
    const t0 = Date.now();
    process.kill(bfdd, 'SIGKILL');
    await agent.waitForState(R6, 'Down', 5000);
    const ms = Date.now() - t0;
    expect(agent.states.find((e) => e.peer === R6 && e.from === 'Up' && e.to === 'Down')).toMatchObject({ diag: 'control-detection-time-expired' });
    // Detection time towards FRR's IPv6 session is 600 ms.
    expect(ms).toBeLessThan(3000);
  }, 60000);
});

/** FRR's interface towards `peer` (the router end of the veth). */
async function ifOf(router: FrrRouter, peer: string): Promise<string> {
  const out = JSON.parse(await router.vtysh('show bfd peers json')) as Array<{ peer: string; interface?: string }>;
  return out.find((p) => p.peer === peer)?.interface ?? '';
}
