// `npm run bench -- bgp`: announcements through gobgpd to a real FRR router, in network
// namespaces made and removed here (root). One tunnel node (gobgpd + BgpSpeaker) peers
// with the router (FRR zebra + bgpd) over IPv4; every time is measured until the route
// is in (or gone from) the ROUTER's kernel FIB, watched with `ip monitor route`.
//  (a) one change: setAnnouncements() -> route in the FIB, median over 20 changes
//      (each change adds one VIP and withdraws the previous one); floor: the same change
//      made with one raw GobgpClient.addPath() (no speaker), same run;
//  (b) the same with 10,000 VIPs already announced (the speaker re-reads ListPath);
//  (c) cold start with 10,000 VIPs: from spawning a fresh gobgpd (no state) and a fresh
//      speaker (start, setPeers, setRoutes(10,000)) until all 10,000 are in the router's
//      FIB; split into "session established" and "rest"; floor: `ip -batch` of the same
//      10,000 routes into a scratch namespace (the kernel's own cost).
// Prints a table, then one JSON line with the figures.
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from '../src/lab/index.js';
import { runCommand } from '../src/system/index.js';
import { NetnsSet } from '../src/lab/index.js';
import type { HostRoute } from '../src/bgp/index.js';
import { createBgpLab, waitEstablished, type BgpLab } from '../test/bgp/bgp-lab.js';

const CHANGES = 20;
const MANY = 10_000;

const vip = (i: number): string => `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const route = (i: number): HostRoute => ({ prefix: `${vip(i)}/32`, family: 4, communities: [], largeCommunities: [] });
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const max = (xs: number[]): number => Math.max(...xs);
const round = (x: number): number => Math.round(x * 10) / 10;

/** Watches the router's FIB through `ip monitor route` and resolves waits on add/delete of a prefix. */
class FibMonitor {
  private readonly child: ChildProcess;
  private buf = '';
  private waiters: Array<{ dst: string; deleted: boolean; resolve: (t: number) => void }> = [];

  constructor(netns: string) {
    this.child = spawn('ip', ['-n', netns, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const now = performance.now();
      this.buf += d;
      const lines = this.buf.split('\n');
      this.buf = lines.pop() ?? '';
      for (const line of lines) {
        const deleted = line.startsWith('Deleted ');
        const dst = (deleted ? line.slice(8) : line).split(' ')[0];
        this.waiters = this.waiters.filter((w) => {
          if (w.dst !== dst || w.deleted !== deleted) return true;
          w.resolve(now);
          return false;
        });
      }
    });
  }

  /** Resolves with the performance.now() at which `dst` was added (or deleted). Register BEFORE the change. */
  wait(dst: string, deleted: boolean, timeoutMs = 30000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`FIB: ${dst} not ${deleted ? 'deleted' : 'added'} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ dst, deleted, resolve: (t) => { clearTimeout(timer); resolve(t); } });
    });
  }

  /** Lets `ip monitor` subscribe before the first change. */
  async ready(): Promise<void> {
    await new Promise((r) => setTimeout(r, 200));
  }

  stop(): void {
    this.child.kill('SIGTERM');
  }
}

async function fibCount(netns: string): Promise<number> {
  const r = await runCommand('ip', ['-4', 'route', 'show', 'proto', 'bgp'], { netns });
  let n = 0;
  for (const line of r.stdout.split('\n')) if (line && !line.startsWith('\t') && !line.startsWith(' ')) n += 1;
  return n;
}

async function changes(lab: BgpLab, mon: FibMonitor, base: HostRoute[], offset: number): Promise<{ add: number[]; withdraw: number[]; floor: number[] }> {
  const node = lab.nodes[0]!;
  const add: number[] = [];
  const withdraw: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const cur = offset + i;
    const added = mon.wait(vip(cur), false);
    const gone = i > 0 ? mon.wait(vip(cur - 1), true) : undefined;
    const t0 = performance.now();
    node.speaker.setRoutes([...base, route(cur)]);
    add.push((await added) - t0);
    if (gone) withdraw.push((await gone) - t0);
    await node.speaker.sync();
  }
  // Floor: the same kind of change straight through the client.
  node.speaker.setRoutes(base);
  await node.speaker.sync();
  node.speaker.stop();
  const floor: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const r = route(offset + 100 + i);
    const added = mon.wait(vip(offset + 100 + i), false);
    const t0 = performance.now();
    await node.client.addPath(r);
    floor.push((await added) - t0);
    const gone = mon.wait(vip(offset + 100 + i), true);
    await node.client.deletePath(r);
    await gone;
  }
  return { add, withdraw, floor };
}

