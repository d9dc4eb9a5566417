// `npm run bench -- failover`: how long traffic to a VIP stops when one of two tunnel
// nodes dies, with BFD (100 ms x 3) and without (BGP hold time 3 s, keepalive 1 s).
//
//   client ── router (FRR zebra+bgpd+bfdd, maximum-paths 2, L4 ECMP hash) ── switch (bridge) ─┬─ tunnel node 1
//                                                                                            └─ tunnel node 2
// Each tunnel node runs gobgpd (announcing VIP/32 through src/bgp's GobgpClient) and the
// project's BFD (a child process), and answers UDP on the VIP, which sits on its `lo`
// (the encapsulation path to pods belongs to other areas; here the tunnel node itself is
// the endpoint). The client sends on 16 flows (source ports), one packet per flow every
// 5 ms, and the echo tells which node answered.
//
// Failure: the node's own link is cut INSIDE the node's namespace (`ip link set DEV down`).
// The router's link to the switch stays up, so the router gets no carrier signal and must
// detect the failure by BFD or by the BGP hold timer, as with a crashed or hung server
// behind a top-of-rack switch. The gap of a trial is the longest time any flow that was on
// the dead node went without a reply. Floor (same run, before each BFD-mode trial): the
// longest reply spacing of all flows over 500 ms with no failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { BfdChild } from '../src/bfd/child.js';
import { ensureGtsm } from '../src/bfd/index.js';
import { GobgpClient, GobgpdProcess } from '../src/bgp/index.js';
import { FrrRouter, NetnsSet, waitFor } from '../src/lab/index.js';
import { runCommand } from '../src/system/index.js';

const TRIALS = Number(process.env.FAILOVER_TRIALS ?? 10);
const VIP = '203.0.113.100';
const PORT = 5000;
const FLOWS = 16;
const SEND_EVERY_MS = 5;
const ROUTER = '192.0.2.1';
const NODES = ['192.0.2.11', '192.0.2.12'];
const CLIENT = '198.51.100.2';
const ROUTER_CLIENT_SIDE = '198.51.100.1';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number): number => Math.round(x);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let stopRequested = false;
function checkStop(): void {
  if (stopRequested) throw new Error('failover bench: interrupted, cleaning up');
}

// Inline programs for the namespaces (Node cannot enter a namespace; each runs under `ip netns exec`).
const echoScript = (id: number): string => `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => { m[0] = ${id}; s.send(m, r.port, r.address); });
s.bind(${PORT}, '${VIP}', () => process.stdout.write(JSON.stringify({ pid: process.pid }) + '\\n'));
process.stdin.on('data', () => undefined).on('end', () => process.exit(0));`;

const clientScript = `
const dgram = require('node:dgram');
const flows = [];
const now = () => Number(process.hrtime.bigint()) / 1e6;
for (let f = 0; f < ${FLOWS}; f++) {
  const s = dgram.createSocket('udp4');
  const flow = { s, seq: 0, lastAt: 0, lastNode: 0, maxGap: 0 };
  s.on('message', (m) => {
    const t = now();
    if (flow.lastAt) flow.maxGap = Math.max(flow.maxGap, t - flow.lastAt);
    flow.lastAt = t; flow.lastNode = m[0];
  });
  s.bind(41000 + f, '${CLIENT}');
  flows.push(flow);
}
setInterval(() => {
  for (const f of flows) { const b = Buffer.alloc(8); b.writeUInt32BE(++f.seq, 4); f.s.send(b, ${PORT}, '${VIP}'); }
}, ${SEND_EVERY_MS});
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const t = now();
  if (line === 'mark') for (const f of flows) f.maxGap = 0;
  process.stdout.write(JSON.stringify({ flows: flows.map((f) => ({ node: f.lastNode, sinceMs: f.lastAt ? t - f.lastAt : 1e9, maxGapMs: f.maxGap })) }) + '\\n');
}).on('close', () => process.exit(0));
process.stdout.write(JSON.stringify({ pid: process.pid }) + '\\n');`;

interface FlowView { node: number; sinceMs: number; maxGapMs: number }

/** A long-running inline Node program in a namespace, spoken to by lines. */
class NsProgram {
  private readonly lines: string[] = [];
  private waiting?: (l: string) => void;
  pid = 0;
  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(l);
      } else this.lines.push(l);
    });
  }
  static async start(netns: string, script: string): Promise<NsProgram> {
    const p = new NsProgram(spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] }));
    p.pid = (JSON.parse(await p.read()) as { pid: number }).pid;
    return p;
  }
  read(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve) => (this.waiting = resolve));
  }
  async ask(cmd: string): Promise<FlowView[]> {
    this.child.stdin!.write(`${cmd}\n`);
    return (JSON.parse(await this.read()) as { flows: FlowView[] }).flows;
  }
  stop(): void {
    this.child.stdin!.end();
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      /* exited on stdin end */
    }
  }
}

