// The agent's threaded BFD (ThreadedBfdManager: sessions on a worker thread) against the
// real FRR bfdd at 100 ms x 3: Up, AdminDown, and the point of the thread: a main thread
// busy for 1.5 s (a long resync, a big relist) does not make FRR declare the session down,
// while the same block with BfdManager on the main thread does. The BFD runs in a child
// process inside the node namespace (standalone.ts, `--threaded` or not).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { BfdChild } from '../../src/bfd/child.js';
import { ensureGtsm } from '../../src/bfd/index.js';
import { FrrRouter, NetnsSet, waitFor } from '../../src/lab/index.js';
import { frrCounters, frrPeer } from './frr-peers.js';

const R4 = '198.51.100.81';
const N4 = '198.51.100.82';
const fast = { minTxMs: 100, minRxMs: 100, multiplier: 3 };
const BLOCK_MS = 1500;

describe('threaded BFD against FRR bfdd', () => {
  const ns = new NetnsSet();
  let router: FrrRouter;
  let nodeNs: string;
  let agent: BfdChild | undefined;

  beforeAll(async () => {
    const routerNs = await ns.create('kbtr');
    nodeNs = await ns.create('kbtn');
    const { aIf } = await ns.link(routerNs, nodeNs, { aAddrs: [`${R4}/29`], bAddrs: [`${N4}/29`] });
    router = new FrrRouter({
      netns: routerNs,
      bgpdConf: '',
      bfddConf: ['bfd', ' profile fast', '  transmit-interval 100', '  receive-interval 100', '  detect-multiplier 3',
        ` peer ${N4} interface ${aIf}`, '  profile fast'].join('\n'),
    });
    await router.start();
    await ensureGtsm({ netns: nodeNs });
  }, 60000);

  afterEach(async () => {
    await agent?.kill();
    agent = undefined;
  });

  afterAll(async () => {
    await router?.stop();
    await ns.destroy();
  });

  /** A BFD child in the node namespace, Up with FRR at 100 ms x 3 on both sides. */
  async function upAgent(threaded: boolean): Promise<BfdChild> {
    agent = await BfdChild.start(nodeNs, { threaded });
    await agent.setSessions([{ peer: R4, local: N4, profile: fast }]);
    await agent.waitForState(R4, 'Up', 15000);
    await waitFor(async () => (await frrPeer(router, N4))?.status === 'up', 5000, 50);
    // Let the Poll Sequence after coming Up settle the 100 ms timers.
    await waitFor(async () => (await agent!.status())[0]?.detectionTimeMs === 300, 5000, 50);
    return agent;
  }

  /** Blocks the child's main thread; returns FRR's session-down count during it and when FRR first saw it not Up. */
  async function blockAndWatch(child: BfdChild): Promise<{ downs: number; firstNotUpMs?: number; polls: number }> {
    const before = (await frrCounters(router, N4))['session-down'];
    const t0 = Date.now();
    let firstNotUpMs: number | undefined;
    let polls = 0;
    let blocking = true;
    const watching = (async () => {
      // Until a while after the block, since a late side would only be declared down then.
      while (blocking || Date.now() - t0 < BLOCK_MS + 500) {
        const status = (await frrPeer(router, N4))?.status;
        polls += 1;
        if (status !== 'up' && firstNotUpMs === undefined) firstNotUpMs = Date.now() - t0;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await child.block(BLOCK_MS);
    blocking = false;
    await watching;
    const downs = (await frrCounters(router, N4))['session-down'] - before;
    return { downs, polls, ...(firstNotUpMs !== undefined ? { firstNotUpMs } : {}) };
  }

  it('comes Up with FRR, and its AdminDown is seen by FRR as administratively down', async () => {
    const child = await upAgent(true);
    const mine = (await child.status())[0]!;
    const frr = (await frrPeer(router, N4))!;
    expect(frr['remote-id']).toBe(mine.localDiscriminator);
    expect(mine.remoteDiscriminator).toBe(frr.id);
    await child.adminDown();
    await waitFor(async () => (await frrPeer(router, N4))?.status === 'down', 3000, 50);
    expect(await frrPeer(router, N4)).toMatchObject({ status: 'down', 'remote-diagnostic': 'administratively down' });
    await child.adminUp();
    await child.waitForState(R4, 'Up', 10000);
  }, 60000);

  it(`a main thread busy for ${BLOCK_MS} ms: FRR keeps the session Up with the worker thread, declares it Down without`, async () => {
    const threaded = await blockAndWatch(await upAgent(true));
    await agent!.kill();
    const inThread = await blockAndWatch(await upAgent(false));
    process.stdout.write(`busy main thread ${BLOCK_MS} ms: worker thread: FRR session-down +${threaded.downs}, ` +
      `${threaded.polls} polls, first not Up ${threaded.firstNotUpMs ?? 'never'}; ` +
      `main thread: session-down +${inThread.downs}, first not Up at ${inThread.firstNotUpMs ?? 'never'} ms\n`);
    expect(threaded.downs).toBe(0);
    expect(threaded.firstNotUpMs).toBeUndefined();
    // The contrast: the same block on the main thread's timers costs the session.
    expect(inThread.downs).toBeGreaterThanOrEqual(1);
    expect(inThread.firstNotUpMs).toBeDefined();
  }, 90000);

  it('a crashed worker is reported and restarted with the last sessions, which come Up again', async () => {
    const child = await upAgent(true);
    const before = child.states.length;
    const frrDownsBefore = (await frrCounters(router, N4))['session-down'];
    const t0 = Date.now();
    await child.crashWorker();
    await waitFor(() => child.workerErrors.length > 0, 5000, 20);
    expect(child.workerErrors[0]).toMatch(/simulated crash/);
    await waitFor(() => child.states.slice(before).some((e) => e.to === 'Up'), 10000, 20);
    const upMs = Date.now() - t0;
    const events = child.states.slice(before).map((e) => `${e.from}->${e.to}`);
    expect(events[0]).toBe('Up->Down');
    expect(child.states[before]!.diag).toBe('bfd-worker-crashed');
    await waitFor(async () => (await frrPeer(router, N4))?.status === 'up', 10000, 50);
    process.stdout.write(`worker crash: Up again on our side ${upMs} ms later (${events.join(', ')}); FRR session-down +${(await frrCounters(router, N4))['session-down'] - frrDownsBefore}\n`);
  }, 60000);
});
