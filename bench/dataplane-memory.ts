// `npm run bench -- dataplane-memory`: the data plane's own heap at scale, without a kernel.
// A DesiredState of --vips VIPs (default 10,000) x --endpoints (100) drawn from --pods (5,000)
// x --buckets (256) is built first (its heap is the baseline: the model's, not ours); then:
//   plan      the first full plan against an empty kernel, as the agent's first batch makes it
//             (RoutePlanCache, pinning on): its time is one synchronous stretch
//   retained  heap after gc still held by the plan and the cache (what the agent keeps)
//   diff      the first programming's kernel changes (2.56 M route lines at 10k): time, and the
//             heap while they are held (the transient peak)
//   change    one VIP's table changes: incremental plan + diff (median of --changes)
// Issue 12's target for the whole agent is < 500 MB RSS at 10k; this part's is well under 100 MB.
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import type { Backend, DesiredState, IpAddress, VipPlan } from '../src/model/types.js';
import { createDriver, diffKernel, planKernel } from '../src/dataplane/index.js';
import { planInSlices, RoutePlanCache, type KernelPlan, type PlanParams } from '../src/dataplane/plan.js';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { emptyKernelState } from '../src/dataplane/state.js';
import { packRoutes } from '../src/dataplane/vip-routes.js';

const { values } = parseArgs({ options: { vips: { type: 'string' }, endpoints: { type: 'string' }, pods: { type: 'string' }, buckets: { type: 'string' }, changes: { type: 'string' } } });
const VIPS = Number(values.vips ?? 10000);
const ENDPOINTS = Number(values.endpoints ?? 100);
const PODS = Number(values.pods ?? 5000);
const B = Number(values.buckets ?? 256);
const CHANGES = Number(values.changes ?? 20);

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc (npm run bench does)');
function heapMb(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed / 2 ** 20;
}
const rssMb = (): number => process.memoryUsage().rss / 2 ** 20;

/** 10.x.y.z-like pod addresses from 198.51.100.0/24 and 203.0.113.0/24 would run out: use 100.64/10 text. */
function pod(k: number): IpAddress {
  return `100.${64 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}` as IpAddress;
}

function table(seed: number, n: number): { backends: Backend[]; buckets: number[] } {
  const picked = new Set<number>();
  let x = seed * 2654435761;
  while (picked.size < n) {
    x = (x * 1103515245 + 12345) >>> 0;
    picked.add(x % PODS);
  }
  const backends = [...picked].sort((a, b) => a - b).map((k): Backend => ({ address: pod(k), nodeName: `node-${k % 50}`, draining: false }));
  return { backends, buckets: Array.from({ length: B }, (_, i) => (i * 7 + seed) % n) };
}

