// PodNetworks: the serving-node reconciler. `set(setups)` receives the whole desired set
// (every local pod that serves VIPs); each pass locates the pods' namespaces, reads back
// what the project has there, applies only the difference (one `ip -batch` per
// namespace, plus one `ip -f mpls -batch` in MPLS mode) and undoes everything for pods
// that left the set. Failures are retried with backoff, reported as Events on the Pod and
// as metrics, and never escape the loop (system/reconcile-loop.ts, which owns the retry:
// each pass says when its earliest pending pod is due). The first pass after start, and each periodic
// resync, also sweeps orphans: our objects in pod namespaces no pod in the set claims
// (left by an agent that stopped before it could remove them; orphans.ts).
import type { PodSetup } from '../model/types.js';
import { modeTraits } from '../model/mode-traits.js';
import { silentLogger, type EventSink, type Logger, type ObjectRef } from '../observe/index.js';
import { backoffDelay, CommandError, ReconcileLoop, runCommand, type BackoffOptions, type CommandRunner } from '../system/index.js';
import { NamespaceFinder, type PodNamespace, type ScannedNamespace } from './discovery.js';
import { readPodKernelState, runIp, type NetnsHandle } from './kernel-state.js';
import { podnetDiscoverySeconds, podnetErrors, podnetOrphanSweeps, podnetOrphansRemoved, podnetSetups } from './metrics.js';
import { podModes, type EncapSettings } from './modes/index.js';
import { NO_OBJECTS, type PodObjects } from './objects.js';
import { hasMarkers, isPodNamespace, orphanRemoval, parsePodRanges } from './orphans.js';
import { planPod, sysctlPathsToRead, type PodPlan, type SysctlWrite } from './plan.js';
import { stat } from 'node:fs/promises';

export type PodNetState = 'ready' | 'pending' | 'refused';

export interface PodNetStatus {
  readonly pod: PodSetup['pod'];
  readonly state: PodNetState;
  /** Event reason of the last failure (pending, refused). */
  readonly reason?: string;
  readonly message?: string;
  readonly netns?: string;
  readonly attempts: number;
}

export interface PassReport {
  /** Every pod of the set is done (ready); the loop contract of every adapter. */
  readonly ok: boolean;
  /** The pods that are not done, with why (absent when ok). */
  readonly error?: string;
  /** When the earliest pending pod is due again (the loop retries then). */
  readonly retryInMs?: number;
  /** Kernel operations applied in this pass (batch lines and settings written). */
  readonly ops: number;
  readonly pods: readonly PodNetStatus[];
  /** Present when the pass swept for orphans: the namespaces cleaned and what went. */
  readonly orphans?: readonly SweptNamespace[];
}

export interface SweptNamespace {
  readonly netns: string;
  readonly removed: readonly string[];
}

export interface PodNetworksOptions {
  readonly encap: EncapSettings;
  readonly run?: CommandRunner;
  readonly finder?: NamespaceFinder;
  readonly events?: EventSink;
  readonly logger?: Logger;
  /** Backoff of each failed pod (the one backoff, system/backoff.ts): initialMs up to maxMs. */
  readonly retry?: BackoffOptions;
  /** Periodic full pass that repairs drift and sweeps orphans (start()). */
  readonly resyncMs?: number;
  /**
   * Where this node's pods live, for the orphan sweep: CIDRs (the Node's spec.podCIDRs) or
   * single addresses (the local pods' IPs), asked at each sweep. Only namespaces holding
   * such an address are swept; without it (or while it returns nothing) there is no sweep.
   */
  readonly podRanges?: () => Iterable<string>;
  readonly now?: () => number;
}

interface Applied {
  readonly pod: PodSetup['pod'];
  readonly ns: PodNamespace;
  /** Original values of settings the project changed on devices it does not own. */
  readonly originals: Map<string, string>;
}

interface Failure {
  readonly reason: string;
  readonly message: string;
  readonly attempts: number;
  readonly retryAt: number;
  /** No retry until the pod's setup changes (hostNetwork). */
  readonly refused: boolean;
}

class PodNetError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly forgetNamespace = false,
  ) {
    super(message);
  }
}

const setupKey = (s: PodSetup) => JSON.stringify([s.podIp, [...(s.podIps ?? [])].sort(), [...s.containerIds].sort(), [...s.vips].sort(), s.mode]);
const podRef = (pod: PodSetup['pod']): ObjectRef => ({ kind: 'Pod', namespace: pod.namespace, name: pod.name, uid: pod.uid });
const podName = (pod: PodSetup['pod']) => `${pod.namespace}/${pod.name}`;