/**
 * Time stamps of the router's FIB changes (`ip monitor route nexthop`), to time withdrawals
 * precisely. Nexthop objects too: zebra may shrink the VIP's nexthop group in place, which
 * changes no route line. Nothing else changes routes in the router's namespace meanwhile.
 */
class FibWatch {
  readonly changes: number[] = [];
  private readonly child: ChildProcess;
  constructor(netns: string) {
    this.child = spawn('ip', ['-n', netns, 'monitor', 'route', 'nexthop'], { stdio: ['ignore', 'pipe', 'ignore'] });
    createInterface({ input: this.child.stdout! }).on('line', () => this.changes.push(performance.now()));
  }
  firstAfter(t: number): number | undefined {
    return this.changes.find((c) => c > t);
  }
  stop(): void {
    this.child.kill('SIGKILL');
  }
}

interface TunnelNode { ns: string; addr: string; dev: string; gobgpd: GobgpdProcess; bgp: GobgpClient; bfd: BfdChild; echo: NsProgram }

async function fibNextHops(routerNs: string): Promise<number> {
  const r = await runCommand('ip', ['-4', '-j', 'route', 'show', `${VIP}/32`], { netns: routerNs });
  const routes = JSON.parse(r.stdout || '[]') as Array<{ gateway?: string; nexthops?: unknown[] }>;
  const route = routes[0];
  return route ? (route.nexthops?.length ?? (route.gateway ? 1 : 0)) : 0;
}

