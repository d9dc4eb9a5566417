// `npm run bench -- dataplane`: the tunnel-node data plane against its floors, in network
// namespaces made and removed here.
//  (a) full sync of 1,000 VIPs x 256 buckets into an empty namespace vs one raw `ip -batch`
//      of the same nexthop objects and routes (the floor), same run; and, for reference, the
//      same routes with inline nexthops (how versions before nexthop objects wrote them);
//  (b) one endpoint change with 1,000 VIPs programmed, through the real model: EndpointSlice
//      event to kernel updated, 20 changes each: an endpoint replaced, pinning off (against
//      the raw `ip -batch` of the same routes) and on; an endpoint added, pinning on (a new
//      table generation and the flip);
//  (c) the cost per packet (bench/lib/dataplane-path.ts): one TCP stream (iperf3, 3 s, sender
//      and its softirq on CPU 0, receiver on CPU 1, rate and bytes per CPU second), small
//      UDP packets per second and new connections per second, through the VXLAN tunnel vs
//      the VXLAN encapsulation alone (same nexthop object; no flow hash, marks or rules) and
//      plain routing, and through a tunnel node with 1,000 VIPs; alternating rounds (default
//      5, `npm run bench -- dataplane c N`).
// Prints a table, then one JSON line with the figures.
import { loadavg } from 'node:os';
import { TunnelDataplane, VXLAN_GATEWAY, VXLAN_NODE_MAC, VXLAN_POD_MAC } from '../src/dataplane/index.js';
import { NetnsSet } from '../src/lab/index.js';
import { runCommand } from '../src/system/index.js';
import { planTableWrites } from '../src/kube/table-writer.js';
import { IncrementalModel, type DesiredState, type EndpointSliceInput, type ServiceInput, type VipPlan } from '../src/model/index.js';
import { storedTablesKey } from '../src/model/stored-table.js';
import { desiredState, testConfig, type VipFixture } from '../test/dataplane/fixtures.js';
import { ep, node, settings as testSettings, tunnelService } from '../test/model/helpers.js';
import { STREAM_PLACEMENT, measurePaths, ratio, type ConnectionRate, type PacketRate } from './lib/dataplane-path.js';

const VIPS = 1000;
const B = 256;
const BACKENDS = 4;

const vipAddress = (i: number): string => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const backend = (i: number, k: number): string => `192.0.2.${(i * BACKENDS + k) % 200 + 20}`;

