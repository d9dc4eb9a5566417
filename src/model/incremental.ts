// The desired state of one node, kept up to date object by object. The informers call
// set*/delete* as events arrive and desiredState() whenever they want a result; only
// what an event can affect is recomputed:
// - a Service change re-resolves VIPs (cheap: no endpoints involved);
// - an EndpointSlice change recomputes its Service's endpoints, and only the bucket
//   tables of that Service's VIPs (tables are memoised per VIP by endpoint set);
// - Node and Pod changes only affect announcement flags and pod set-ups.
// computeDesiredState() is this class used once, so both paths share one implementation.
// A Service's stored tables (stored-table.ts, issue 7) are where its VIPs' tables start from.
import { buildBucketTable } from './maglev.js';
import { changedInputs } from './changed-inputs.js';
import { modeTraits } from './mode-traits.js';
import { parseStoredTables, storedTableProblem, storedTablesKey, tableFromStored, type StoredTables } from './stored-table.js';
import { BackendPool } from './backend-pool.js';
import { collectEndpoints, NO_ENDPOINTS, type ServiceEndpoints } from './endpoints.js';
import { compareIps, hostPrefix } from './ip.js';
import { nodeAvailability, type NodeAvailability } from './node.js';
import { nodeBgp, type NodeBgp } from './peers.js';
import { vipBgp } from './vip-bgp.js';
import { patchSummary, summarise, type VipSummary } from './vip-summary.js';
import type { ModelSettings } from './settings.js';
import type {
  Announcement,
  Backend,
  BucketTable,
  ClusterSnapshot,
  DesiredState,
  EndpointInput,
  EndpointSliceInput,
  IpAddress,
  IpFamily,
  NodeInput,
  PodInput,
  PodSetup,
  Problem,
  ServiceInput,
  VipPlan,
} from './types.js';
import { resolveVips, serviceKey, type ServiceVip, type VipResolution } from './vips.js';

/** One VIP's part of the desired state, valid while its inputs are the same objects. */
interface VipEntry {
  readonly vip: ServiceVip;
  readonly eps: ServiceEndpoints;
  readonly nodeKey: string;
  readonly plan: VipPlan;
  readonly readyCount: number;
  /** The table hashes over this node's endpoints only (mpls). */
  readonly localTable: boolean;
  // Always present (possibly undefined): one object shape keeps the per-VIP loops fast.
  readonly announcement: Announcement | undefined;
  readonly problem: Problem | undefined;
  readonly hasLocal: boolean;
  readonly servesLocally: boolean;
}

/**
 * The assembled per-VIP results for one resolution and one state of this node. Arrays
 * handed out in a DesiredState are never mutated afterwards: a patch copies them.
 */
interface View {
  readonly resolution: VipResolution;
  readonly nodeKey: string;
  /** Index-aligned with resolution.vips. */
  readonly entries: VipEntry[];
  readonly plans: readonly VipPlan[];
  readonly byService: ReadonlyMap<string, readonly number[]>;
  /** Announcements, per-VIP problems, VIPs with local endpoints (vip-summary.ts). */
  readonly summary: VipSummary;
}

/** More VIPs than this changed in one call: the summary is built again rather than patched VIP by VIP. */
const PATCH_LIMIT = 16;

interface CachedTable {
  readonly source: ServiceEndpoints;
  /** The stored-tables annotation the table started from (undefined: none). */
  readonly storedText: string | undefined;
  readonly table: BucketTable;
  readonly readyCount: number;
}

const key = (namespace: string, name: string): string => `${namespace}/${name}`;

export interface IncrementalModelOptions {
  /** Start tables from the Services' stored tables (default true); false: Maglev only (to measure what storing buys). */
  readonly storedTables?: boolean;
  /**
   * What this node's kernel cannot do (probed once at start; src/dataplane/kernel-features.ts):
   * a role or a VIP family it cannot serve is a condition reported as a problem, not work
   * handed to the data plane to fail at and retry.
   */
  readonly kernel?: KernelLimitsInput;
}

