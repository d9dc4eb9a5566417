// The tunnel node's cost per packet (issue 16), part (c) of `npm run bench -- dataplane`:
// one fabric (client, tunnel nodes, one pod, namespaces made and removed here) and four
// paths from the client to the same pod, measured in alternation within one run:
//   plain   - routed by the tunnel node, no encapsulation;
//   encap   - routed by the tunnel node through the VXLAN nexthop object of the tunnel's
//             bucket routes, from the main table: no flow hash, marks, rules or map;
//   tunnel  - a VIP programmed by TunnelDataplane (256 buckets, pinning on), one VIP;
//   scaled  - a VIP on a second tunnel node that carries 1,000 VIPs x 256 buckets.
// Figures: one TCP stream (iperf3; for every path the sender on CPU 0 and the receiver on
// CPU 1: STREAM_PLACEMENT), small UDP packets per second (iperf3, 64-byte payload, 256
// source ports from two sender processes, counted by an nft counter in the pod after
// decapsulation) and new TCP connections per second (connect, one request, close; two
// Node client processes against a Node server in the pod).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { MARK_BASE, TunnelDataplane } from '../../src/dataplane/index.js';
import { MARK_MASK, hex } from '../../src/dataplane/layout.js';
import { runCommand } from '../../src/system/index.js';
import { desiredState, testConfig, type VipFixture } from '../../test/dataplane/fixtures.js';
import { TUNNEL4, buildFabric, pod4, setupVxlanPod, type Fabric } from '../../test/dataplane/topology.js';

export type PathName = 'plain' | 'encap' | 'tunnel' | 'scaled';

const VIP = '203.0.113.10';
const SCALED_VIP = '203.0.113.20';
const PLAIN = '198.51.100.50';
const ENCAP = '198.51.100.51';
/** The second tunnel node, carrying 1,000 VIPs. */
const TUNNEL4_SCALED = '192.0.2.3';
const B = 256;
const SCALE_VIPS = 1000;

const target: Record<PathName, string> = { plain: PLAIN, encap: ENCAP, tunnel: VIP, scaled: SCALED_VIP };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * The 999 VIPs beside SCALED_VIP: only installed, never sent to (as in parts (a) and (b)).
 * The first 233 share SCALED_VIP's /24 (203.0.113.21-253), so the measured VIP sits among
 * its neighbours in every bucket table's trie, as a VIP of a pool does, and not alone on a
 * branch of its own (the cheapest lookup a table can have).
 */