export class PodNetworks {
  private readonly run: CommandRunner;
  private readonly finder: NamespaceFinder;
  private readonly logger: Logger;
  private readonly retry: BackoffOptions;
  private readonly loop: ReconcileLoop<void, PassReport>;
  private readonly now: () => number;
  private desired = new Map<string, PodSetup>();
  private readonly applied = new Map<string, Applied>();
  private readonly failures = new Map<string, Failure>();
  private readonly lastEvent = new Map<string, string>();
  private readonly refusedVips = new Map<string, string>();
  /** A sweep is owed: from construction (a restart) and from each periodic resync. */
  private sweepDue = true;
  /** set() has been called: before that, every namespace would look unclaimed. */
  private haveDesired = false;
  private sweepOffLogged = false;
  private invalidRangesLogged = '';
  /** Kernel operations applied since construction; 0 added by a pass that changed nothing. */
  opsTotal = 0;

  constructor(private readonly opts: PodNetworksOptions) {
    this.run = opts.run ?? runCommand;
    this.finder = opts.finder ?? new NamespaceFinder({ run: this.run, onScan: (s) => podnetDiscoverySeconds.observe(s) });
    this.logger = (opts.logger ?? silentLogger()).child({ component: 'podnet' });
    this.retry = opts.retry ?? { initialMs: 1000, maxMs: 60000 };
    this.now = opts.now ?? Date.now;
    const resyncMs = opts.resyncMs ?? 30000;
    this.loop = new ReconcileLoop<void, PassReport>({
      name: 'podnet',
      pass: async (_none, ctx) => {
        if (ctx.full) this.sweepDue = true;
        return this.pass(resyncMs);
      },
      failed: (error) => ({ ok: false, error, ops: 0, pods: this.status() }),
      resyncMs,
      backoff: this.retry,
      // One pod that cannot be set up is that pod's problem (Event, status): it must not
      // make the agent look dead.
      liveness: 'progress',
      onListenerError: (err) => this.logger.error('a podnet result listener threw', { error: String(err) }),
    });
  }

  /** The loop's health and results. */
  get reconcileLoop(): ReconcileLoop<void, PassReport> {
    return this.loop;
  }

  /**
   * Replaces the desired set and converges once. Pods whose setup changed are tried at
   * once even if they were backing off. Never rejects; `ok` is false while a pod is not
   * done (pending or refused), and `error` names them.
   */
  set(setups: readonly PodSetup[]): Promise<PassReport> {
    const next = new Map(setups.map((s) => [s.pod.uid, s]));
    for (const [uid, s] of next) {
      const before = this.desired.get(uid);
      if (!before || setupKey(before) !== setupKey(s)) this.failures.delete(uid);
    }
    // A pod that left the set is cleaned up now, not when its backoff would have ended.
    for (const uid of this.desired.keys()) if (!next.has(uid)) this.failures.delete(uid);
    for (const key of this.refusedVips.keys()) if (!next.has(key.split(' ')[0]!)) this.refusedVips.delete(key);
    this.desired = next;
    this.haveDesired = true;
    return this.loop.request();
  }

  /** A full pass now (drift repair and an orphan sweep); pods backing off wait for their turn. */
  resync(): Promise<PassReport> {
    return this.loop.resync();
  }

  /** Starts the loop: passes run from here on; the first one (and each periodic resync) sweeps orphans. */
  start(): void {
    this.loop.start();
  }

  /** Stops the timers and waits for a running pass; leaves the pods as they are (fail static). */
  async stop(): Promise<void> {
    await this.loop.stop();
  }

  status(): PodNetStatus[] {
    return [...this.desired.values()].map((s) => this.statusOf(s));
  }

  private statusOf(s: PodSetup): PodNetStatus {
    const f = this.failures.get(s.pod.uid);
    const a = this.applied.get(s.pod.uid);
    return {
      pod: s.pod,
      state: f ? (f.refused ? 'refused' : 'pending') : 'ready',
      ...(f ? { reason: f.reason, message: f.message } : {}),
      ...(a ? { netns: a.ns.path } : {}),
      attempts: f?.attempts ?? 0,
    };
  }

  private due(uid: string): boolean {
    const f = this.failures.get(uid);
    return !f || (!f.refused && f.retryAt <= this.now());
  }

