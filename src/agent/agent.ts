// The daemon: one loop that turns cluster snapshots into a desired state and hands it to
// the adapters in the order that never black-holes traffic (DESIGN.md "Fail static"):
//
//   1. withdraw announcements that are no longer wanted (routers move traffic away),
//   2. program the data plane and pod namespaces (additions and removals),
//   3. announce what is now ready, but only if step 2 succeeded.
//
// On shutdown: withdraw everything, wait the grace time, BFD AdminDown, then stop the
// processes; the kernel data path stays (only `kst cleanup` removes it).
//
// One owner per retry: each adapter runs its own reconcile loop (system/reconcile-loop.ts)
// and retries its own failures. The agent never re-runs a converge because a step failed;
// it listens to the data plane's results instead (held-back announcements go out when a
// retry succeeds; repeated failures drain the node). The converge itself runs on the same
// loop primitive: coalesced, one at a time, with a periodic pass for timers' sake.
import { compareIps } from '../model/index.js';
import type { ClusterSnapshot, DesiredState, Announcement, IncrementalModel, IpAddress, ModelSettings, NodeBgp, Problem, VipPlan } from '../model/index.js';
import type { Logger, EventSink } from '../observe/index.js';
import { ReconcileLoop, type PassOutcome } from '../system/index.js';

/** The adapter contract: declarative set(desired), answered by the pass that includes it. */
export interface Adapter<D, R extends PassOutcome = PassOutcome> {
  set(desired: D): Promise<R>;
}

/** What the LoadBalancer status writer is given: the Services and the addresses to publish. */
export interface LoadBalancerStatusInput {
  readonly snapshot: ClusterSnapshot;
  readonly ingress: ReadonlyMap<string, readonly string[]>;
}

/** The parts the agent drives; each is an area's declarative adapter. */
export interface AgentParts {
  readonly model: IncrementalModel;
  readonly events: EventSink;
  readonly logger: Logger;
  /** Tunnel-node data plane (absent on nodes that never tunnel, e.g. tests). */
  readonly dataplane?: Adapter<DesiredState> & {
    /** Every pass's result, the loop's own retries included. */
    onResult?(listener: (r: PassOutcome) => void): () => void;
  };
  readonly podnet?: Adapter<DesiredState['podSetups']>;
  readonly bgp?: {
    setAnnouncements(announcements: readonly Announcement[]): void;
    sync(): Promise<{ ok: boolean; errors: readonly string[] }>;
    withdrawAll(): Promise<unknown>;
  };
  /** This node's BGP sessions (peers, AS, router id): applied before any announcement. */
  readonly peers?: {
    set(plan: NodeBgp | undefined): Promise<void>;
  };
  /** LoadBalancer status write-back (its own loop retries); given only while this agent leads. */
  readonly loadBalancerStatus?: Adapter<LoadBalancerStatusInput>;
  readonly isLeader?: () => boolean;
  /** Stored bucket tables (issue 7): queues a write, never awaited; called only while this agent leads. */
  readonly writeBucketTables?: (desired: DesiredState, snapshot: ClusterSnapshot) => void;
  /** Local health: withdrawal done, now tell the routers (BFD AdminDown) / undo it. */
  readonly drainBfd?: () => void;
  readonly restoreBfd?: () => void;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface AgentSettings {
  readonly withdrawGraceSeconds: number;
  /** Consecutive data plane failures after which the node stops attracting traffic. */
  readonly unhealthyAfterFailures: number;
  /** Period of the converge's own periodic pass (lingering VIPs, maintenance); default 60 s. */
  readonly resyncMs?: number;
}

const announcementKey = (a: Announcement): string => a.prefix;

export class Agent {
  private desired?: DesiredState;
  private snapshot?: ClusterSnapshot;
  /** What we asked gobgpd to announce last. */
  private announced: readonly Announcement[] = [];
  /** The converge loop: coalesced, one at a time; never retries (the adapters do). */
  private readonly loop: ReconcileLoop<DesiredState, PassOutcome>;
  private stopping = false;
  private converging = false;
  /** Consecutive failed data-plane passes (from its results, retries included). */
  private dataplaneFailures = 0;
  /** Announcements were held back because the data plane had failed. */
  private heldBack = false;
  private drained = false;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly reported = new Map<string, string>();
  /** VIPs withdrawn less than the grace time ago, still programmed (see lingerWithdrawn). */
  private readonly lingering = new Map<IpAddress, { readonly plan: VipPlan; readonly until: number }>();
  private lingerTimer?: NodeJS.Timeout;
  private lastProgrammed?: DesiredState;
  private maintenanceSince?: number;
  private maintenanceTimer?: NodeJS.Timeout;