/** Each field: why this node cannot (absent: it can). */
export interface KernelLimitsInput {
  /** ...carry tunnel traffic (tunnel modes) or hash and push to its local endpoints (mpls). */
  readonly tunnel?: string;
  /** ...make VIPs local in its pods. */
  readonly serving?: string;
  /** ...carry VIPs of one family as a tunnel node. */
  readonly tunnelFamily?: Partial<Readonly<Record<IpFamily, string>>>;
}

export class IncrementalModel {
  private readonly services = new Map<string, ServiceInput>();
  private readonly slices = new Map<string, EndpointSliceInput>();
  private readonly slicesByService = new Map<string, Set<string>>();
  private readonly nodes = new Map<string, NodeInput>();
  private readonly pods = new Map<string, PodInput>();
  private resolution: VipResolution | undefined;
  private readonly endpoints = new Map<string, ServiceEndpoints>();
  /** Where every Service's Backend objects come from: one per distinct endpoint. */
  private readonly backendPool = new BackendPool();
  /** Stored tables name the same addresses as the endpoints: one string each, not one per table. */
  private readonly knownAddress = (text: string): IpAddress | undefined => this.backendPool.knownAddress(text);
  private readonly tables = new Map<IpAddress, CachedTable>();
  private view: View | undefined;
  /** Services whose endpoints changed since the last desiredState(). */
  private readonly dirty = new Set<string>();
  /** Of those, Services whose stored tables annotation changed (and nothing else of them). */
  private readonly storedChanged = new Set<string>();
  private sortedProblems: { readonly resolution: VipResolution; readonly problems: readonly Problem[] } | undefined;
  /** The last stored-tables annotation parsed (storedTables()). */
  private lastStoredParse: { readonly svcKey: string; readonly text: string; readonly parsed: StoredTables } | undefined;
  /** Stored-tables annotations that did not parse cleanly, per Service, kept while the text is the same. */
  private readonly storedParses = new Map<string, { readonly text: string; readonly parsed: StoredTables }>();
  /** Services whose parse in storedParses has errors: desiredState() reports these, without a look at every Service. */
  private readonly storedErrors = new Set<string>();
  private readonly storedKey: string;
  /** This node's BGP sessions, kept while its Node object is the same value. */
  private peerPlan: { readonly node: NodeInput | undefined; readonly plan: NodeBgp; readonly problems: readonly Problem[] } | undefined;
  /** The snapshot replaceAll() last applied; undefined after a direct set or delete call. */
  private inputs: ClusterSnapshot | undefined;

  constructor(
    private settings: ModelSettings,
    readonly nodeName: string,
    private readonly options: IncrementalModelOptions = {},
  ) {
    this.storedKey = storedTablesKey(settings.annotationKey);
  }

  /**
   * A new configuration applied live (agent/live-config.ts): pools, peers, selectors and
   * attributes are resolved again on the next desiredState(). The fields that shape the
   * tables (annotationKey, buckets, hashSeed, mode) never change here: a change to them
   * needs a restart (config/change.ts), so cached bucket tables stay valid.
   */
  setSettings(settings: ModelSettings): void {
    for (const f of ['annotationKey', 'buckets', 'hashSeed'] as const) {
      if (settings[f] !== this.settings[f]) throw new Error(`model: ${f} cannot change while running`);
    }
    if (settings.encapsulation.mode !== this.settings.encapsulation.mode) throw new Error('model: encapsulation.mode cannot change while running');
    this.settings = settings;
    this.resolution = undefined;
    this.view = undefined;
    this.peerPlan = undefined;
    this.sortedProblems = undefined;
  }