async function kernelFloor(): Promise<number> {
  const sets = new NetnsSet();
  try {
    const ns = await sets.create('kstbf');
    const peer = await sets.create('kstbf');
    await sets.link(ns, peer, { aAddrs: ['192.0.2.1/30'], bAddrs: ['192.0.2.2/30'] });
    const input = Array.from({ length: MANY }, (_, i) => `route add ${vip(i)}/32 via 192.0.2.2 proto bgp metric 20`).join('\n') + '\n';
    const t0 = performance.now();
    await runCommand('ip', ['-n', ns, '-batch', '-'], { input, timeoutMs: 120000 });
    return performance.now() - t0;
  } finally {
    await sets.destroy();
  }
}

async function main(): Promise<void> {
  const lab = await createBgpLab(1, { resyncMs: 30000 });
  const mon = new FibMonitor(lab.routerNs);
  try {
    const node = lab.nodes[0]!;
    node.speaker.setPeers(node.peers.filter((p) => !p.address.includes(':')));
    node.speaker.start();
    await waitEstablished(lab, 30000);
    await mon.ready();

    // (a) small set
    const small = await changes(lab, mon, [], 0);

    // (c) cold start with 10,000 VIPs
    await node.gobgpd.stop('SIGTERM');
    await waitFor(async () => (await fibCount(lab.routerNs)) === 0, 15000, 100);
    const many = Array.from({ length: MANY }, (_, i) => route(1000 + i));
    const t0 = performance.now();
    await node.gobgpd.start();
    const speaker = lab.restartAgent(node);
    speaker.setPeers(node.peers.filter((p) => !p.address.includes(':')));
    speaker.setRoutes(many);
    speaker.start();
    let tSynced = 0;
    void speaker.sync().then(() => (tSynced = performance.now() - t0));
    await waitEstablished(lab, 60000);
    const tEstablished = performance.now() - t0;
    await waitFor(async () => (await fibCount(lab.routerNs)) >= MANY, 120000, 50);
    const tAll = performance.now() - t0;
    const floor10k = await kernelFloor();

    // (b) one change with 10,000 announced
    const big = await changes(lab, mon, many, 100);

    const rows: Array<[string, string]> = [
      ['(a) change -> router FIB, median of 20 (ms)', `${round(median(small.add))} (max ${round(max(small.add))})`],
      ['(a) withdrawal -> gone from FIB, median (ms)', `${round(median(small.withdraw))}`],
      ['(a) floor: raw AddPath -> FIB, median (ms)', `${round(median(small.floor))}`],
      ['(a) ratio speaker / floor', `${round(median(small.add) / median(small.floor))}`],
      ['(b) change with 10,000 announced, median (ms)', `${round(median(big.add))} (max ${round(max(big.add))})`],
      ['(b) ratio speaker / floor', `${round(median(big.add) / median(big.floor))}`],
      ['(c) cold start: session established (ms)', `${round(tEstablished)}`],
      ['(c) cold start: speaker synced 10,000 (ms)', `${round(tSynced)}`],
      ['(c) cold start: all 10,000 in router FIB (ms)', `${round(tAll)}`],
      ['(c) after established -> all in FIB (ms)', `${round(tAll - tEstablished)}`],
      ['(c) floor: ip -batch of 10,000 routes (ms)', `${round(floor10k)}`],
      ['(c) ratio (after established) / floor', `${round((tAll - tEstablished) / floor10k)}`],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log('BGP announcements: gobgpd -> FRR router kernel FIB');
    for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
    console.log(JSON.stringify({
      changeToFibMedianMs: round(median(small.add)),
      changeToFibMaxMs: round(max(small.add)),
      withdrawToFibMedianMs: round(median(small.withdraw)),
      floorAddPathToFibMedianMs: round(median(small.floor)),
      changeRatio: round(median(small.add) / median(small.floor)),
      changeWith10kMedianMs: round(median(big.add)),
      changeWith10kRatio: round(median(big.add) / median(big.floor)),
      coldStart10kEstablishedMs: round(tEstablished),
      coldStart10kSpeakerSyncedMs: round(tSynced),
      coldStart10kAllInFibMs: round(tAll),
      coldStart10kAfterEstablishedMs: round(tAll - tEstablished),
      kernelFloor10kMs: round(floor10k),
      coldStartRatio: round((tAll - tEstablished) / floor10k),
      changes: CHANGES,
      vips: MANY,
    }));
  } finally {
    mon.stop();
    await lab.destroy();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