  constructor(
    private readonly parts: AgentParts,
    private readonly settings: AgentSettings,
  ) {
    this.loop = new ReconcileLoop<DesiredState, PassOutcome>({
      name: 'agent',
      pass: async (desired) => {
        if (!desired || this.stopping) return { ok: true };
        this.converging = true;
        try {
          await this.converge(desired);
        } finally {
          this.converging = false;
        }
        return { ok: true };
      },
      failed: (error) => ({ ok: false, error }),
      resyncMs: settings.resyncMs ?? 60_000,
      // A converge that throws is a bug; it is logged and the next change or period runs it.
      backoff: { initialMs: 1000, maxMs: 30_000 },
      liveness: 'progress',
      onListenerError: (err) => this.parts.logger.error(`an agent result listener threw: ${String(err)}`),
    });
    this.loop.onResult((r) => {
      if (!r.ok) this.parts.logger.error(`converge failed: ${r.error ?? 'unknown error'}`);
    });
    const off = parts.dataplane?.onResult?.((r) => this.onDataplaneResult(r));
    if (off) this.unsubscribe.push(off);
    this.loop.start();
  }

  /** The converge loop (health from its progress). */
  get reconcileLoop(): ReconcileLoop<DesiredState, PassOutcome> {
    return this.loop;
  }

  /** A new snapshot from the watcher: recompute and converge (coalesced, one at a time). */
  onSnapshot(snapshot: ClusterSnapshot): void {
    if (this.stopping) return;
    this.snapshot = snapshot;
    this.parts.model.replaceAll(snapshot);
    this.desired = this.parts.model.desiredState();
    void this.loop.set(this.desired);
  }

  /**
   * A configuration applied live (live-config.ts): the model resolves pools, peers and
   * attributes again and the node converges on the result like on any change (withdraw
   * first, then program, then announce), without a restart.
   */
  applySettings(settings: ModelSettings): void {
    if (this.stopping) return;
    this.parts.model.setSettings(settings);
    if (!this.snapshot) return; // the first snapshot converges with the new settings
    this.desired = this.parts.model.desiredState();
    void this.loop.set(this.desired);
  }

  /** Resolves when every converge requested so far has run. */
  async idle(): Promise<void> {
    await this.loop.idle();
  }

  current(): DesiredState | undefined {
    return this.desired;
  }

  /**
   * Stop for a restart in place (SIGUSR2, an upgrade): the loop stops and nothing is
   * withdrawn. gobgpd keeps announcing (or, restarted too, the routers keep the routes as
   * stale: graceful restart) and the data path stays; the next agent adopts both.
   */
  async stopForRestart(): Promise<void> {
    await this.stopConverging();
  }

  /** No more passes, timers or listeners; what is announced and programmed stays. */
  private async stopConverging(): Promise<void> {
    this.stopping = true;
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    if (this.maintenanceTimer) clearTimeout(this.maintenanceTimer);
    for (const off of this.unsubscribe.splice(0)) off();
    await this.loop.stop();
  }

  /**
   * Graceful stop (SIGTERM): announcements go first, the routers get the grace time, then
   * BFD goes AdminDown. The kernel state stays.
   */
  async shutdown(): Promise<void> {
    await this.stopConverging();
    const log = this.parts.logger;
    if (this.parts.bgp) {
      log.info('shutdown: withdrawing all announcements');
      await this.parts.bgp.withdrawAll();
      this.announced = [];
      const sleep = this.parts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
      log.info(`shutdown: waiting ${this.settings.withdrawGraceSeconds}s for the routers to move traffic`);
      await sleep(this.settings.withdrawGraceSeconds * 1000);
    }
    this.parts.drainBfd?.();
  }