function vip(i: number, seed = i): VipPlan {
  const t = table(seed, ENDPOINTS);
  const name = `svc-${i}`;
  return {
    vip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` as IpAddress,
    family: 4,
    service: { namespace: 'bench', name, uid: `uid-${name}` },
    pool: 'bench',
    table: { ...t, generation: 0 },
    sourceRanges: [],
    announced: true,
    announceReason: 'ready endpoints',
  };
}

const desired: DesiredState = {
  node: 'tunnel-1',
  isTunnelNode: true,
  mode: 'vxlan-lwt',
  bucketCount: B,
  hashSeed: 1,
  vips: Array.from({ length: VIPS }, (_, i) => vip(i)).sort((a, b) => (a.vip < b.vip ? -1 : 1)),
  announcements: [],
  podSetups: [],
  problems: [],
};

const baseline = heapMb();
const driver = createDriver('vxlan-lwt', { mode: 'vxlan-lwt', vni: 4242, vxlanPort: 4789, mplsLabel: 100 }, () => Promise.resolve(undefined));
const params: PlanParams = { tableBase: 0x4b53000, rulePriority: 3000, pinEstablishedFlows: true };
const cache = new RoutePlanCache(driver, params);
const empty = emptyKernelState();

// As the agent's first full pass does it: every VIP planned in slices that yield, then the
// plan itself, the diff, and the lines made chunk by chunk while written. Each piece is one
// synchronous stretch; the longest is what the event loop waits for at worst.
const stretches: [string, number][] = [];
const stretch = (what: string, ms: number): void => void stretches.push([what, ms]);
let t = performance.now();
let sliceStart = t;
await planInSlices(desired, cache, 50, async () => {
  stretch('a slice of planInSlices', performance.now() - sliceStart);
  await nextTurn();
  sliceStart = performance.now();
}, empty);
stretch('a slice of planInSlices', performance.now() - sliceStart);
const p0 = performance.now();
// Held in a box so it can be let go: the agent keeps only the latest plan.
const first: { plan?: KernelPlan } = { plan: planKernel(desired, driver, params, cache, empty) };
stretch('planKernel after the slices', performance.now() - p0);
const planMs = performance.now() - t;
const retained = heapMb() - baseline;

t = performance.now();
const changes = diffKernel(empty, first.plan!.state, first.plan!.hash, first.plan!.held);
const diffMs = performance.now() - t;
stretch('diffKernel', diffMs);
const lines = changes.ipBatches.reduce((n, b) => n + b.size, 0);
// The text of every line, made chunk by chunk as the writer asks for it (never all held).
t = performance.now();
let longestChunkMs = 0;
let chars = 0;
let peakMb = heapMb() - baseline;
for (const b of changes.ipBatches) {
  let c0 = performance.now();
  for (const chunk of b.chunks(20_000)) {
    for (const l of chunk.lines) chars += l.length;
    longestChunkMs = Math.max(longestChunkMs, performance.now() - c0);
    stretch('making one chunk of 20,000 lines', performance.now() - c0);
    c0 = performance.now();
    if (chunk.first === 0) peakMb = Math.max(peakMb, process.memoryUsage().heapUsed / 2 ** 20 - baseline);
  }
}
const textMs = performance.now() - t;
const withChanges = heapMb() - baseline;
const rss = rssMb();

// A periodic full resync: the kernel read back (every VIP's routes packed anew, as
// route-readback.ts makes them) and planned against, in slices, then diffed.
const readback = new Map([...first.plan!.state.routes].map(([v, r]) => [v, packRoutes(new Map(r))] as const));
const kernelNow = { ...first.plan!.state, routes: readback };
first.plan = undefined;
t = performance.now();
sliceStart = t;
await planInSlices(desired, cache, 50, async () => {
  stretch('a slice of planInSlices (resync)', performance.now() - sliceStart);
  await nextTurn();
  sliceStart = performance.now();
}, kernelNow);
const r0 = performance.now();
const resyncPlan = planKernel(desired, driver, params, cache, kernelNow);
stretch('planKernel against a readback', performance.now() - r0);
const d0 = performance.now();
const resyncChanges = diffKernel(kernelNow, resyncPlan.state, resyncPlan.hash, resyncPlan.held);
stretch('diffKernel against a readback', performance.now() - d0);
const resyncMs = performance.now() - t;
const resyncOps = resyncChanges.operations;

// Single changes: one VIP gets another table, planned incrementally against the last plan.
let previous = resyncPlan.state;
const changeMs: number[] = [];
for (let c = 0; c < CHANGES; c++) {
  const i = (c * 977) % VIPS;
  const at = desired.vips.findIndex((v) => v.service.name === `svc-${i}`);
  const vips = [...desired.vips];
  vips[at] = { ...vip(i, i + 1 + c), vip: desired.vips[at]!.vip };
  const next: DesiredState = { ...desired, vips };
  const c0 = performance.now();
  const p = planKernel(next, driver, params, cache, previous);
  const d = diffKernel(previous, p.state, p.hash, p.held, p.changedVips);
  for (const b of d.ipBatches) for (const chunk of b.chunks(20_000)) void chunk;
  changeMs.push(performance.now() - c0);
  previous = p.state;
  (desired as { vips: readonly VipPlan[] }).vips = vips;
}
changeMs.sort((a, b) => a - b);
const median = changeMs[Math.floor(changeMs.length / 2)] ?? 0;
const after = heapMb() - baseline;

const longest = stretches.reduce((a, b) => (b[1] > a[1] ? b : a));
const rows: [string, string][] = [
  ['VIPs x endpoints x buckets', `${VIPS} x ${ENDPOINTS} x ${B} (pods ${PODS})`],
  ['the DesiredState (baseline, not counted below) (MB)', baseline.toFixed(1)],
  ['first full plan (slices + planKernel)', `${planMs.toFixed(0)} ms`],
  ['longest synchronous stretch', `${longest[1].toFixed(0)} ms (${longest[0]})`],
  ['retained heap after the plan (MB)', retained.toFixed(1)],
  ['diff of the first programming', `${diffMs.toFixed(0)} ms, ${lines} lines`],
  ['line text, made chunk by chunk', `${textMs.toFixed(0)} ms, ${(chars / 2 ** 20).toFixed(0)} MB of text, longest chunk ${longestChunkMs.toFixed(0)} ms`],
  ['heap while the changes are held (MB)', `${withChanges.toFixed(1)} (peak seen ${peakMb.toFixed(1)})`],
  ['process RSS (MB)', rss.toFixed(0)],
  ['full resync against a readback (plan + diff)', `${resyncMs.toFixed(0)} ms, ${resyncOps} operations`],
  [`one VIP changed, plan + diff (median of ${CHANGES})`, `${median.toFixed(2)} ms`],
  ['retained heap after the changes (MB)', after.toFixed(1)],
];
for (const [k, v] of rows) console.log(`${k.padEnd(50)} ${v}`);
for (const [what, ms] of [...stretches].sort((a, b) => b[1] - a[1]).slice(0, 5)) console.log(`  stretch ${ms.toFixed(0).padStart(6)} ms  ${what}`);
console.log(
  JSON.stringify({
    vips: VIPS,
    endpoints: ENDPOINTS,
    buckets: B,
    planMs: Math.round(planMs),
    longestStretchMs: Math.round(longest[1]),
    retainedMb: Math.round(retained * 10) / 10,
    diffMs: Math.round(diffMs),
    lines,
    textMs: Math.round(textMs),
    longestChunkMs: Math.round(longestChunkMs),
    heldChangesMb: Math.round(withChanges * 10) / 10,
    rssMb: Math.round(rss),
    resyncMs: Math.round(resyncMs),
    changeMedianMs: Math.round(median * 100) / 100,
    retainedAfterChangesMb: Math.round(after * 10) / 10,
  }),
);