  /**
   * Makes the inputs exactly `snapshot`'s, applying only what differs from the previous
   * call: the agent calls this with every snapshot, whose unchanged objects are the very
   * same values as before (kube/snapshot.ts), so one changed EndpointSlice recomputes one
   * Service's endpoints and the tables of its VIPs only. An object that is equal but not
   * the same value counts as changed (recomputed, same result), never the other way round.
   */
  replaceAll(snapshot: ClusterSnapshot): this {
    const last = this.inputs;
    const svc = last ? changedInputs(last.services, snapshot.services) : this.againstCurrent(snapshot.services, this.services, (s) => key(s.namespace, s.name));
    // A changed Service is removed and added: setService replaces it (and can tell what
    // changed, see there), so only Services that are really gone are deleted.
    const readded = new Set(svc.added.map((s) => key(s.namespace, s.name)));
    for (const s of svc.removed) if (!readded.has(key(s.namespace, s.name))) this.deleteService(s.namespace, s.name);
    for (const s of svc.added) this.setService(s);
    const slices = last ? changedInputs(last.endpointSlices, snapshot.endpointSlices) : this.againstCurrent(snapshot.endpointSlices, this.slices, (s) => key(s.namespace, s.name));
    for (const s of slices.removed) this.deleteEndpointSlice(s.namespace, s.name);
    for (const s of slices.added) this.setEndpointSlice(s);
    const nodes = last ? changedInputs(last.nodes, snapshot.nodes) : this.againstCurrent(snapshot.nodes, this.nodes, (n) => n.name);
    for (const n of nodes.removed) this.deleteNode(n.name);
    for (const n of nodes.added) this.setNode(n);
    const pods = last ? changedInputs(last.localPods, snapshot.localPods) : this.againstCurrent(snapshot.localPods, this.pods, (p) => key(p.namespace, p.name));
    for (const p of pods.removed) this.deletePod(p.namespace, p.name);
    for (const p of pods.added) this.setPod(p);
    // After the set*/delete* calls above, which forget it.
    this.inputs = snapshot;
    return this;
  }

  /** changedInputs against what the model holds now (after direct set or delete calls). */
  private againstCurrent<T>(after: readonly T[], current: ReadonlyMap<string, T>, keyOf: (x: T) => string): { readonly added: readonly T[]; readonly removed: readonly T[] } {
    const seen = new Set<string>();
    const added: T[] = [];
    for (const x of after) {
      const k = keyOf(x);
      seen.add(k);
      if (current.get(k) !== x) added.push(x);
    }
    const removed = [...current].filter(([k]) => !seen.has(k)).map(([, x]) => x);
    return { added, removed };
  }

  setService(s: ServiceInput): void {
    this.inputs = undefined;
    const k = key(s.namespace, s.name);
    const old = this.services.get(k);
    this.services.set(k, s);
    if (old && old.annotations[this.storedKey] !== s.annotations[this.storedKey]) this.forgetStoredParse(k);
    // The leader writes each changed table back to its Service (stored tables), so every
    // endpoint change comes back as a Service change. VIP resolution does not read that
    // annotation: only the Service's own tables are looked at again, not every VIP.
    if (old && this.onlyStoredTablesDiffer(old, s)) {
      this.storedChanged.add(k);
      this.dirty.add(k);
    } else this.resolution = undefined;
  }

  private onlyStoredTablesDiffer(a: ServiceInput, b: ServiceInput): boolean {
    const without = (x: ServiceInput) => JSON.stringify({ ...x, annotations: { ...x.annotations, [this.storedKey]: undefined } });
    return a.annotations[this.storedKey] !== b.annotations[this.storedKey] && without(a) === without(b);
  }

  deleteService(namespace: string, name: string): void {
    this.inputs = undefined;
    this.forgetStoredParse(key(namespace, name));
    if (this.services.delete(key(namespace, name))) this.resolution = undefined;
  }