const NEIGHBOURS = 233;
const otherVip = (i: number): string => (i <= NEIGHBOURS ? `203.0.113.${20 + i}` : `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);

/**
 * Where one TCP stream's two processes run: iperf3's own `-A` (sched_setaffinity), CPU
 * numbers; `null` leaves it to the scheduler. On veth the forward path (client, tunnel
 * node, decapsulation and TCP receive in the pod) runs as softirq on the CPU of the
 * sending process, so pinning the client pins that path too; the receiver's copy and its
 * ACKs run on the receiver's CPU. Left to the scheduler, the sender, the receiver and the
 * softirq met on one core in some runs and were spread over two in others, and the rate of
 * one stream changed by up to 1.7x between two runs of the same path.
 */
export interface StreamPlacement {
  readonly client: number | null;
  readonly server: number | null;
}

/** The CPUs this process may run on (`Cpus_allowed_list`, e.g. "0-1" or "2,5-7"), in order. */
function allowedCpus(): number[] {
  const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return (m?.[1] ?? '0').split(',').flatMap((r) => {
    const [a, b] = r.split('-').map(Number);
    return Array.from({ length: (b ?? a!) - a! + 1 }, (_, k) => a! + k);
  });
}

/**
 * Every one-stream figure of the bench: the sender (and the forward path's softirq) on the
 * first CPU this process may use, the receiver on the second (CPU 0 and 1 on the project's
 * 2-core machines); both on the one CPU where there is only one.
 */
export const STREAM_PLACEMENT: StreamPlacement = (() => {
  const cpus = allowedCpus();
  return { client: cpus[0]!, server: cpus[1] ?? cpus[0]! };
})();
/** The scheduler's choice, as before the placement (for comparing the spread). */
export const UNPINNED: StreamPlacement = { client: null, server: null };

const affinity = (cpu: number | null): string[] => (cpu === null ? [] : ['-A', String(cpu)]);

export interface StreamRate {
  readonly gbps: number;
  /**
   * CPU seconds of the sender and the receiver per gigabyte delivered (iperf3's own CPU
   * report of both ends): with the sender pinned, the forward path's softirq is charged to
   * it (as for `PacketRate.cpuPerPacket`), so this is the whole path's CPU per byte, which
   * the other users of the machine move far less than the rate.
   */
  readonly cpuPerGB: number;
}

export interface PacketRate {
  readonly pps: number;
  /**
   * CPU seconds of the sender processes per delivered datagram. On veth the whole path
   * (tunnel node and pod included) runs as softirq in the sender's context, which this
   * kernel's tick accounting charges to the sender (no IRQ_TIME_ACCOUNTING): a cost per
   * packet that does not depend on how much of the machine the other users leave us.
   */
  readonly cpuPerPacket: number;
}

export interface ConnectionRate {
  readonly perSecond: number;
  readonly cpuPerConnection: number;
}

export interface PathBench {
  readonly fabric: Fabric;
  /** One TCP stream, Gbit/s, with the sender and receiver on the CPUs `placement` names. */
  stream(path: PathName, seconds?: number, placement?: StreamPlacement): Promise<StreamRate>;
  /** Small UDP datagrams delivered to the pod per second, and the CPU they cost. */
  pps(path: PathName, seconds?: number): Promise<PacketRate>;
  /**
   * Completed connections (connect, request, response, close) per second, and the client
   * processes' CPU seconds per connection (JavaScript plus the kernel path their sends take).
   */
  connRate(path: PathName, seconds?: number): Promise<ConnectionRate>;
  /**
   * For comparison, as before issue 16: the tunnel node's postrouting chain emptied, so VIP
   * packets keep their mark through the encapsulation (`false` restores the rule).
   */
  keepMark(keep: boolean): Promise<void>;
  destroy(): Promise<void>;
}

async function nexthopId(ns: string): Promise<number> {
  const r = await runCommand('ip', ['-n', ns, '-json', '-4', 'nexthop', 'show', 'protocol', '245']);
  const m = /\{"id":(\d+),/.exec(r.stdout);
  if (!m) throw new Error(`no nexthop object in ${ns}`);
  return Number(m[1]);
}

/** Programs `vips` on `netns` as the agent does; the processes are stopped, the kernel stays. */
async function program(netns: string, vips: VipFixture[]): Promise<void> {
  const dp = new TunnelDataplane({ config: testConfig(), netns });
  dp.start();
  const r = await dp.set(desiredState({ bucketCount: B, vips }));
  await dp.stop();
  if (!r.ok) throw new Error(`programming ${netns} failed: ${r.error}`);
}

/**
 * The pod counts and drops the benchmark's 64-byte datagrams after decapsulation (UDP length
 * 72); iperf3's own small set-up datagrams still reach its server.
 */
const POD_NFT = `table inet kstbench {
\tcounter delivered { }
\tchain pre { type filter hook prerouting priority -500; policy accept; iifname "kst-vxlan" udp dport 5310-5311 udp length 72 counter name delivered drop; }
}
`;

async function podDelivered(pod: string): Promise<number> {
  const r = await runCommand('nft', ['-j', 'list', 'counter', 'inet', 'kstbench', 'delivered'], { netns: pod });
  const m = /"packets":\s*(\d+)/.exec(r.stdout);
  return Number(m?.[1] ?? 0);
}

// Connection-rate server and client (Node): the server answers one line and closes first,
// so TIME_WAIT stays in the pod and the client's ports are reused freely.
const CONN_SERVER = `
const net = require('node:net');
const [addr, port] = process.argv.slice(1);
net.createServer((s) => { s.once('data', () => s.end('ok\\n')); s.on('error', () => {}); }).listen(Number(port), addr, 1024, () => console.log('ready'));
`;
const CONN_CLIENT = `
const net = require('node:net');
const [addr, port, ms, parallel] = process.argv.slice(1);
let done = 0, failed = 0, stop = false;
const one = () => {
  if (stop) return;
  const s = net.connect({ host: addr, port: Number(port) });
  s.setNoDelay(true);
  s.once('connect', () => s.write('hello\\n'));
  s.resume();
  s.once('end', () => { done++; s.destroy(); one(); });
  s.once('error', () => { failed++; s.destroy(); setTimeout(one, 10); });
};
for (let i = 0; i < Number(parallel); i++) one();
const start = process.cpuUsage();
setTimeout(() => { stop = true; const c = process.cpuUsage(start); console.log(JSON.stringify({ done, failed, cpuSeconds: (c.user + c.system) / 1e6 })); process.exit(0); }, Number(ms));
`;

interface StreamReport {
  end: { sum_received: { bits_per_second: number; bytes: number; seconds: number }; cpu_utilization_percent: { host_total: number; remote_total: number } };
}

interface IperfReport {
  end: { sum: { seconds: number }; cpu_utilization_percent: { host_total: number } };
}

function startIn(netns: string, argv: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function output(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${child.spawnargs.join(' ')} exited ${code}: ${err}`))));
  });
}