function fixtures(): VipFixture[] {
  return Array.from({ length: VIPS }, (_, i) => ({ vip: vipAddress(i), backends: Array.from({ length: BACKENDS }, (_, k) => backend(i, k)) }));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freshNode(sets: NetnsSet): Promise<string> {
  const ns = await sets.create('kbn');
  const peer = await sets.create('kbp');
  await sets.link(ns, peer, { aAddrs: ['192.0.2.1/24'], bAddrs: ['192.0.2.2/24'] });
  return ns;
}

async function floorRun(sets: NetnsSet, input: string): Promise<number> {
  // The same lines through one raw `ip -batch`, the link and neighbour made first.
  const ns = await freshNode(sets);
  await runCommand('ip', ['-n', ns, 'link', 'add', 'kst-vxlan', 'address', VXLAN_NODE_MAC, 'type', 'vxlan', 'external', 'dstport', '4789', 'nolearning']);
  await runCommand('ip', ['-n', ns, 'link', 'set', 'kst-vxlan', 'arp', 'off', 'up']);
  await runCommand('ip', ['-n', ns, 'neigh', 'replace', VXLAN_GATEWAY, 'lladdr', VXLAN_POD_MAC, 'dev', 'kst-vxlan', 'nud', 'permanent']);
  const t = performance.now();
  await runCommand('ip', ['-n', ns, '-batch', '-'], { input, timeoutMs: 1_200_000 });
  const ms = performance.now() - t;
  await sets.destroy(); // 256k routes: keep at most one such namespace at a time
  return ms;
}

const vxlanNexthop = (ep: string): string => `via ${VXLAN_GATEWAY} dev kst-vxlan onlink encap ip id 4242 dst ${ep}`;

interface FullSync {
  ours: number;
  floor: number;
  floors: number[];
  /** The same routes with their nexthops inline, as versions before nexthop objects wrote them. */
  inline: number;
  operations: number;
  routes: number;
}

async function fullSync(sets: NetnsSet): Promise<FullSync> {
  const desired = desiredState({ bucketCount: B, vips: fixtures() });
  // The floor: the batch the data plane writes (one nexthop object per endpoint, routes by
  // nhid), by one raw `ip -batch`.
  const ids = new Map<string, number>();
  const objects: string[] = [];
  const routes: string[] = [];
  const inline: string[] = [];
  for (const v of desired.vips) {
    for (let b = 0; b < B; b++) {
      const ep = v.table.backends[v.table.buckets[b]!]!.address;
      let id = ids.get(ep);
      if (id === undefined) {
        ids.set(ep, (id = 0x4b600000 + ids.size));
        objects.push(`nexthop replace id ${id} proto 245 ${vxlanNexthop(ep)}`);
      }
      routes.push(`route replace ${v.vip}/32 table ${0x4b5300 + b} proto 245 nhid ${id}`);
      inline.push(`route replace ${v.vip}/32 table ${0x4b5300 + b} proto 245 ${vxlanNexthop(ep)}`);
    }
  }
  const input = `${[...objects, ...routes].join('\n')}\n`;
  // Floor, ours, floor: runs showed an order effect (the machine's load drifts), so ours is
  // compared with the mean of a floor before and a floor after it.
  const floors = [await floorRun(sets, input)];
  const ns = await freshNode(sets);
  const dp = new TunnelDataplane({ config: testConfig(), netns: ns });
  dp.start();
  const t = performance.now();
  const r = await dp.set(desired);
  const ours = performance.now() - t;
  await dp.stop();
  if (!r.ok) throw new Error(`full sync failed: ${r.error}`);
  const state = await dp.kernel.read(0x4b5300);
  let count = 0;
  for (const m of state.routes.values()) count += m.size;
  await sets.destroy();
  floors.push(await floorRun(sets, input));
  const inlineMs = await floorRun(sets, `${inline.join('\n')}\n`);
  return { ours, floor: (floors[0]! + floors[1]!) / 2, floors, inline: inlineMs, operations: r.operations, routes: count };
}

/** Endpoint address -> id of its nexthop object, read back. */
async function nexthopIds(ns: string): Promise<Map<string, number>> {
  const r = await runCommand('ip', ['-n', ns, '-json', '-4', 'nexthop', 'show', 'protocol', '245']);
  const out = new Map<string, number>();
  for (const m of r.stdout.matchAll(/\{"id":(\d+),[^{}]*?"dst":"([^"]+)"/g)) out.set(m[2]!, Number(m[1]));
  return out;
}

// (b) drives the real model: 1,000 Services annotated with a VIP, 4 endpoints each, this
// node labelled as a tunnel node; a change is one EndpointSlice event.
const NODE = 'tunnel-1';
const modelSettings = testSettings({ pools: [{ name: 'bench', cidrs: ['10.100.0.0/16'], namespaces: ['*'], autoAssign: false, communities: [], largeCommunities: [] }] });

/** `changed`: Service index -> [endpoint slot, new address]; slot BACKENDS adds a fifth. */
function slice(i: number, changed: ReadonlyMap<number, readonly [number, string]>): EndpointSliceInput {
  const addresses = Array.from({ length: BACKENDS }, (_, k) => backend(i, k));
  const r = changed.get(i);
  if (r) addresses[r[0]] = r[1];
  return { namespace: 'bench', name: `svc-${i}-1`, serviceName: `svc-${i}`, addressType: 'IPv4', endpoints: addresses.map((a, k) => ep(a, `worker-${k % BACKENDS}`)) };
}

/**
 * The model as the agent runs it, stored tables on (the default): after each change the
 * Lease holder's writer stores the new tables in the Services' annotations, and they come
 * back to the model as Service events (here: at once, untimed).
 */
class BenchCluster {
  readonly model = new IncrementalModel(modelSettings, NODE, { storedTables: true });
  private readonly services = new Map<string, ServiceInput>();

  constructor() {
    const nodes = [NODE, ...Array.from({ length: BACKENDS }, (_, k) => `worker-${k}`)].map((name) => node(name, name === NODE ? { labels: { node: 'tunnel' } } : {}));
    for (let i = 0; i < VIPS; i++) this.services.set(`svc-${i}`, { ...tunnelService(`svc-${i}`, vipAddress(i)), namespace: 'bench' });
    this.model.replaceAll({ services: [...this.services.values()], endpointSlices: Array.from({ length: VIPS }, (_, i) => slice(i, new Map())), nodes, localPods: [] });
  }

  /** What the table writer would store for `desired`, fed back as Service updates. */
  storeTables(desired: DesiredState): number {
    const writes = planTableWrites(desired, [...this.services.values()], modelSettings.annotationKey);
    for (const w of writes) {
      const svc = this.services.get(w.name)!;
      const annotations = { ...svc.annotations };
      if (w.value === null) delete annotations[storedTablesKey(modelSettings.annotationKey)];
      else annotations[storedTablesKey(modelSettings.annotationKey)] = w.value;
      const updated = { ...svc, annotations };
      this.services.set(w.name, updated);
      this.model.setService(updated);
    }
    return writes.length;
  }
}

interface Changes {
  samples: number[];
  operations: number[];
  floor: number[];
}

/**
 * 20 changes, each to one Service's EndpointSlice: from the event reaching the model to
 * set() resolved (the kernel updated). `replace`: one endpoint is replaced by a new pod
 * (the old one is gone); `add`: a fifth endpoint joins (scale-up: buckets move away from
 * endpoints that still serve, so with pinning the change is a new table generation).
 */
async function singleChanges(sets: NetnsSet, pin: boolean, kind: 'replace' | 'add' = 'replace'): Promise<Changes> {
  const ns = await freshNode(sets);
  const config = testConfig({ coalesceMs: 100, pin });
  const dp = new TunnelDataplane({ config, netns: ns });
  dp.start();
  const cluster = new BenchCluster();
  const model = cluster.model;
  let desired = model.desiredState();
  if (!desired.isTunnelNode || desired.vips.length !== VIPS) throw new Error(`bench model: ${desired.vips.length} VIPs, tunnel node ${desired.isTunnelNode}`);
  cluster.storeTables(desired);
  desired = model.desiredState();
  const first = await dp.set(desired);
  if (!first.ok) throw new Error(`initial sync failed: ${first.error}`);
  const out: Changes = { samples: [], operations: [], floor: [] };
  const replaced = new Map<number, readonly [number, string]>();
  for (let g = 1; g <= 20; g++) {
    const i = (g * 37) % VIPS;
    replaced.set(i, [kind === 'add' ? BACKENDS : g % BACKENDS, `198.51.100.${g}`]);
    const next = slice(i, replaced);
    await sleep(config.dataplane.coalesceMs + 20); // each change arrives alone, not in a burst
    const before = desired.vips.find((v) => v.vip === vipAddress(i))!;
    const t = performance.now();
    model.setEndpointSlice(next);
    desired = model.desiredState();
    const r = await dp.set(desired);
    out.samples.push(performance.now() - t);
    out.operations.push(r.operations);
    if (!r.ok) throw new Error(`change ${g} failed: ${r.error}`);
    if (!pin) out.floor.push(await floorChange(ns, before, desired.vips.find((v) => v.vip === vipAddress(i))!));
    // The writer stores the new table; applying what comes back changes nothing.
    if (cluster.storeTables(desired) !== 1) throw new Error(`change ${g}: expected one stored-table write`);
    desired = model.desiredState();
    const echo = await dp.set(desired);
    if (!echo.ok || echo.operations !== 0) throw new Error(`change ${g}: the stored table's echo changed the kernel (${echo.operations} ops)`);
  }
  await dp.stop();
  return out;
}

/**
 * The floor of one change: the same route changes through one raw `ip -batch`. The routes
 * are reverted first (untimed): re-applying identical routes would be a kernel no-op. The
 * new endpoint's nexthop object exists by then, so the floor has one line fewer than ours.
 */
async function floorChange(ns: string, before: VipPlan, after: VipPlan): Promise<number> {
  const ids = await nexthopIds(ns);
  const target = (v: VipPlan, b: number): string => v.table.backends[v.table.buckets[b]!]!.address;
  const moved = Array.from(after.table.buckets).flatMap((_, b) => (target(before, b) !== target(after, b) ? [b] : []));
  const lines = (v: VipPlan) => moved.map((b) => `route replace ${v.vip}/32 table ${0x4b5300 + b} proto 245 nhid ${ids.get(target(v, b))}`).join('\n') + '\n';
  await runCommand('ip', ['-n', ns, '-batch', '-'], { input: lines(before) });
  const t = performance.now();
  await runCommand('ip', ['-n', ns, '-batch', '-'], { input: lines(after) });
  return performance.now() - t;
}

async function main(): Promise<void> {
  const sets = new NetnsSet();
  // An interrupted bench still removes its namespaces.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void sets.destroy().finally(() => process.exit(130));
    });
  }
  try {
    const load = () => loadavg()[0]!.toFixed(1);
    // `npm run bench -- dataplane b` runs only part (b), and so on; default: all.
    const parts = process.argv[2] ?? 'abc';
    const stage = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
      console.error(`dataplane bench: ${name} ... (load ${load()})`);
      try {
        return await run();
      } finally {
        await sets.destroy();
      }
    };
    const a = parts.includes('a') ? await stage('(a) full sync', () => fullSync(sets)) : undefined;
    const b = parts.includes('b') ? await stage('(b) changes, pinning off', () => singleChanges(sets, false)) : undefined;
    const bp = parts.includes('b') ? await stage('(b) changes, pinning on', () => singleChanges(sets, true)) : undefined;
    const bpa = parts.includes('b') ? await stage('(b) endpoint added, pinning on', () => singleChanges(sets, true, 'add')) : undefined;
    // `npm run bench -- dataplane c 7`: 7 alternations (default 5).
    const rounds = Number(process.argv[3] ?? 5);
    const c = parts.includes('c') ? await stage(`(c) paths, ${rounds} alternations`, () => measurePaths(rounds, (s) => console.error(`  ${s} (load ${load()})`))) : undefined;
    const ms = (xs: number[]): string => `median ${median(xs).toFixed(1)} ms, p90 ${pct(xs, 0.9).toFixed(1)} ms`;
    const rows: [string, string, string][] = [];
    const figures: Record<string, number | number[]> = {};
    if (a) {
      rows.push(['(a) full sync 1000 VIPs x 256 buckets', `${(a.ours / 1000).toFixed(2)} s (${a.operations} ops, ${a.routes} routes)`, `floor ${a.floors.map((f) => (f / 1000).toFixed(2)).join(' / ')} s (before / after), ratio ${(a.ours / a.floor).toFixed(2)}x (target <= 1.5x)`]);
      rows.push(['(a) same routes, nexthops inline', `${(a.inline / 1000).toFixed(2)} s`, `raw ip -batch without nexthop objects (versions before them): ${(a.inline / a.ours).toFixed(1)}x ours`]);
      Object.assign(figures, { fullSyncMs: Math.round(a.ours), fullSyncFloorMs: Math.round(a.floor), fullSyncFloorRunsMs: a.floors.map(Math.round), fullSyncRatio: +(a.ours / a.floor).toFixed(3), fullSyncOperations: a.operations, routes: a.routes, fullSyncInlineFloorMs: Math.round(a.inline) });
    }
    if (b && bp && bpa) {
      rows.push(['(b) endpoint replaced, pinning off', ms(b.samples), `target median < 20 ms; ${median(b.operations)} ops each; raw ip -batch of the same routes: median ${median(b.floor).toFixed(1)} ms`]);
      rows.push(['(b) endpoint replaced, pinning on', ms(bp.samples), `${median(bp.operations)} ops each: the old pod is gone, its buckets change in place`]);
      rows.push(['(b) endpoint added, pinning on', ms(bpa.samples), `${median(bpa.operations)} ops each: a new generation into the other parity, then the flip (nft)`]);
      Object.assign(figures, {
        changeMedianMs: +median(b.samples).toFixed(2), changeP90Ms: +pct(b.samples, 0.9).toFixed(2), changeSamples: b.samples.length, changeOperationsMedian: median(b.operations),
        changeFloorMedianMs: +median(b.floor).toFixed(2), changeRatio: +(median(b.samples) / median(b.floor)).toFixed(3),
        changePinnedMedianMs: +median(bp.samples).toFixed(2), changePinnedP90Ms: +pct(bp.samples, 0.9).toFixed(2), changePinnedOperationsMedian: median(bp.operations),
        addPinnedMedianMs: +median(bpa.samples).toFixed(2), addPinnedP90Ms: +pct(bpa.samples, 0.9).toFixed(2), addPinnedOperationsMedian: median(bpa.operations),
      });
    }
    if (c) {
      const { stream, streamCpu, pps, connRate } = c;
      const gbps = (xs: number[]): string => `${median(xs).toFixed(2)} Gbit/s`;
      const kpps = (xs: number[]): string => `${(median(xs) / 1000).toFixed(1)} kpps`;
      const us = (xs: number[]): string => `${(median(xs) * 1e6).toFixed(1)} us`;
      const figure = (x: number): number => +x.toFixed(3);
      const overhead = ratio(stream.tunnel, stream.encap);
      const rate = (xs: PacketRate[]): number[] => xs.map((x) => x.pps);
      const cpu = (xs: PacketRate[]): number[] => xs.map((x) => x.cpuPerPacket);
      const ppsR = ratio(rate(pps.tunnel), rate(pps.encap));
      // Packets per CPU second, tunnel / encap: the same comparison, independent of the
      // share of the machine the other users leave.
      const ppsCpuR = ratio(cpu(pps.encap), cpu(pps.tunnel));
      const markedCpuR = ratio(cpu(pps.encap), cpu(pps.marked));
      const conns = (xs: ConnectionRate[]): number[] => xs.map((x) => x.perSecond);
      const connCpu = (xs: ConnectionRate[]): number[] => xs.map((x) => x.cpuPerConnection);
      const connR = ratio(conns(connRate.tunnel), conns(connRate.encap));
      const connCpuR = ratio(connCpu(connRate.encap), connCpu(connRate.tunnel));
      const scale = ratio(stream.scaled, stream.tunnel);
      // The same two comparisons in bytes per CPU second of the stream's two processes: the
      // sender is pinned, so the forward path's softirq is charged to it, and the figure does
      // not depend on the share of the machine the other users leave (bench/lib/dataplane-path.ts).
      const overheadCpu = ratio(streamCpu.encap, streamCpu.tunnel);
      const scaleCpu = ratio(streamCpu.tunnel, streamCpu.scaled);
      const cpuRounds = (a: number[], b: number[]): string => a.map((x, i) => (x / b[i]!).toFixed(2)).join(' ');
      // The same comparison per packet: small datagrams make the per-packet lookups (bucket
      // table, sets) the whole of the forwarding cost, where a TCP stream's 64 KB GSO
      // packets dilute them about 40-fold; and per CPU second, which the load does not move.
      const scalePps = ratio(rate(pps.scaled), rate(pps.tunnel));
      const scalePpsCpu = ratio(cpu(pps.tunnel), cpu(pps.scaled));
      const n = stream.plain.length;
      rows.push(['(c) one TCP stream, iperf3 3 s, CPU 0/1', `tunnel ${gbps(stream.tunnel)}`, `plain ${gbps(stream.plain)}, ratio ${(100 * ratio(stream.tunnel, stream.plain)).toFixed(0)}% (median of ${n} alternating; target >= 90%)`]);
      rows.push(['(c) same, VXLAN encapsulation alone', gbps(stream.encap), `no flow hash, marks or rules: ${(100 * ratio(stream.encap, stream.plain)).toFixed(0)}% of plain`]);
      rows.push(['(c) overheadRatio tunnel / encap', overhead.toFixed(3), `one TCP stream, median of ${n} per-round ratios (target >= 0.97); rounds ${stream.tunnel.map((t, i) => (t / stream.encap[i]!).toFixed(2)).join(' ')}`]);
      rows.push(['(c) same, bytes per CPU second', overheadCpu.toFixed(3), `CPU s per GB: tunnel ${median(streamCpu.tunnel).toFixed(3)}, encap ${median(streamCpu.encap).toFixed(3)}; rounds ${cpuRounds(streamCpu.encap, streamCpu.tunnel)}`]);
      rows.push(['(c) ppsRatio, 64-byte UDP, 256 ports', ppsR.toFixed(3), `tunnel ${kpps(rate(pps.tunnel))}, encap ${kpps(rate(pps.encap))} delivered to the pod (target >= 0.9)`]);
      rows.push(['(c) same, packets per CPU second', ppsCpuR.toFixed(3), `tunnel ${us(cpu(pps.tunnel))}, encap ${us(cpu(pps.encap))} of CPU per packet, whole path`]);
      rows.push(['(c) same, mark kept through the encap', markedCpuR.toFixed(3), `packets per CPU second / encap: ${us(cpu(pps.marked))} per packet, the tunnel as before issue 16 (postrouting chain emptied); by rate ${ratio(rate(pps.marked), rate(pps.encap)).toFixed(3)}`]);
      rows.push(['(c) connRateRatio, connect+req+close', connR.toFixed(3), `tunnel ${median(conns(connRate.tunnel)).toFixed(0)}/s, encap ${median(conns(connRate.encap)).toFixed(0)}/s (target >= 0.85)`]);
      rows.push(['(c) same, connections per CPU second', connCpuR.toFixed(3), `client CPU per connection: tunnel ${us(connCpu(connRate.tunnel))}, encap ${us(connCpu(connRate.encap))}`]);
      rows.push(['(c) scaleRatio 1000 VIPs / 1 VIP', scale.toFixed(3), `one TCP stream: ${gbps(stream.scaled)} on a node with 1,000 VIPs x 256 buckets (target >= 0.95); rounds ${stream.scaled.map((x, i) => (x / stream.tunnel[i]!).toFixed(2)).join(' ')}`]);
      rows.push(['(c) same, bytes per CPU second', scaleCpu.toFixed(3), `CPU s per GB: scaled ${median(streamCpu.scaled).toFixed(3)}, one VIP ${median(streamCpu.tunnel).toFixed(3)}; rounds ${cpuRounds(streamCpu.tunnel, streamCpu.scaled)}`]);
      rows.push(['(c) same, 64-byte UDP packets / second', scalePps.toFixed(3), `scaled ${kpps(rate(pps.scaled))}, one VIP ${kpps(rate(pps.tunnel))}; rounds ${pps.scaled.map((x, i) => (x.pps / pps.tunnel[i]!.pps).toFixed(2)).join(' ')}`]);
      rows.push(['(c) same, packets per CPU second', scalePpsCpu.toFixed(3), `scaled ${us(cpu(pps.scaled))}, one VIP ${us(cpu(pps.tunnel))} of CPU per packet; rounds ${pps.scaled.map((x, i) => (pps.tunnel[i]!.cpuPerPacket / x.cpuPerPacket).toFixed(2)).join(' ')}`]);
      Object.assign(figures, {
        tunnelGbps: figure(median(stream.tunnel)), plainGbps: figure(median(stream.plain)), encapOnlyGbps: figure(median(stream.encap)), throughputRatio: figure(ratio(stream.tunnel, stream.plain)),
        overheadRatio: figure(overhead), overheadRatios: stream.tunnel.map((t, i) => figure(t / stream.encap[i]!)), alternations: n,
        ppsRatio: figure(ppsR), tunnelPps: Math.round(median(rate(pps.tunnel))), encapPps: Math.round(median(rate(pps.encap))),
        ppsCpuRatio: figure(ppsCpuR), tunnelCpuPerPacketUs: figure(median(cpu(pps.tunnel)) * 1e6), encapCpuPerPacketUs: figure(median(cpu(pps.encap)) * 1e6),
        markKeptPpsCpuRatio: figure(markedCpuR), markKeptPpsRatio: figure(ratio(rate(pps.marked), rate(pps.encap))),
        connRateRatio: figure(connR), tunnelConnPerSecond: Math.round(median(conns(connRate.tunnel))), encapConnPerSecond: Math.round(median(conns(connRate.encap))), connRateCpuRatio: figure(connCpuR),
        scaleRatio: figure(scale), scaledGbps: figure(median(stream.scaled)), scaleRatios: stream.scaled.map((x, i) => figure(x / stream.tunnel[i]!)),
        overheadCpuRatio: figure(overheadCpu), scaleCpuRatio: figure(scaleCpu), scaleCpuRatios: streamCpu.tunnel.map((x, i) => figure(x / streamCpu.scaled[i]!)),
        tunnelCpuPerGB: figure(median(streamCpu.tunnel)), scaledCpuPerGB: figure(median(streamCpu.scaled)), streamPlacement: [STREAM_PLACEMENT.client ?? -1, STREAM_PLACEMENT.server ?? -1],
        scalePpsRatio: figure(scalePps), scaledPps: Math.round(median(rate(pps.scaled))), scalePpsCpuRatio: figure(scalePpsCpu), scaledCpuPerPacketUs: figure(median(cpu(pps.scaled)) * 1e6),
      });
    }
    rows.push(['machine load (1 min average, 2 cores)', load(), '']);
    for (const [k, v, n] of rows) console.log(`${k.padEnd(40)} ${v.padEnd(48)} ${n}`);
    console.log(JSON.stringify({ ...figures, loadAverage: +load() }));
  } finally {
    await sets.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