  /** The annotation text changed or its Service went: parsed again when next needed. */
  private forgetStoredParse(svcKey: string): void {
    if (this.lastStoredParse?.svcKey === svcKey) this.lastStoredParse = undefined;
    this.storedParses.delete(svcKey);
    this.storedErrors.delete(svcKey);
  }

  setEndpointSlice(s: EndpointSliceInput): void {
    this.inputs = undefined;
    const k = key(s.namespace, s.name);
    const old = this.slices.get(k);
    if (old) this.unlinkSlice(k, old);
    this.slices.set(k, s);
    const svc = key(s.namespace, s.serviceName);
    let set = this.slicesByService.get(svc);
    if (!set) this.slicesByService.set(svc, (set = new Set()));
    set.add(k);
    this.endpoints.delete(svc);
    this.dirty.add(svc);
  }

  deleteEndpointSlice(namespace: string, name: string): void {
    this.inputs = undefined;
    const k = key(namespace, name);
    const old = this.slices.get(k);
    if (!old) return;
    this.unlinkSlice(k, old);
    this.slices.delete(k);
  }

  private unlinkSlice(k: string, old: EndpointSliceInput): void {
    const svc = key(old.namespace, old.serviceName);
    this.slicesByService.get(svc)?.delete(k);
    this.endpoints.delete(svc);
    this.dirty.add(svc);
  }

  setNode(n: NodeInput): void {
    this.inputs = undefined;
    this.nodes.set(n.name, n);
  }

  deleteNode(name: string): void {
    this.inputs = undefined;
    this.nodes.delete(name);
  }

  /** Pods on other nodes are ignored: only local pods get set-ups. */
  setPod(p: PodInput): void {
    this.inputs = undefined;
    if (p.nodeName !== undefined && p.nodeName !== this.nodeName) return;
    this.pods.set(key(p.namespace, p.name), p);
  }

  deletePod(namespace: string, name: string): void {
    this.inputs = undefined;
    this.pods.delete(key(namespace, name));
  }

  /** VIPs, problems from Services, and LoadBalancer addresses for status write-back. */
  vipResolution(): VipResolution {
    this.resolution ??= resolveVips(this.settings, [...this.services.values()]);
    return this.resolution;
  }

  private endpointsOf(serviceKey: string): ServiceEndpoints {
    let e = this.endpoints.get(serviceKey);
    if (!e) {
      const keys = this.slicesByService.get(serviceKey);
      e = keys && keys.size > 0 ? collectEndpoints([...keys].map((k) => this.slices.get(k)!), this.nodeName, this.backendPool) : NO_ENDPOINTS;
      this.endpoints.set(serviceKey, e);
    }
    return e;
  }

  /** A Service's stored-tables annotation (none in mpls mode, where every node hashes its own endpoints). */
  private storedText(svcKey: string): string | undefined {
    if (!modeTraits(this.settings.encapsulation.mode).sharedTables || this.options.storedTables === false) return undefined;
    const text = this.services.get(svcKey)?.annotations[this.storedKey];
    if (text === undefined) this.forgetStoredParse(svcKey);
    return text;
  }

  /**
   * A Service's stored tables, parsed from `text`. Parses are not kept (at 10,000 VIPs they
   * were 13 MB of address lists beside the tables built from them): a table is cached with
   * the text it came from, and only the last parse is kept, for a Service's other VIPs.
   * A parse with errors is kept until the text changes, for desiredState() to report it.
   */
  private storedTables(svcKey: string, text: string): StoredTables {
    const last = this.lastStoredParse;
    if (last?.svcKey === svcKey && last.text === text) return last.parsed;
    const parsed = parseStoredTables(text, this.knownAddress);
    this.lastStoredParse = { svcKey, text, parsed };
    if (parsed.errors.length > 0) {
      this.storedParses.set(svcKey, { text, parsed });
      this.storedErrors.add(svcKey);
    } else {
      this.storedParses.delete(svcKey);
      this.storedErrors.delete(svcKey);
    }
    return parsed;
  }