async function main(): Promise<void> {
  const netns = new NetnsSet();
  const nodes: TunnelNode[] = [];
  let router: FrrRouter | undefined;
  let client: NsProgram | undefined;
  let fib: FibWatch | undefined;
  try {
    // ---- lab ----
    const routerNs = await netns.create('kfor');
    const switchNs = await netns.create('kfos');
    const clientNs = await netns.create('kfoc');
    await runCommand('ip', ['-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await runCommand('ip', ['-n', switchNs, 'link', 'set', 'br0', 'up']);
    const { aIf: rPort } = await netns.link(switchNs, routerNs, { bAddrs: [`${ROUTER}/24`] });
    await runCommand('ip', ['-n', switchNs, 'link', 'set', rPort, 'master', 'br0']);
    await netns.link(clientNs, routerNs, { aAddrs: [`${CLIENT}/30`], bAddrs: [`${ROUTER_CLIENT_SIDE}/30`] });
    await runCommand('ip', ['-n', clientNs, 'route', 'add', 'default', 'via', ROUTER_CLIENT_SIDE]);
    // Hash on ports too, so the client's flows spread over both tunnel nodes.
    await netns.sysctl(routerNs, 'net.ipv4.fib_multipath_hash_policy', '1');
    const nodeNames: string[] = [];
    const nodeDevs: string[] = [];
    for (const addr of NODES) {
      const ns = await netns.create('kfot');
      const { aIf, bIf } = await netns.link(switchNs, ns, { bAddrs: [`${addr}/24`] });
      await runCommand('ip', ['-n', switchNs, 'link', 'set', aIf, 'master', 'br0']);
      await runCommand('ip', ['-n', ns, 'addr', 'add', `${VIP}/32`, 'dev', 'lo']);
      await runCommand('ip', ['-n', ns, 'route', 'add', 'default', 'via', ROUTER]);
      nodeNames.push(ns);
      nodeDevs.push(bIf);
    }
    const neighbors = NODES.flatMap((n) => [` neighbor ${n} remote-as 64512`, ` neighbor ${n} timers 1 3`, ` neighbor ${n} timers connect 1`]);
    router = new FrrRouter({
      netns: routerNs,
      bfddConf: ['bfd', ' profile fast', '  transmit-interval 100', '  receive-interval 100', '  detect-multiplier 3'].join('\n'),
      bgpdConf: ['router bgp 65000', ` bgp router-id ${ROUTER}`, ' no bgp ebgp-requires-policy', ...neighbors,
        ' address-family ipv4 unicast', '  maximum-paths 2', ' exit-address-family'].join('\n'),
    });
    await router.start();
    for (let i = 0; i < NODES.length; i++) {
      const ns = nodeNames[i]!;
      const addr = NODES[i]!;
      await ensureGtsm({ netns: ns });
      const gobgpd = new GobgpdProcess({ netns: ns });
      await gobgpd.start();
      const bgp = new GobgpClient({ target: gobgpd.target, callTimeoutMs: 5000 });
      // Listening as well as connecting: the router reconnects as soon as it leaves Idle.
      await bgp.startBgp({ asn: 64512, routerId: addr, listenPort: 179, listenAddresses: [addr] });
      await bgp.addPeer({ address: ROUTER, asn: 65000, holdTimeSeconds: 3, keepaliveSeconds: 1, connectRetrySeconds: 1 });
      await bgp.addPath({ prefix: `${VIP}/32`, family: 4, communities: [], largeCommunities: [] });
      const bfd = await BfdChild.start(ns, { threaded: true });
      await bfd.setSessions([{ peer: ROUTER, local: addr, profile: { minTxMs: 100, minRxMs: 100, multiplier: 3 } }]);
      const echo = await NsProgram.start(ns, echoScript(i + 1));
      nodes.push({ ns, addr, dev: nodeDevs[i]!, gobgpd, bgp, bfd, echo });
    }
    client = await NsProgram.start(clientNs, clientScript);
    fib = new FibWatch(routerNs);

    // Ready for a BFD trial: bfdd's sessions Up at the fast rate in both directions (the Poll
    // Sequence after coming Up is done), and bgpd has been told so (it only acts on a Down
    // that follows an Up it saw).
    const frrBfdUp = async (): Promise<boolean> => {
      const peers = JSON.parse(await router!.vtysh('show bfd peers json')) as Array<{ peer: string; status: string; 'remote-transmit-interval': number; 'transmit-interval': number }>;
      const fast = NODES.every((n) => peers.some((p) => p.peer === n && p.status === 'up' && p['remote-transmit-interval'] === 100 && p['transmit-interval'] === 100));
      if (!fast) return false;
      const nbrs = JSON.parse(await router!.vtysh('show bgp neighbors json')) as Record<string, { peerBfdInfo?: { status?: string } }>;
      return NODES.every((n) => nbrs[n]?.peerBfdInfo?.status === 'Up');
    };
    let lastDebug = 0;
    const healthy = async (withBfd: boolean): Promise<boolean> => {
      if (process.env.FAILOVER_DEBUG && performance.now() - lastDebug > 1000) {
        lastDebug = performance.now();
        const peers = await Promise.all(nodes.map(async (n) => (await n.bgp.listPeers())[0]?.state));
        process.stderr.write(`    fib ${await fibNextHops(routerNs)} frrBfd ${await frrBfdUp()} gobgp ${peers.join(',')} bfd ${(await Promise.all(nodes.map(async (n) => (await n.bfd.status())[0]?.state))).join(',')}\n`);
      }
      if ((await fibNextHops(routerNs)) !== 2) return false;
      if (withBfd && !(await frrBfdUp())) return false;
      const flows = await client!.ask('status');
      return flows.every((f) => f.sinceMs < 50) && new Set(flows.map((f) => f.node)).size === 2;
    };

    const results: Record<'bfd' | 'hold', { gaps: number[]; fib: number[] }> = { bfd: { gaps: [], fib: [] }, hold: { gaps: [], fib: [] } };
    const floors: number[] = [];
    const started = Date.now();
    for (const mode of ['bfd', 'hold'] as const) {
      const withBfd = mode === 'bfd';
      // `no neighbor X bfd` (not `... bfd profile fast`, which only drops the profile).
      const cmds = NODES.map((n) => (withBfd ? `neighbor ${n} bfd profile fast` : `no neighbor ${n} bfd`));
      await router.vtysh('configure terminal', 'router bgp 65000', ...cmds);
      for (let t = 0; t < TRIALS; t++) {
        checkStop();
        const tHeal = performance.now();
        await waitFor(async () => (checkStop(), healthy(withBfd)), 60000, 100);
        if (process.env.FAILOVER_DEBUG) process.stderr.write(`  healthy after ${round(performance.now() - tHeal)} ms\n`);
        await sleep(200);
        if (withBfd) {
          // Floor: reply spacing over a quiet 500 ms window (event loops, scheduling, 5 ms sends).
          await client.ask('mark');
          await sleep(500);
          floors.push(Math.max(...(await client.ask('status')).map((f) => f.maxGapMs)));
        }

        const before = await client.ask('mark');
        let victimIdx = t % 2;
        if (!before.some((f) => f.node === victimIdx + 1)) victimIdx = 1 - victimIdx;
        const victim = nodes[victimIdx]!;
        const onVictim = before.map((f, i) => (f.node === victimIdx + 1 ? i : -1)).filter((i) => i >= 0);
        const t0 = performance.now();
        await runCommand('ip', ['-n', victim.ns, 'link', 'set', victim.dev, 'down']);
        await waitFor(async () => {
          const flows = await client!.ask('status');
          return onVictim.every((i) => flows[i]!.node !== victimIdx + 1 && flows[i]!.sinceMs < 50);
        }, 20000, 20);
        const after = await client.ask('status');
        const gap = Math.max(...onVictim.map((i) => after[i]!.maxGapMs));
        const fibAt = fib.firstAfter(t0);
        const fibMs = fibAt === undefined ? Number.NaN : fibAt - t0;
        results[mode].gaps.push(gap);
        results[mode].fib.push(fibMs);
        process.stderr.write(`  ${mode} trial ${t + 1}/${TRIALS}: node ${victimIdx + 1} cut, ${onVictim.length}/${FLOWS} flows on it, gap ${round(gap)} ms, route withdrawn from FIB after ${round(fibMs)} ms\n`);
        await runCommand('ip', ['-n', victim.ns, 'link', 'set', victim.dev, 'up']);
        // Link down removed the node's default route (the way back to the client).
        await runCommand('ip', ['-n', victim.ns, 'route', 'replace', 'default', 'via', ROUTER]);
      }
    }
    const totalS = (Date.now() - started) / 1000;

    const b = results.bfd;
    const h = results.hold;
    const rows: Array<[string, string, string, string]> = [
      ['', 'median gap ms', 'worst gap ms', 'FIB withdraw median ms'],
      ['BFD 100 ms x 3', `${round(median(b.gaps))}`, `${round(Math.max(...b.gaps))}`, `${round(median(b.fib))}`],
      ['no BFD (hold 3 s)', `${round(median(h.gaps))}`, `${round(Math.max(...h.gaps))}`, `${round(median(h.fib))}`],
      ['floor (no failure)', `${round(median(floors))}`, `${round(Math.max(...floors))}`, '-'],
    ];
    console.log(`Failover: one of two tunnel nodes cut off (its own link down inside its namespace), ${TRIALS} trials each`);
    console.log(`client: ${FLOWS} UDP flows x 1 packet / ${SEND_EVERY_MS} ms to VIP ${VIP} (on the tunnel nodes' lo: no encapsulation in this bench)`);
    for (const r of rows) console.log(`${r[0].padEnd(20)}${r[1].padStart(15)}${r[2].padStart(15)}${r[3].padStart(24)}`);
    console.log(`BFD gap / hold-time gap (median): ${(median(b.gaps) / median(h.gaps)).toFixed(3)}; target with BFD < 500 ms: ${median(b.gaps) < 500 && Math.max(...b.gaps) < 500 ? 'met' : 'NOT met'}; ${round(totalS)} s of trials`);
    console.log(JSON.stringify({
      trials: TRIALS,
      flows: FLOWS,
      sendIntervalMs: SEND_EVERY_MS,
      bfdGapMedianMs: round(median(b.gaps)),
      bfdGapWorstMs: round(Math.max(...b.gaps)),
      bfdFibWithdrawMedianMs: round(median(b.fib)),
      holdGapMedianMs: round(median(h.gaps)),
      holdGapWorstMs: round(Math.max(...h.gaps)),
      holdFibWithdrawMedianMs: round(median(h.fib)),
      floorGapMedianMs: round(median(floors)),
      bfdToHoldRatio: Number((median(b.gaps) / median(h.gaps)).toFixed(3)),
      bfdGapOverFloorRatio: Number((median(b.gaps) / median(floors)).toFixed(1)),
      bfdGaps: b.gaps.map(round),
      holdGaps: h.gaps.map(round),
      trialSeconds: round(totalS),
    }));
  } finally {
    fib?.stop();
    client?.stop();
    for (const n of nodes) {
      n.echo.stop();
      await n.bfd.kill();
      n.bgp.close();
      await n.gobgpd.destroy();
    }
    await router?.stop();
    await netns.destroy();
  }
}

// A closed pipe (`| head`) or Ctrl-C must not skip the clean-up in main()'s finally: ignore
// write errors, and turn signals into an orderly stop of the trials.
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    stopRequested = true;
  });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