  /** Listens to the data plane's loop: it owns the retries, the agent follows their outcome. */
  private onDataplaneResult(r: PassOutcome): void {
    this.dataplaneFailures = r.ok ? 0 : this.dataplaneFailures + 1;
    // A converge waiting for this result handles it itself.
    if (this.converging || this.stopping) return;
    const mustDrain = !r.ok && this.dataplaneFailures >= this.settings.unhealthyAfterFailures && !this.drained;
    const mayAnnounce = r.ok && (this.heldBack || this.drained);
    if (mustDrain || mayAnnounce) void this.loop.request();
  }

  private kick(): void {
    void this.loop.request();
  }

  private async converge(desired: DesiredState): Promise<void> {
    const { bgp, dataplane, podnet, logger: log } = this.parts;
    this.reportProblems(desired.problems);
    // Stored bucket tables (issue 7): one writer, the Lease holder, in the background
    // (kube/table-writer.ts), so neither a slow API nor a failing data plane holds the other up.
    // Here, before any await, this.snapshot is still the snapshot `desired` came from.
    if (this.parts.writeBucketTables && this.snapshot && (this.parts.isLeader?.() ?? true)) this.parts.writeBucketTables(desired, this.snapshot);

    // The sessions first: a peer that left this node's selection goes (the router drops
    // what it learnt over it), a new one is up before the announcements below reach it.
    // A failure (no router id yet, gobgpd away) is logged; the next pass tries again, and the
    // speaker keeps the sessions it has.
    if (this.parts.peers) {
      try {
        await this.parts.peers.set(desired.bgp);
      } catch (err) {
        log.error(`bgp peers not applied: ${err instanceof Error ? err.message : String(err)}`, { area: 'bgp' });
      }
    }

    const wanted = new Set(desired.announcements.map(announcementKey));
    // 1. Withdraw first: what is no longer wanted leaves the routers before its routes go.
    const kept = this.announced.filter((a) => wanted.has(announcementKey(a)));
    this.lingerWithdrawn(desired, this.announced.filter((a) => !wanted.has(announcementKey(a))));
    if (bgp && kept.length !== this.announced.length) {
      bgp.setAnnouncements(kept);
      this.announced = kept;
      await bgp.sync(); // a failure is the speaker's to retry and report
    }

    // 2. Program the kernel. A failure keeps the last good state serving (the adapters
    //    never tear down on error) and holds back new announcements.
    let dataplaneOk = true;
    if (dataplane) {
      const res = await dataplane.set(this.withLingering(desired));
      dataplaneOk = res.ok;
      // Adapters without a result stream: count here (with one, onDataplaneResult counted).
      if (!dataplane.onResult) this.dataplaneFailures = res.ok ? 0 : this.dataplaneFailures + 1;
      if (!res.ok) log.error(`dataplane reconcile failed: ${res.error ?? 'unknown error'}`, { area: 'dataplane' });
    }
    // Pods not done are podnet's to retry and report (Events, status); nothing here waits on them.
    if (podnet) await podnet.set(desired.podSetups);
    this.heldBack = !dataplaneOk;

    if (this.dataplaneFailures >= this.settings.unhealthyAfterFailures && !this.drained) {
      log.error(`data plane failed ${this.dataplaneFailures} times in a row: withdrawing this node's announcements`);
      if (bgp) {
        bgp.setAnnouncements([]);
        this.announced = [];
        await bgp.sync();
      }
      this.parts.drainBfd?.();
      this.drained = true;
      return;
    }
    if (dataplaneOk && this.drained) {
      log.info('data plane healthy again: restoring BFD and announcements');
      if (!this.maintenanceSince) this.parts.restoreBfd?.();
      this.drained = false;
    }

    // Maintenance (cordon, taint, NotReady): announcements are gone (step 1); once the
    // routers had the grace time to move away, tell them over BFD too (AdminDown).
    this.followMaintenance(desired);

    // 3. Announce what the data plane now serves.
    if (bgp && dataplaneOk && !this.drained) {
      bgp.setAnnouncements(desired.announcements);
      this.announced = desired.announcements;
      await bgp.sync();
    }

    // LoadBalancer status is cluster-wide: one writer (the Lease holder), on its own loop,
    // so a slow API never holds up the data path.
    if (this.parts.loadBalancerStatus && this.snapshot && (this.parts.isLeader?.() ?? true)) {
      const ingress = this.parts.model.vipResolution().loadBalancerIngress;
      void this.parts.loadBalancerStatus.set({ snapshot: this.snapshot, ingress });
    }
  }