  private tableFor(v: ServiceVip, eps: ServiceEndpoints): CachedTable {
    const svcKey = serviceKey(v.service);
    const text = this.storedText(svcKey);
    const cached = this.tables.get(v.vip);
    if (cached && cached.source === eps && cached.storedText === text) return cached;
    const stored = text === undefined ? undefined : this.storedTables(svcKey, text).tables.get(v.vip);
    let backends: readonly Backend[] = eps.backends[v.family];
    // MPLS reaches only L2 neighbours: each serving node hashes among its own endpoints.
    if (modeTraits(this.settings.encapsulation.mode).hashOver === 'local-endpoints') backends = backends.filter((b) => b.nodeName === this.nodeName);
    const params = { bucketCount: this.settings.buckets, seed: this.settings.hashSeed };
    const table = stored ? tableFromStored(stored, backends, params) : buildBucketTable(backends, params, true);
    const entry = { source: eps, storedText: text, table, readyCount: backends.filter((b) => !b.draining).length };
    this.tables.set(v.vip, entry);
    return entry;
  }

  /**
   * Does the long part of a first desiredState() (every Service's endpoints and every VIP's
   * bucket table) in slices of about `sliceMs`, awaiting `pause()` between them, so a caller
   * with timers to keep (the Lease) can let its event loop run: at 10,000 VIPs the whole is
   * over a second of CPU. desiredState() then finds the tables cached. Inputs may change
   * during a pause: the caches are keyed by the objects they came from, so work done for
   * replaced inputs is simply not used. Returns the longest slice, in ms.
   */
  async prepare(pause: () => Promise<void> = () => new Promise((resolve) => setImmediate(resolve)), sliceMs = 50): Promise<number> {
    let longest = 0;
    let start = performance.now();
    const vips = this.vipResolution().vips;
    for (let i = 0; i < vips.length; i++) {
      const v = vips[i]!;
      this.tableFor(v, this.endpointsOf(serviceKey(v.service)));
      const now = performance.now();
      if (now - start >= sliceMs) {
        longest = Math.max(longest, now - start);
        await pause();
        if (this.resolution?.vips !== vips) return this.prepare(pause, sliceMs).then((rest) => Math.max(longest, rest));
        start = performance.now();
      }
    }
    return Math.max(longest, performance.now() - start);
  }