  private async pass(resyncMs: number): Promise<PassReport> {
    let ops = 0;
    const scansBefore = this.finder.scans;
    const wanted = [...this.desired.values()].map((s) => ({ setup: s, objects: this.supported(s) }));

    // Pods with VIPs to make local (or with something of ours to take away).
    const toLocate = wanted.filter((w) => this.due(w.setup.pod.uid) && (w.objects.vips.length > 0 || this.applied.has(w.setup.pod.uid)));
    const located = toLocate.length
      ? await this.finder.locate(toLocate.map((w) => ({ uid: w.setup.pod.uid, podIp: w.setup.podIp, containerIds: w.setup.containerIds })))
      : new Map();

    for (const { setup, objects } of toLocate) {
      const uid = setup.pod.uid;
      const where = located.get(uid);
      try {
        if (!where || where.kind === 'not-found') throw new PodNetError('PodNetnsNotFound', `no network namespace on this node holds pod IP ${setup.podIp} (yet)`);
        if (where.kind === 'ambiguous') throw new PodNetError('PodNetnsAmbiguous', `pod IP ${setup.podIp} is in several network namespaces (${where.paths.join(', ')}); waiting for one to go away`);
        if (where.kind === 'host-network') {
          this.fail(setup.pod, new PodNetError('HostNetworkPod', `pod IP ${setup.podIp} is the node's own address (hostNetwork); the node's namespace is never changed for a VIP`), true);
          continue;
        }
        const prev = this.applied.get(uid);
        if (prev && prev.ns.inode !== where.ns.inode) {
          // Restarted sandbox: the old namespace is normally gone; if not, take our objects out.
          this.logger.info('pod namespace changed', { pod: podName(setup.pod), from: prev.ns.path, to: where.ns.path });
          ops += await this.removeFrom(prev).catch(() => 0);
          this.applied.delete(uid);
        }
        const originals = this.applied.get(uid)?.originals ?? new Map<string, string>();
        const desiredObjects = objects.vips.length ? podModes[setup.mode].objects({ setup: objects, podIf: where.ns.podIf, encap: this.opts.encap }) : NO_OBJECTS;
        // Remembered before the change: a half-applied namespace must still be cleaned up.
        if (desiredObjects !== NO_OBJECTS) this.applied.set(uid, { pod: setup.pod, ns: where.ns, originals });
        const applied = await this.converge(where.ns, desiredObjects, originals, setup.podIp, modeTraits(objects.mode).podMplsRoute);
        ops += applied.ops;
        if (desiredObjects === NO_OBJECTS) {
          this.applied.delete(uid);
        } else {
          if (applied.ops > 0) {
            this.event(setup.pod, 'Normal', 'TunnelVipsConfigured', `VIP${objects.vips.length > 1 ? 's' : ''} ${objects.vips.join(', ')} local in the pod (${setup.mode})`);
          }
        }
        this.failures.delete(uid);
      } catch (err) {
        this.fail(setup.pod, err);
      }
    }

    // Pods that left the desired set: take everything of ours out of their namespace.
    for (const [uid, prev] of this.applied) {
      if (this.desired.has(uid) || !this.due(uid)) continue;
      try {
        ops += await this.removeFrom(prev);
        this.applied.delete(uid);
        this.finder.forget(uid);
        this.failures.delete(uid);
        this.lastEvent.delete(uid);
      } catch (err) {
        this.fail(prev.pod, err);
      }
    }
    for (const uid of this.failures.keys()) if (!this.desired.has(uid) && !this.applied.has(uid)) this.failures.delete(uid);

    const sweep = this.sweepDue && this.haveDesired ? await this.sweepOrphans(scansBefore) : undefined;
    if (sweep) ops += sweep.ops;

    this.opsTotal += ops;
    this.updateGauge();
    const pods = this.status();
    const notDone = pods.filter((p) => p.state !== 'ready');
    // The loop owns the retry: when the earliest pending pod is due (a pod that is only
    // refused waits for its setup to change; look again at the next resync).
    const next = Math.min(...[...this.failures.values()].filter((f) => !f.refused).map((f) => f.retryAt));
    const retryInMs = Number.isFinite(next) ? Math.max(0, next - this.now()) : resyncMs;
    const base = { ops, pods, ...(sweep ? { orphans: sweep.swept } : {}) };
    if (notDone.length === 0) return { ok: true, ...base };
    const named = notDone.slice(0, 5).map((p) => `${podName(p.pod)} ${p.state} (${p.reason ?? 'unknown'}: ${p.message ?? ''})`);
    const error = `${notDone.length} pod${notDone.length > 1 ? 's' : ''} not done: ${named.join('; ')}${notDone.length > 5 ? ` and ${notDone.length - 5} more` : ''}`;
    return { ok: false, error, retryInMs, ...base };
  }

