// What the Kubernetes side keeps, alone (issue 12, agentRss10kMb): 10,000 Services and
// 10,000 EndpointSlices of 100 endpoints drawn from 5,000 pods (as bench/kube.ts), arriving
// as JSON and kept as the agent's feeds keep them (SnapshotBuilder.ingest), then one
// snapshot built. In this process, without an agent, a kernel or an API server, so the
// figures are the kube layer's only:
//   liveMb:    heap used after a full GC, with the kept objects and the snapshot alive,
//              minus the heap before (the feeds' and the snapshot's share of agentRss10kMb);
//   rawListMb: the EndpointSlice list as parsed objects, all at once (what a client that
//              does not page holds before anything is kept: the transient peak);
//   rawPageMb: one page of 500 of it (what a paging client holds).
// Options: --vips N (default 10000).
import { SnapshotBuilder } from '../src/kube/index.js';
import type { KubernetesObject } from '@kubernetes/client-node';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const VIPS = arg('--vips', 10_000);
const ENDPOINTS = 100;
const PODS = 5_000;
const WORKERS = 50;
const PAGE = 500;
const NS = 'bench';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc (npm run bench -- kube-memory does)');
const heapMb = () => process.memoryUsage().heapUsed / 1024 / 1024;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
}
const podOf = (k: number) => `198.51.${100 + Math.floor(k / 250)}.${(k % 250) + 1}`;

function sliceJson(i: number, next: () => number): string {
  const pods = new Set<number>();
  while (pods.size < ENDPOINTS) pods.add(next() % PODS);
  return JSON.stringify({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `svc-${i}-abcde`, namespace: NS, uid: `slice-uid-${i}`, resourceVersion: String(2000 + i), labels: { 'kubernetes.io/service-name': `svc-${i}`, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    addressType: 'IPv4',
    ports: [{ name: '', port: 8080, protocol: 'TCP' }],
    endpoints: [...pods].map((k) => ({
      addresses: [podOf(k)],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: `worker-${k % WORKERS}`,
      targetRef: { kind: 'Pod', namespace: NS, name: `pod-${k}`, uid: `pod-uid-${k}` },
    })),
  });
}

function serviceJson(i: number): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${i}`, namespace: NS, uid: `svc-uid-${i}`, resourceVersion: String(1000 + i), creationTimestamp: '2026-01-01T00:00:00Z', annotations: { 'bench/vip': `198.18.${i >> 8}.${i & 255}` } },
    spec: { type: 'ClusterIP', selector: { app: `svc-${i}` }, ports: [{ port: 80, protocol: 'TCP' }] },
  });
}

/** The wire text of the lists, pages of PAGE items each (built before measuring). */
function wire(): { services: string[]; slices: string[] } {
  const next = rng(12);
  const page = (items: string[]) => Array.from({ length: Math.ceil(items.length / PAGE) }, (_, p) => `{"items":[${items.slice(p * PAGE, (p + 1) * PAGE).join(',')}]}`);
  return { services: page(Array.from({ length: VIPS }, (_, i) => serviceJson(i))), slices: page(Array.from({ length: VIPS }, (_, i) => sliceJson(i, next))) };
}

/** Keeps every item as the feeds do, a page at a time. */
function keepAll(builder: SnapshotBuilder, pages: readonly string[], kind: 'Service' | 'EndpointSlice'): KubernetesObject[] {
  const kept: KubernetesObject[] = [];
  for (const p of pages) for (const item of (JSON.parse(p) as { items: KubernetesObject[] }).items) kept.push(builder.ingest(kind, item));
  return kept;
}

const { services, slices } = wire();
gc();
const base = heapMb();
const builder = new SnapshotBuilder();
const keptServices = keepAll(builder, services, 'Service');
const keptSlices = keepAll(builder, slices, 'EndpointSlice');
const snapshot = builder.build({ services: keptServices, endpointSlices: keptSlices, nodes: [], localPods: [] });
gc();
const liveMb = heapMb() - base;
if (snapshot.endpointSlices.length !== VIPS) throw new Error(`snapshot has ${snapshot.endpointSlices.length} slices`);

// What a client holds at once before anything is kept: the whole list as objects, or one page.
const before = heapMb();
const whole = slices.flatMap((p) => (JSON.parse(p) as { items: unknown[] }).items);
gc();
const rawListMb = heapMb() - before;
whole.length = 0;
gc();
const beforePage = heapMb();
const page = JSON.parse(slices[0]!) as { items: unknown[] };
gc();
const rawPageMb = heapMb() - beforePage;

const round = (x: number) => Math.round(x * 10) / 10;
console.log(`${VIPS} Services + ${VIPS} EndpointSlices x ${ENDPOINTS} endpoints (${PODS} pods)`);
console.log(`kept by the feeds + snapshot, live after GC   ${round(liveMb)} MB`);
console.log(`EndpointSlice list as parsed objects, whole   ${round(rawListMb)} MB`);
console.log(`EndpointSlice list as parsed objects, 1 page  ${round(rawPageMb)} MB (${page.items.length} items)`);
console.log(JSON.stringify({ vips: VIPS, liveMb: round(liveMb), rawListMb: round(rawListMb), rawPageMb: round(rawPageMb) }));