  /**
   * A withdrawn VIP keeps its data path for the grace time (the routers are still moving
   * traffic away; packets in flight must not be black-holed), also when this node stops
   * being a tunnel node. Only VIPs that leave the desired state need it: one that stays
   * (maintenance, no ready endpoints) keeps its routes anyway.
   */
  private lingerWithdrawn(desired: DesiredState, withdrawn: readonly Announcement[]): void {
    const now = Date.now();
    const until = now + this.settings.withdrawGraceSeconds * 1000;
    const previous = new Map((this.lastProgrammed?.vips ?? []).map((v) => [v.vip, v]));
    const stays = new Set(desired.isTunnelNode ? desired.vips.map((v) => v.vip) : []);
    for (const a of withdrawn) {
      const plan = previous.get(a.vip);
      if (plan && !stays.has(a.vip) && until > now) this.lingering.set(a.vip, { plan, until });
    }
    for (const [vip, l] of this.lingering) if (l.until <= now || stays.has(vip)) this.lingering.delete(vip);
    if (this.lingering.size > 0 && !this.lingerTimer) {
      const next = Math.min(...[...this.lingering.values()].map((l) => l.until));
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = undefined;
        this.kick();
      }, Math.max(0, next - now) + 10);
      this.lingerTimer.unref();
    }
  }

  private withLingering(desired: DesiredState): DesiredState {
    this.lastProgrammed = desired;
    if (this.lingering.size === 0) return desired;
    const plans = new Map((desired.isTunnelNode ? desired.vips : []).map((v) => [v.vip, v]));
    for (const [vip, l] of this.lingering) if (!plans.has(vip)) plans.set(vip, l.plan);
    const vips = [...plans.values()].sort((a, b) => compareIps(a.vip, b.vip));
    return { ...desired, isTunnelNode: true, vips };
  }

  private followMaintenance(desired: DesiredState): void {
    if (desired.maintenance && !this.maintenanceSince) {
      this.maintenanceSince = Date.now();
      this.parts.logger.info(`maintenance: ${desired.maintenance}; announcements withdrawn, BFD AdminDown in ${this.settings.withdrawGraceSeconds}s`);
      this.maintenanceTimer = setTimeout(() => {
        this.maintenanceTimer = undefined;
        if (this.maintenanceSince) this.parts.drainBfd?.();
      }, this.settings.withdrawGraceSeconds * 1000);
      this.maintenanceTimer.unref();
    } else if (!desired.maintenance && this.maintenanceSince) {
      this.maintenanceSince = undefined;
      if (this.maintenanceTimer) clearTimeout(this.maintenanceTimer);
      this.maintenanceTimer = undefined;
      this.parts.logger.info('maintenance over: BFD up, announcing again');
      if (!this.drained) this.parts.restoreBfd?.();
    }
  }

  /** Each problem becomes one Event and one log line, again only when its message changes. */
  private reportProblems(problems: readonly Problem[]): void {
    const seen = new Set<string>();
    for (const p of problems) {
      const key = `${p.ref.kind}/${p.ref.namespace ?? ''}/${p.ref.name}/${p.reason}`;
      seen.add(key);
      if (this.reported.get(key) === p.message) continue;
      this.reported.set(key, p.message);
      this.parts.logger.warn(p.message, { reason: p.reason, object: `${p.ref.kind} ${p.ref.namespace ? `${p.ref.namespace}/` : ''}${p.ref.name}` });
      this.parts.events.warning(p.ref, p.reason, p.message);
    }
    for (const key of [...this.reported.keys()]) if (!seen.has(key)) this.reported.delete(key);
  }
}