  /**
   * Removes our objects from pod namespaces that nothing in the desired set claims. Reuses
   * this pass's discovery scan when there was one; only a namespace that holds our markers
   * and is one of this node's pods is read again and changed. Undefined when no sweep ran.
   */
  private async sweepOrphans(sinceScan: number): Promise<{ ops: number; swept: SweptNamespace[] } | undefined> {
    const { ranges, invalid } = parsePodRanges(this.opts.podRanges?.() ?? []);
    if (invalid.join() !== this.invalidRangesLogged) this.logger.warn('orphan sweep: ignoring pod ranges that are neither an address nor a CIDR', { invalid });
    this.invalidRangesLogged = invalid.join();
    if (!ranges.length) {
      if (!this.sweepOffLogged) this.logger.info(`orphan sweep off: ${this.opts.podRanges ? "the node's pod ranges are not known yet" : 'no pod ranges configured'}`);
      this.sweepOffLogged = true;
      return undefined;
    }
    this.sweepDue = false;
    const survey = await this.finder.survey(sinceScan);
    const candidates = survey.namespaces.filter((n) => hasMarkers(n.links) && isPodNamespace(n.links, ranges) && !this.claimed(n));
    const swept: SweptNamespace[] = [];
    let ops = 0;
    for (const n of candidates) {
      try {
        if (!(await this.stillThere(n.handle))) continue;
        const actual = await readPodKernelState(this.run, n.handle, { sysctlPaths: [], mpls: false });
        // Read again and checked again: the desired set may have changed since the scan.
        const fresh = { ...n, links: actual.links, addresses: new Map(actual.links.flatMap((l) => l.addresses.map((a) => [a.address, l.name] as const))) };
        if (!isPodNamespace(actual.links, ranges) || this.claimed(fresh)) continue;
        const removal = orphanRemoval(actual);
        if (removal.plan.ops === 0) continue;
        await this.apply(n.handle, removal.plan);
        ops += removal.plan.ops;
        swept.push({ netns: n.handle.path, removed: removal.removed });
        podnetOrphansRemoved.inc({ kind: 'namespace' });
        for (const [kind, count] of Object.entries(removal.counts)) if (count) podnetOrphansRemoved.inc({ kind }, count);
        this.logger.info('removed orphaned pod network objects', { netns: n.handle.path, removed: removal.removed, ops: removal.plan.ops });
      } catch (err) {
        podnetErrors.inc({ reason: 'OrphanSweepFailed' });
        this.logger.warn('orphan sweep failed in a namespace; the next periodic sweep tries again', { netns: n.handle.path, error: err instanceof Error ? err.message : String(err) });
      }
    }
    podnetOrphanSweeps.inc();
    this.logger.debug('orphan sweep done', { namespaces: survey.namespaces.length, withMarkers: candidates.length, cleaned: swept.length });
    return { ops, swept };
  }

  /** A namespace some pod of the desired set owns (by inode or by holding its pod IP). */
  private claimed(n: ScannedNamespace): boolean {
    for (const a of this.applied.values()) if (a.ns.inode === n.handle.inode) return true;
    for (const s of this.desired.values()) if (n.addresses.has(s.podIp)) return true;
    return false;
  }

  /** The setup without the VIPs its mode cannot serve (reported once per pod and VIP). */
  private supported(setup: PodSetup): PodSetup {
    const driver = podModes[setup.mode];
    const vips = setup.vips.filter((vip) => {
      const why = driver.unsupported(vip, setup);
      if (!why) return true;
      const key = `${setup.pod.uid} ${vip} ${setup.mode}`;
      if (!this.refusedVips.has(key)) {
        this.refusedVips.set(key, why);
        podnetErrors.inc({ reason: 'UnsupportedVip' });
        this.opts.events?.warning(podRef(setup.pod), 'UnsupportedVip', `VIP ${vip} is not made local: ${why}`);
      }
      return false;
    });
    return vips.length === setup.vips.length ? setup : { ...setup, vips };
  }

  /** Removes everything of the project's from a namespace, if it still exists. */
  private async removeFrom(prev: Applied): Promise<number> {
    if (!(await this.stillThere(prev.ns))) return 0; // gone with the pod: nothing left to undo
    const res = await this.converge(prev.ns, NO_OBJECTS, prev.originals, undefined, true);
    return res.ops;
  }

  private async stillThere(ns: NetnsHandle): Promise<boolean> {
    try {
      return (await stat(ns.path)).ino === ns.inode;
    } catch {
      return false;
    }
  }

