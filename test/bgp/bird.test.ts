// BIRD 2 as the router, beside FRR (issue 14): a node's gobgpd driven by a BgpSpeaker and
// the agent's BFD (a child process) against BIRD's `protocol bgp` with `bfd on` and its
// `protocol bfd`. Shows, from BIRD's own view (birdc, and the router's kernel FIB): the
// BGP session Established, the VIP learnt and installed, BFD Up, and the VIP withdrawn
// by BFD (well before the 9 s hold time) when the node goes silent with its link still up.
// Skips, saying why, only when bird is not installed (Debian `bird2`).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BirdRouter, birdAvailable, NetnsSet, waitFor } from '../../src/lab/index.js';
import { BgpNode } from '../support/bgp-node.js';
import { fibRoute } from './bgp-lab.js';

const R4 = '198.51.100.81';
const N4 = '198.51.100.82';
const VIP = '203.0.113.99/32';
const present = birdAvailable();
if (!present) console.log('bird.test: SKIPPED, bird is not installed (Debian package bird2; scripts/install-deps.sh installs it)');
const maybe = present ? describe : describe.skip;

maybe('BIRD 2 as the router: BGP with gobgpd, BFD with our BFD', () => {
  const ns = new NetnsSet();
  let routerNs: string;
  let nodeNs: string;
  let bird: BirdRouter;
  let node: BgpNode | undefined;
  let birdConf: (bfdMode: 'on' | 'graceful') => string;
  const route = { prefix: VIP, family: 4 as const, communities: ['64512:100'], largeCommunities: [] };
  const newSpeaker = (): void => {
    node!.newSpeaker([{ address: R4, asn: 65000, holdTimeSeconds: 9, keepaliveSeconds: 3, connectRetrySeconds: 1, gracefulRestart: { restartTimeSeconds: 60 } }], [route]);
  };

  beforeAll(async () => {
    routerNs = await ns.create('kbirdr');
    nodeNs = await ns.create('kbirdn');
    const { aIf } = await ns.link(routerNs, nodeNs, { aAddrs: [`${R4}/29`], bAddrs: [`${N4}/29`] });
    birdConf = (bfdMode: 'on' | 'graceful'): string => [
      `router id ${R4};`,
      'protocol device { scan time 10; }',
      'protocol kernel { ipv4 { import none; export all; }; merge paths on; }',
      `protocol bfd { interface "${aIf}" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }`,
      'protocol bgp node1 {',
      `  local ${R4} as 65000;`,
      `  neighbor ${N4} as 64512;`,
      '  hold time 9; keepalive time 3; connect retry time 1;',
      // BIRD waits 60-300 s before reconnecting after an error (a BFD-driven shutdown is one).
      '  error wait time 1, 5;',
      `  bfd ${bfdMode};`,
      '  ipv4 { import all; export none; };',
      '}',
    ].join('\n');
    bird = new BirdRouter({ netns: routerNs, conf: birdConf('on') });
    await bird.start();
    node = await BgpNode.start(nodeNs, N4, R4);
    newSpeaker();
  }, 60000);

  afterAll(async () => {
    await node?.destroy();
    await bird?.stop();
    await ns.destroy();
  });

  it('BGP Established with gobgpd (birdc) and the VIP learnt with its community and installed', async () => {
    await waitFor(async () => /Established/.test(await bird.birdc('show protocols node1')), 30000, 200)
      .catch(async () => { throw new Error(`BGP not Established in BIRD:\n${await bird.birdc('show protocols all node1')}\n${bird.logs()}`); });
    await waitFor(async () => (await fibRoute(routerNs, VIP))?.protocol === 'bird', 10000, 100);
    expect((await fibRoute(routerNs, VIP))?.gateway).toBe(N4);
    const route = await bird.birdc(`show route ${VIP} all`);
    expect(route).toContain(N4);
    expect(route).toMatch(/BGP.community:\s+\(64512,100\)/);
  }, 60000);

  it('BFD Up on both sides, as BIRD reports it (birdc show bfd sessions)', async () => {
    let sessions = '';
    await waitFor(async () => /\bUp\b/.test((sessions = await bird.birdc('show bfd sessions')).split('\n').find((l) => l.includes(N4)) ?? ''), 30000, 200)
      .catch(() => { throw new Error(`BIRD's BFD session to ${N4} is not Up:\n${sessions}\n${bird.logs()}`); });
    await node!.bfd!.waitForState(R4, 'Up', 10000);
  }, 60000);

  it('the node goes silent with its link up: BIRD\'s BFD withdraws the VIP well before the hold time', async () => {
    // Everything the node sends or receives is dropped (a hung node): only BFD (300 ms) or
    // the BGP hold timer (9 s) can tell.
    const t0 = Date.now();
    await node!.silence();
    await waitFor(async () => (await fibRoute(routerNs, VIP)) === undefined, 9000, 20)
      .catch(async () => { throw new Error(`VIP still in BIRD's FIB after 9 s:\n${await bird.birdc('show bfd sessions')}\n${await bird.birdc('show protocols all node1')}`); });
    const ms = Date.now() - t0;
    console.log(`bird.test: VIP withdrawn from BIRD's FIB ${ms} ms after the node went silent (BFD 100 ms x 3, hold time 9 s)`);
    // BFD's detection time is 300 ms; the hold timer would take 6-9 s.
    expect(ms).toBeLessThan(3000);
    expect((await bird.birdc('show bfd sessions')).split('\n').find((l) => l.includes(N4)) ?? '').toMatch(/Down|Init/);
    await node!.unsilence();
  }, 60000);

  it('graceful restart with plain `bfd on`: BIRD ends it on the BFD Down that follows the dying gobgpd\'s FIN (unlike FRR 8.4)', async () => {
    // What the lab's FRR keeps (docs/bgp.md): the FIN of the dying gobgpd starts graceful
    // restart at once, our BFD's Down comes 300 ms later, once the session is down. BIRD
    // 2.0.12 still acts on that BFD Down and drops the stale route: with our BFD in the
    // agent (C bit clear), a BIRD router must choose `bfd graceful` (next test) or this.
    await waitFor(async () => /Established/.test(await bird.birdc('show protocols node1')), 40000, 200);
    await waitFor(async () => (await fibRoute(routerNs, VIP))?.gateway === N4, 10000, 100);
    await node!.bfd!.waitForState(R4, 'Up', 30000);
    const t0 = Date.now();
    await node!.killAgentAndGobgpd();
    let goneMs: number | undefined;
    try {
      await waitFor(async () => (await fibRoute(routerNs, VIP)) === undefined, 5000, 20);
      goneMs = Date.now() - t0;
    } catch { /* kept: asserted below */ }
    console.log(`bird.test: plain \`bfd on\`, gobgpd and our BFD SIGKILLed together: the VIP ${goneMs === undefined ? 'stayed 5 s' : `left BIRD's FIB after ${goneMs} ms`}\n${bird.logs().split('\n').filter((l) => /node1|bfd|BFD/i.test(l)).slice(-8).join('\n')}`);
    expect(goneMs).toBeDefined();
    expect(goneMs!).toBeLessThan(3000);
    await node!.gobgpd.start();
    await node!.startBfd();
    newSpeaker();
    await waitFor(async () => /Established/.test(await bird.birdc('show protocols node1')), 40000, 200);
    await waitFor(async () => (await fibRoute(routerNs, VIP))?.gateway === N4, 15000, 100);
  }, 120000);

  it('graceful restart with `bfd graceful`: gobgpd and our BFD SIGKILLed, BIRD keeps the route until they return', async () => {
    // BIRD's counterpart of FRR's check-control-plane-failure (opt-in): a BFD Down starts
    // graceful restart instead of a hard shutdown (it does not look at the C bit).
    expect(await bird.reconfigure(birdConf('graceful'))).toMatch(/[Rr]econfigur/);
    await waitFor(async () => /Established/.test(await bird.birdc('show protocols node1')), 40000, 200);
    await waitFor(async () => (await fibRoute(routerNs, VIP))?.gateway === N4, 10000, 100);
    await node!.bfd!.waitForState(R4, 'Up', 30000);
    await node!.killAgentAndGobgpd();
    const end = Date.now() + 4000;
    let missing = 0;
    while (Date.now() < end) {
      if ((await fibRoute(routerNs, VIP))?.gateway !== N4) missing += 1;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(missing).toBe(0);
    expect(await bird.birdc('show protocols all node1')).not.toMatch(/Established/);
    // Back: gobgpd bare, the speaker sets it up with the Restart State bit; BIRD refreshes.
    await node!.gobgpd.start();
    await node!.startBfd();
    newSpeaker();
    await waitFor(async () => /Established/.test(await bird.birdc('show protocols node1')), 40000, 200);
    expect((await fibRoute(routerNs, VIP))?.gateway).toBe(N4);
    await waitFor(async () => !/stale/i.test(await bird.birdc(`show route ${VIP} all`)), 15000, 200);
  }, 120000);
});