  desiredState(): DesiredState {
    const settings = this.settings;
    const mode = settings.encapsulation.mode;
    const resolution = this.vipResolution();
    const node = nodeAvailability(settings, this.nodeName, this.nodes.get(this.nodeName));
    const nodeKey = `${node.available}|${node.selected}|${node.reason}`;
    let view = this.view;
    if (!view || view.resolution !== resolution || view.nodeKey !== nodeKey) {
      view = this.view = this.assemble(resolution, node, nodeKey);
    } else if (this.dirty.size > 0) {
      // Only the VIPs of Services whose endpoints changed are looked at again. The plans
      // list is copied once (DesiredStates handed out are never changed: a copy of 10,000
      // references, about 10 us); the derived lists are patched where an entry changed.
      let plans: VipPlan[] | undefined;
      let summary = view.summary;
      let patched = 0;
      for (const svc of this.dirty) {
        for (const i of view.byService.get(svc) ?? []) {
          const v = resolution.vips[i]!;
          const eps = this.endpointsOf(svc);
          const old = view.entries[i]!;
          if (old.eps === eps && !this.storedChanged.has(svc)) continue;
          plans ??= view.plans.slice();
          const entry = this.planVip(v, eps, node, nodeKey, old);
          view.entries[i] = entry;
          plans[i] = entry.plan;
          // Announcements and problems are reused objects when unchanged (see planVip),
          // so identity tells whether the lists derived from all entries change.
          const summaryChanged = entry.announcement !== old.announcement || entry.problem !== old.problem || entry.hasLocal !== old.hasLocal || entry.servesLocally !== old.servesLocally;
          if (summaryChanged && ++patched <= PATCH_LIMIT) summary = patchSummary(summary, i, old, entry);
        }
      }
      if (patched > PATCH_LIMIT) summary = summarise(view.entries);
      if (plans) view = this.view = { ...view, plans, summary };
    }
    this.dirty.clear();
    this.storedChanged.clear();
    if (this.backendPool.needsSweep()) this.backendPool.sweep(this.liveBackendLists());

    const extraProblems: Problem[] = [...view.summary.problems];
    // Only Services whose stored tables had errors (setService and deleteService forget a
    // parse whose text is gone), not every Service with stored tables.
    for (const svc of this.storedErrors) {
      const s = this.services.get(svc);
      const cached = this.storedParses.get(svc);
      if (!s || !cached || s.annotations[this.storedKey] !== cached.text) this.forgetStoredParse(svc);
      else extraProblems.push(storedTableProblem(s, this.storedKey, cached.parsed.errors));
    }
    let bgp: NodeBgp | undefined;
    if (settings.bgp.peers !== undefined) {
      const me = this.nodes.get(this.nodeName);
      if (this.peerPlan?.node !== me || !this.peerPlan) this.peerPlan = { node: me, ...nodeBgp(settings.bgp, this.nodeName, me) };
      bgp = this.peerPlan.plan;
      extraProblems.push(...this.peerPlan.problems);
    }
    if (node.selectorError) {
      extraProblems.push({ ref: { kind: 'Node', name: this.nodeName }, reason: 'InvalidTunnelNodeSelector', message: `tunnelNodeSelector "${settings.tunnelNodeSelector}": ${node.selectorError}` });
    }
    const kernel = this.options.kernel ?? {};
    const servingNodesSend = modeTraits(mode).announcers === 'serving-nodes';
    const sends = servingNodesSend ? view.summary.servingLocally > 0 : node.selected;
    if (sends && kernel.tunnel) {
      const role = servingNodesSend ? 'serves VIPs with local endpoints (mpls mode)' : 'matches tunnelNodeSelector';
      extraProblems.push({ ref: { kind: 'Node', name: this.nodeName }, reason: 'KernelFeatureMissing', message: `node ${this.nodeName} ${role} but cannot carry VIP traffic: ${kernel.tunnel}. Its VIPs are neither announced nor programmed here.` });
    }
    let podSetups = this.podSetups(view, extraProblems);
    if (kernel.serving && podSetups.length > 0) {
      extraProblems.push({ ref: { kind: 'Node', name: this.nodeName }, reason: 'KernelFeatureMissing', message: `${podSetups.length} pod(s) on node ${this.nodeName} serve VIPs, but no VIP can be made local in them: ${kernel.serving}` });
      podSetups = [];
    }
    if (this.sortedProblems?.resolution !== resolution) this.sortedProblems = { resolution, problems: sortProblems(resolution.problems) };
    return {
      node: this.nodeName,
      isTunnelNode: sends && !kernel.tunnel,
      mode,
      bucketCount: settings.buckets,
      hashSeed: settings.hashSeed,
      vips: view.plans,
      // resolution.vips is sorted by address, and host prefixes sort the same way.
      announcements: view.summary.announcements,
      podSetups,
      problems: extraProblems.length === 0 ? this.sortedProblems.problems : sortProblems([...resolution.problems, ...extraProblems]),
      ...(node.available ? {} : { maintenance: node.reason }),
      ...(bgp ? { bgp } : {}),
    };
  }

  /** Every backend list the model hands out comes from these (tables hold the same objects). */
  private *liveBackendLists(): Iterable<readonly Backend[]> {
    for (const eps of this.endpoints.values()) {
      yield eps.backends[4];
      yield eps.backends[6];
    }
  }