  /** Read back, diff, apply. Throws PodNetError with an Event reason. */
  private async converge(ns: PodNamespace, desired: PodObjects, originals: Map<string, string>, podIp: string | undefined, mpls: boolean): Promise<PodPlan> {
    let plan: PodPlan;
    try {
      const actual = await readPodKernelState(this.run, ns, {
        sysctlPaths: sysctlPathsToRead(desired, originals),
        mpls: mpls || desired.mplsRoutes.length > 0 || [...originals.keys()].some((k) => k.startsWith('net/mpls/')),
      });
      // Revalidate discovery on use: the namespace must still hold the pod IP.
      if (podIp !== undefined && !actual.links.some((l) => l.addresses.some((a) => a.address === podIp))) {
        throw new PodNetError('PodNetnsChanged', `pod IP ${podIp} is no longer in ${ns.path}; looking again`, true);
      }
      plan = planPod(desired, actual, originals);
      await this.apply(ns, plan);
    } catch (err) {
      if (err instanceof PodNetError) throw err;
      if (!(await this.stillThere(ns))) throw new PodNetError('PodGone', `the pod's network namespace ${ns.path} went away during the change`, true);
      const detail = err instanceof CommandError || err instanceof Error ? err.message : String(err);
      throw new PodNetError('KernelRefused', `changing ${ns.path} failed: ${detail}`);
    }
    for (const [path, value] of plan.originalsToRecord) originals.set(path, value);
    for (const path of plan.originalsRestored) originals.delete(path);
    return plan;
  }

  private async apply(ns: NetnsHandle, plan: PodPlan): Promise<void> {
    await this.writeSysctls(ns, plan.sysctlsBefore);
    await this.batch(ns, ['-batch', '-'], plan.ipBatch);
    await this.batch(ns, ['-f', 'mpls', '-batch', '-'], plan.mplsBatch);
    await this.writeSysctls(ns, plan.sysctlsAfter);
    if (plan.ops) this.logger.debug('pod namespace changed', { netns: ns.path, ops: plan.ops, batch: plan.ipBatch, mpls: plan.mplsBatch });
  }

  /** One `ip -batch`; a refusal names the line the kernel refused. */
  private async batch(ns: NetnsHandle, args: string[], lines: readonly string[]): Promise<void> {
    if (!lines.length) return;
    const res = await runIp(this.run, ns, args, { input: `${lines.join('\n')}\n`, allowFailure: true, timeoutMs: 30000 });
    if (res.code === 0) return;
    const failed = /Command failed -:(\d+)/.exec(res.stderr);
    const line = failed ? lines[Number(failed[1]) - 1] : undefined;
    const why = res.stderr.split('\n').filter((l) => l && !l.startsWith('Command failed')).join('; ') || `exit ${res.code}`;
    const ip = ['ip', ...args.slice(0, -2)].join(' ');
    throw new Error(line ? `\`${ip} ${line}\`: ${why}` : `${ip} -batch: ${why}`);
  }

  private async writeSysctls(ns: NetnsHandle, writes: readonly SysctlWrite[]): Promise<void> {
    if (!writes.length) return;
    // Slash-separated keys: sysctl takes them as paths, so dots in interface names are safe.
    await this.run('sysctl', ['-q', '-w', ...writes.map((w) => `${w.path}=${w.value}`)], { netnsPath: ns.path, timeoutMs: 10000 });
  }

  private fail(pod: PodSetup['pod'], err: unknown, refused = false): void {
    const e = err instanceof PodNetError ? err : new PodNetError('InternalError', String(err));
    if (e.forgetNamespace) this.finder.forget(pod.uid);
    const attempts = (this.failures.get(pod.uid)?.attempts ?? 0) + 1;
    const delay = backoffDelay(this.retry, attempts - 1);
    this.failures.set(pod.uid, { reason: e.reason, message: e.message, attempts, retryAt: this.now() + delay, refused });
    podnetErrors.inc({ reason: e.reason });
    this.logger.warn('pod network set-up failed', { pod: podName(pod), reason: e.reason, message: e.message, attempts, retryInMs: refused ? undefined : delay });
    this.event(pod, 'Warning', e.reason, e.message);
  }

  /** One Event per change of what happened to a pod, not one per retry. */
  private event(pod: PodSetup['pod'], type: 'Normal' | 'Warning', reason: string, message: string): void {
    const key = `${type} ${reason} ${message}`;
    if (this.lastEvent.get(pod.uid) === key) return;
    this.lastEvent.set(pod.uid, key);
    if (type === 'Warning') this.opts.events?.warning(podRef(pod), reason, message);
    else this.opts.events?.normal(podRef(pod), reason, message);
  }

  private updateGauge(): void {
    const counts: Record<PodNetState, number> = { ready: 0, pending: 0, refused: 0 };
    for (const s of this.status()) counts[s.state] += 1;
    for (const [state, n] of Object.entries(counts)) podnetSetups.set({ state }, n);
  }
}