function kill(...children: ChildProcess[]): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

export async function buildPathBench(): Promise<PathBench> {
  const f = await buildFabric(1, { mtu: 9000 });
  const pod = f.pods[0]!;
  const children: ChildProcess[] = [];
  try {
    await setupVxlanPod(pod, [VIP, SCALED_VIP]);
    for (const a of [PLAIN, ENCAP]) await runCommand('ip', ['-n', pod, 'addr', 'add', `${a}/32`, 'dev', 'lo']);
    // A second tunnel node on the same fabric, carrying 1,000 VIPs.
    const scaled = await f.sets.create('kdt');
    const { aIf, bIf } = await f.sets.link(f.fabric, scaled, { bAddrs: [`${TUNNEL4_SCALED}/24`] });
    await runCommand('ip', ['-n', f.fabric, 'link', 'set', aIf, 'master', 'br0']);
    for (const [ns, dev] of [[f.fabric, aIf], [scaled, bIf]] as const) await runCommand('ip', ['-n', ns, 'link', 'set', dev, 'mtu', '9000']);
    for (const ns of [f.tunnel, scaled, f.client]) {
      await runCommand('sysctl', ['-q', '-w', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.all.accept_redirects=0'], { netns: ns });
    }
    await runCommand('sysctl', ['-q', '-w', 'net.ipv4.ip_local_port_range=1024 65000'], { netns: f.client });
    await runCommand('ip', ['-n', f.client, 'route', 'add', `${PLAIN}/32`, 'via', TUNNEL4]);
    await runCommand('ip', ['-n', f.client, 'route', 'add', `${ENCAP}/32`, 'via', TUNNEL4]);
    await runCommand('ip', ['-n', f.client, 'route', 'add', `${SCALED_VIP}/32`, 'via', TUNNEL4_SCALED]);
    await runCommand('ip', ['-n', f.tunnel, 'route', 'add', `${PLAIN}/32`, 'via', pod4(0)]);
    await program(f.tunnel, [{ vip: VIP, backends: [pod4(0)] }]);
    // The encapsulation alone: the same nexthop object, from the main table, unmarked.
    await runCommand('ip', ['-n', f.tunnel, 'route', 'add', `${ENCAP}/32`, 'nhid', String(await nexthopId(f.tunnel))]);
    const many: VipFixture[] = [{ vip: SCALED_VIP, backends: [pod4(0)] }];
    for (let i = 1; i < SCALE_VIPS; i++) many.push({ vip: otherVip(i), backends: Array.from({ length: 4 }, (_, k) => `198.51.100.${100 + ((i * 4 + k) % 100)}`) });
    await program(scaled, many);
    await runCommand('nft', ['-f', '-'], { netns: pod, input: POD_NFT });
    const server = startIn(pod, [process.execPath, '-e', CONN_SERVER, '0.0.0.0', '5320']);
    children.push(server);
    await new Promise<void>((resolve, reject) => {
      server.stdout?.once('data', () => resolve());
      server.once('exit', (code) => reject(new Error(`connection server exited ${code}`)));
    });
  } catch (err) {
    kill(...children);
    await f.sets.destroy();
    throw err;
  }

  const stream = async (path: PathName, seconds = 3, placement = STREAM_PLACEMENT): Promise<StreamRate> => {
    const srv = startIn(pod, ['iperf3', '-s', '-1', '-p', '5301', ...affinity(placement.server)]);
    children.push(srv);
    try {
      await sleep(300);
      const args = ['-c', target[path], '-p', '5301', '-t', String(seconds), ...affinity(placement.client), '-J'];
      const r = await runCommand('iperf3', args, { netns: f.client, timeoutMs: 30_000 + seconds * 1000 });
      const j = JSON.parse(r.stdout) as StreamReport;
      const { sum_received: rx, cpu_utilization_percent: cpu } = j.end;
      const cpuSeconds = ((cpu.host_total + cpu.remote_total) / 100) * rx.seconds;
      return { gbps: rx.bits_per_second / 1e9, cpuPerGB: cpuSeconds / Math.max(1e-9, rx.bytes / 1e9) };
    } finally {
      kill(srv);
    }
  };

  const pps = async (path: PathName, seconds = 3): Promise<PacketRate> => {
    // Two sender processes (one per core) x 128 streams: 256 source ports. The iperf3
    // servers only answer the control connection; the pod drops the datagrams in nft.
    const ports = ['5310', '5311'];
    // Bound to the target address: iperf3's UDP set-up answer must come from the address the
    // client sent to, and the pod would otherwise answer from its own address.
    const servers = ports.map((p) => startIn(pod, ['iperf3', '-s', '-1', '-p', p, '-B', target[path]]));
    children.push(...servers);
    try {
      await sleep(300);
      const before = await podDelivered(pod);
      const t = performance.now();
      const clients = ports.map((p) => startIn(f.client, ['iperf3', '-c', target[path], '-p', p, '-u', '-l', '64', '-b', '0', '-P', '128', '-t', String(seconds), '--connect-timeout', '3000', '-J']));
      children.push(...clients);
      const reports = (await Promise.all(clients.map(output))).map((o) => JSON.parse(o) as IperfReport);
      const elapsed = (performance.now() - t) / 1000;
      const delivered = (await podDelivered(pod)) - before;
      // The clients' runtime includes connecting 128 streams each; the sending lasts `seconds`.
      const cpuSeconds = reports.reduce((sum, r) => sum + (r.end.cpu_utilization_percent.host_total / 100) * r.end.sum.seconds, 0);
      return { pps: delivered / Math.min(elapsed, seconds), cpuPerPacket: cpuSeconds / Math.max(1, delivered) };
    } finally {
      kill(...servers);
    }
  };

  const connRate = async (path: PathName, seconds = 3): Promise<ConnectionRate> => {
    const clients = [0, 1].map(() => startIn(f.client, [process.execPath, '-e', CONN_CLIENT, target[path], '5320', String(seconds * 1000), '32']));
    children.push(...clients);
    const results = (await Promise.all(clients.map(output))).map((o) => JSON.parse(o) as { done: number; failed: number; cpuSeconds: number });
    const done = results.reduce((n, r) => n + r.done, 0);
    if (done === 0) throw new Error(`no connection completed on the ${path} path (${results.map((r) => r.failed).join('+')} failed)`);
    return { perSecond: done / seconds, cpuPerConnection: results.reduce((n, r) => n + r.cpuSeconds, 0) / done };
  };

  const keepMark = async (keep: boolean): Promise<void> => {
    const chain = 'inet kube_service_tunnel postrouting';
    const rule = `meta mark & ${hex(MARK_MASK)} == ${hex(MARK_BASE)} meta mark set 0x0`;
    await runCommand('nft', keep ? ['flush', 'chain', ...chain.split(' ')] : ['add', 'rule', ...chain.split(' '), ...rule.split(' ')], { netns: f.tunnel });
  };

  return {
    fabric: f,
    stream,
    pps,
    connRate,
    keepMark,
    async destroy() {
      kill(...children);
      await sleep(100);
      await f.sets.destroy();
    },
  };
}

export interface PathFigures {
  /** Per path, one value per alternation. */
  readonly stream: Record<PathName, number[]>;
  /** Per path, CPU seconds per gigabyte of the same streams (`StreamRate.cpuPerGB`). */
  readonly streamCpu: Record<PathName, number[]>;
  /** `marked`: the tunnel with its mark kept through the encapsulation (before issue 16). */
  readonly pps: Record<'encap' | 'tunnel' | 'scaled' | 'marked', PacketRate[]>;
  readonly connRate: Record<'encap' | 'tunnel', ConnectionRate[]>;
}

/**
 * `rounds` alternations: each round measures every path once, in the same order, so a
 * change in the machine's load hits all paths alike; ratios are taken within a round.
 */
export async function measurePaths(rounds: number, log: (s: string) => void = () => {}): Promise<PathFigures> {
  const bench = await buildPathBench();
  try {
    const out: PathFigures = { stream: { plain: [], encap: [], tunnel: [], scaled: [] }, streamCpu: { plain: [], encap: [], tunnel: [], scaled: [] }, pps: { encap: [], tunnel: [], scaled: [], marked: [] }, connRate: { encap: [], tunnel: [] } };
    // Even rounds run the paths in order, odd rounds in reverse: each pair a ratio compares
    // (encap and tunnel, tunnel and scaled) is measured back to back in every round, and
    // each of the two goes first in every other round. A fixed order let the one-VIP and
    // the 1,000-VIP node meet the machine's load in the same phase of every round; rotating
    // the start (the order before) put the two up to three runs (12 s) apart in some rounds.
    const roundOrder = <T>(xs: readonly T[], i: number): T[] => (i % 2 === 0 ? [...xs] : [...xs].reverse());
    for (let i = 0; i < rounds; i++) {
      for (const p of roundOrder(['plain', 'encap', 'tunnel', 'scaled'] as const, i)) {
        const r = await bench.stream(p);
        out.stream[p].push(r.gbps);
        out.streamCpu[p].push(r.cpuPerGB);
      }
      for (const p of roundOrder(['encap', 'tunnel', 'scaled'] as const, i)) out.pps[p].push(await bench.pps(p));
      await bench.keepMark(true);
      try {
        out.pps.marked.push(await bench.pps('tunnel'));
      } finally {
        await bench.keepMark(false);
      }
      for (const p of ['encap', 'tunnel'] as const) out.connRate[p].push(await bench.connRate(p));
      log(`round ${i + 1}: stream ${(['plain', 'encap', 'tunnel', 'scaled'] as const).map((p) => `${p} ${out.stream[p][i]!.toFixed(2)} (${out.streamCpu[p][i]!.toFixed(2)})`).join(', ')} Gbit/s (CPU s per GB); pps (us CPU per packet) ${(['encap', 'tunnel', 'scaled', 'marked'] as const).map((p) => `${p} ${Math.round(out.pps[p][i]!.pps)} (${(out.pps[p][i]!.cpuPerPacket * 1e6).toFixed(1)})`).join(' ')}; conn/s (us CPU each) ${(['encap', 'tunnel'] as const).map((p) => `${p} ${Math.round(out.connRate[p][i]!.perSecond)} (${(out.connRate[p][i]!.cpuPerConnection * 1e6).toFixed(0)})`).join(' ')}`);
    }
    return out;
  } finally {
    await bench.destroy();
  }
}

/** Median of the per-round ratios a[i] / b[i]. */
export const ratio = (a: readonly number[], b: readonly number[]): number => median(a.map((x, i) => x / b[i]!));