  private assemble(resolution: VipResolution, node: NodeAvailability, nodeKey: string): View {
    const entries: VipEntry[] = [];
    const byService = new Map<string, number[]>();
    const live = new Set<IpAddress>();
    resolution.vips.forEach((v, i) => {
      const svc = serviceKey(v.service);
      const list = byService.get(svc);
      if (list) list.push(i);
      else byService.set(svc, [i]);
      live.add(v.vip);
      entries.push(this.planVip(v, this.endpointsOf(svc), node, nodeKey));
    });
    for (const vip of this.tables.keys()) if (!live.has(vip)) this.tables.delete(vip);
    return { resolution, nodeKey, entries, plans: entries.map((e) => e.plan), byService, summary: summarise(entries) };
  }

  /** Pod set-ups from the VIPs with endpoints on this node; hostNetwork pods become problems. */
  private podSetups(view: View, problems: Problem[]): PodSetup[] {
    const podVips = new Map<string, { pod: PodInput; podIp: IpAddress; vips: IpAddress[] }>();
    const badPods = new Set<PodInput>();
    for (const i of view.summary.withLocal) {
      const entry = view.entries[i]!;
      const vip = entry.vip;
      for (const e of entry.eps.local) {
        if ((e.address.includes(':') ? 6 : 4) !== vip.family) continue;
        const pod = this.localPodFor(e);
        if (!pod) continue;
        if (pod.hostNetwork) {
          badPods.add(pod);
          continue;
        }
        const k = key(pod.namespace, pod.name);
        const found = podVips.get(k) ?? { pod, podIp: pod.podIps[0] ?? e.address, vips: [] };
        if (!found.vips.includes(vip.vip)) found.vips.push(vip.vip);
        podVips.set(k, found);
      }
    }
    for (const pod of badPods) {
      problems.push({
        ref: { kind: 'Pod', namespace: pod.namespace, name: pod.name, uid: pod.uid },
        reason: 'HostNetworkEndpoint',
        message: `spec.hostNetwork: pod ${pod.namespace}/${pod.name} uses the node's network namespace, so a VIP cannot be made local to it; it gets no tunnel set-up`,
      });
    }
    return [...podVips.values()]
      .map(({ pod, podIp, vips }) => ({
        pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
        podIp,
        podIps: [...pod.podIps],
        containerIds: [...pod.containerIds].sort(),
        vips: [...vips].sort(compareIps),
        mode: this.settings.encapsulation.mode,
      }))
      .sort((a, b) => cmp(key(a.pod.namespace, a.pod.name), key(b.pod.namespace, b.pod.name)));
  }

  /** `previous`: the entry this one replaces for the same ServiceVip and node state, whose
   * announcement and problem (which depend on nothing else) are reused when still due. */
  private planVip(v: ServiceVip, eps: ServiceEndpoints, node: NodeAvailability, nodeKey: string, previous?: VipEntry): VipEntry {
    const settings = this.settings;
    const mpls = modeTraits(settings.encapsulation.mode).hashOver === 'local-endpoints'; // (mpls)
    const { table, readyCount } = this.tableFor(v, eps);
    let announced = false;
    let reason: string;
    let problem: Problem | undefined;
    // Set whatever the announcement: a tunnel node in maintenance keeps forwarding, and must
    // not be handed a VIP its kernel cannot carry either.
    const kernel = this.options.kernel;
    const kernelMissing = kernel?.tunnel ? undefined : kernel?.tunnelFamily?.[v.family];
    if (readyCount === 0) {
      const otherFamily = v.family === 4 ? 6 : 4;
      if (!mpls && eps.ready[otherFamily] > 0) {
        problem = serviceProblem(v, 'VipFamilyMismatch', `${v.vip} is IPv${v.family} but the Service has only IPv${otherFamily} endpoints; a VIP is tunnelled to endpoints of its own family`);
      }
      const noSelector = this.services.get(serviceKey(v.service))?.hasSelector === false;
      reason = `no ready ${mpls ? 'local ' : ''}endpoints${noSelector ? ' (Service has no selector)' : ''}`;
    } else if (!node.available) {
      reason = node.reason;
    } else if (!mpls && !node.selected) {
      reason = `not a tunnel node (tunnelNodeSelector ${settings.tunnelNodeSelector})`;
    } else if (kernel?.tunnel) {
      reason = `this node's kernel cannot carry VIP traffic (see kst status, kernel)`;
    } else if (kernelMissing) {
      reason = `this node's kernel cannot carry IPv${v.family} VIPs (see kst status, kernel)`;
      problem = serviceProblem(v, 'KernelFeatureMissing', `${v.vip} is neither announced nor programmed on node ${this.nodeName}: ${kernelMissing}`);
    } else {
      announced = true;
      reason = mpls ? 'ready local endpoints' : 'ready endpoints';
    }
    const attrs = vipBgp(settings.annotationKey, v.pool, this.services.get(serviceKey(v.service))?.annotations ?? {}, settings.bgp.peers ?? []);
    if (!attrs.ok) {
      // Never a half-applied set: the VIP is not announced until its BGP settings are valid.
      announced = false;
      reason = 'invalid BGP settings (see the Service\'s Events)';
      problem = serviceProblem(v, 'InvalidBgpAttributes', `${v.vip} is not announced: ${attrs.error}`);
    }
    const plan: VipPlan = { vip: v.vip, family: v.family, service: v.service, pool: v.pool.name, table, sourceRanges: v.sourceRanges, announced, announceReason: reason, ...(kernelMissing ? { kernelMissing } : {}) };
    let announcement: Announcement | undefined;
    if (problem && previous?.problem?.message === problem.message) problem = previous.problem;
    if (announced && previous?.announcement) announcement = previous.announcement;
    else if (announced) {
      announcement = {
        prefix: hostPrefix(v.vip),
        vip: v.vip,
        family: v.family,
        communities: attrs.ok ? attrs.bgp.communities : [],
        largeCommunities: attrs.ok ? attrs.bgp.largeCommunities : [],
        ...(attrs.ok && attrs.bgp.localPref !== undefined ? { localPref: attrs.bgp.localPref } : {}),
        ...(attrs.ok && attrs.bgp.peers ? { peers: attrs.bgp.peers } : {}),
        service: v.service,
      };
    }
    return { vip: v, eps, nodeKey, plan, readyCount, localTable: mpls, announcement, problem, hasLocal: eps.local.length > 0, servesLocally: mpls && readyCount > 0 };
  }

  private localPodFor(e: EndpointInput): PodInput | undefined {
    if (e.pod) {
      const p = this.pods.get(key(e.pod.namespace, e.pod.name));
      if (p) return p;
    }
    for (const p of this.pods.values()) if (p.podIps.includes(e.address)) return p;
    return undefined;
  }
}

function serviceProblem(v: ServiceVip, reason: string, message: string): Problem {
  return { ref: { kind: 'Service', namespace: v.service.namespace, name: v.service.name, uid: v.service.uid }, reason, message };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorted by object, then reason and message; exact duplicates removed. */
export function sortProblems(problems: readonly Problem[]): Problem[] {
  const k = (p: Problem) => `${p.ref.kind}\u0000${p.ref.namespace ?? ''}\u0000${p.ref.name}\u0000${p.reason}\u0000${p.message}`;
  const seen = new Map<string, Problem>();
  for (const p of problems) if (!seen.has(k(p))) seen.set(k(p), p);
  return [...seen.entries()].sort((a, b) => cmp(a[0], b[0])).map(([, p]) => p);
}

/** The desired state of `nodeName`, computed from scratch. Pure: same inputs, same output. */
export function computeDesiredState(settings: ModelSettings, snapshot: ClusterSnapshot, nodeName: string): DesiredState {
  return new IncrementalModel(settings, nodeName).replaceAll(snapshot).desiredState();
}
