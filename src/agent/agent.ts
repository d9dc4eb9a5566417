// The daemon: one loop that turns cluster snapshots into a desired state and hands it to
// the adapters in the order that never black-holes traffic (DESIGN.md "Fail static"):
//
//   1. withdraw announcements that are no longer wanted (routers move traffic away),
//   2. program the data plane and pod namespaces (additions and removals),
//   3. announce what is now ready, but only if step 2 succeeded.
//
// On shutdown: withdraw everything, wait the grace time, BFD AdminDown, then stop the
// processes; the kernel data path stays (only `kst cleanup` removes it).
import { compareIps } from '../model/index.js';
import type { ClusterSnapshot, DesiredState, Announcement, IncrementalModel, IpAddress, NodeBgp, Problem, VipPlan } from '../model/index.js';
import type { Logger, EventSink } from '../observe/index.js';
import type { ReconcileReport } from '../observe/index.js';

/** The parts the agent drives; each is an area's declarative adapter. */
export interface AgentParts {
  readonly model: IncrementalModel;
  readonly events: EventSink;
  readonly logger: Logger;
  /** Tunnel-node data plane (absent on nodes that never tunnel, e.g. tests). */
  readonly dataplane?: {
    set(desired: DesiredState): Promise<{ ok: boolean; error?: string; durationMs: number }>;
  };
  readonly podnet?: {
    set(setups: DesiredState['podSetups']): Promise<unknown>;
  };
  readonly bgp?: {
    setAnnouncements(announcements: readonly Announcement[]): void;
    sync(): Promise<{ ok: boolean; errors: readonly string[] }>;
    withdrawAll(): Promise<unknown>;
  };
  /** This node's BGP sessions (peers, AS, router id): applied before any announcement. */
  readonly peers?: {
    set(plan: NodeBgp | undefined): Promise<void>;
  };
  /** LoadBalancer status write-back; called only while this agent leads. */
  readonly writeLoadBalancerStatus?: (snapshot: ClusterSnapshot, ingress: ReadonlyMap<string, readonly string[]>) => Promise<void>;
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
  /** First retry delay after a failed step (doubles up to 30 s); default 1 s. */
  readonly retryInitialMs?: number;
}

const announcementKey = (a: Announcement): string => a.prefix;

export class Agent {
  private desired?: DesiredState;
  private snapshot?: ClusterSnapshot;
  /** What we asked gobgpd to announce last. */
  private announced: readonly Announcement[] = [];
  private pending = false;
  private running?: Promise<void>;
  private stopping = false;
  private dataplaneFailures = 0;
  private drained = false;
  private readonly reported = new Map<string, string>();
  private readonly reports = new Map<string, ReconcileReport>();
  /** VIPs withdrawn less than the grace time ago, still programmed (see lingerWithdrawn). */
  private readonly lingering = new Map<IpAddress, { readonly plan: VipPlan; readonly until: number }>();
  private lingerTimer?: NodeJS.Timeout;
  private lastProgrammed?: DesiredState;
  private maintenanceSince?: number;
  private maintenanceTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private retryDelayMs = 0;

  constructor(
    private readonly parts: AgentParts,
    private readonly settings: AgentSettings,
  ) {}

  /** A new snapshot from the watcher: recompute and converge (coalesced, one at a time). */
  onSnapshot(snapshot: ClusterSnapshot): void {
    if (this.stopping) return;
    this.snapshot = snapshot;
    this.parts.model.replaceAll(snapshot);
    this.desired = this.parts.model.desiredState();
    this.kick();
  }

  /** Resolves when every converge requested so far has run. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  current(): DesiredState | undefined {
    return this.desired;
  }

  reconcileReports(): ReconcileReport[] {
    return [...this.reports.values()];
  }

  /**
   * Graceful stop (SIGTERM): announcements go first, the routers get the grace time, then
   * BFD goes AdminDown. The kernel state stays.
   */
  async shutdown(): Promise<void> {
    this.stopping = true;
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    if (this.maintenanceTimer) clearTimeout(this.maintenanceTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.idle();
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

  private kick(): void {
    this.pending = true;
    if (this.running) return;
    this.running = (async () => {
      while (this.pending && !this.stopping) {
        this.pending = false;
        const desired = this.desired;
        if (desired) await this.converge(desired);
      }
      this.scheduleRetry();
    })().finally(() => {
      this.running = undefined;
    });
  }

  private async converge(desired: DesiredState): Promise<void> {
    const { bgp, dataplane, podnet, logger: log } = this.parts;
    this.reportProblems(desired.problems);
    // Stored bucket tables (issue 7): one writer, the Lease holder, in the background
    // (table-writer.ts), so neither a slow API nor a failing data plane holds the other up.
    // Here, before any await, this.snapshot is still the snapshot `desired` came from.
    if (this.parts.writeBucketTables && this.snapshot && (this.parts.isLeader?.() ?? true)) this.parts.writeBucketTables(desired, this.snapshot);

    // The sessions first: a peer that left this node's selection goes (the router drops
    // what it learnt over it), a new one is up before the announcements below reach it.
    if (this.parts.peers) await this.timed('bgp-peers', () => this.parts.peers!.set(desired.bgp));

    const wanted = new Set(desired.announcements.map(announcementKey));
    // 1. Withdraw first: what is no longer wanted leaves the routers before its routes go.
    const kept = this.announced.filter((a) => wanted.has(announcementKey(a)));
    this.lingerWithdrawn(desired, this.announced.filter((a) => !wanted.has(announcementKey(a))));
    if (bgp && kept.length !== this.announced.length) {
      bgp.setAnnouncements(kept);
      this.announced = kept;
      await this.timed('bgp', async () => {
        const r = await bgp.sync();
        if (!r.ok) throw new Error(r.errors.join('; '));
      });
    }

    // 2. Program the kernel. A failure keeps the last good state serving (the adapters
    //    never tear down on error) and holds back new announcements.
    let dataplaneOk = true;
    if (dataplane) {
      const r = await this.timed('dataplane', async () => {
        const res = await dataplane.set(this.withLingering(desired));
        if (!res.ok) throw new Error(res.error ?? 'data plane reconcile failed');
      });
      dataplaneOk = r;
    }
    if (podnet) await this.timed('podnet', () => podnet.set(desired.podSetups));

    this.dataplaneFailures = dataplaneOk ? 0 : this.dataplaneFailures + 1;
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
      await this.timed('bgp', async () => {
        const r = await bgp.sync();
        if (!r.ok) throw new Error(r.errors.join('; '));
      });
    }

    // LoadBalancer status is cluster-wide: one writer (the Lease holder).
    if (this.parts.writeLoadBalancerStatus && this.snapshot && (this.parts.isLeader?.() ?? true)) {
      const ingress = this.parts.model.vipResolution().loadBalancerIngress;
      await this.timed('lb-status', () => this.parts.writeLoadBalancerStatus!(this.snapshot!, ingress));
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

  /**
   * A failed step is retried without waiting for the next cluster change: held-back
   * announcements go out once the data plane recovers, and a data plane that keeps
   * failing reaches the unhealthy threshold. Backoff doubles up to 30 s.
   */
  private scheduleRetry(): void {
    const failed = [...this.reports.values()].some((r) => r.lastResult === 'error');
    if (!failed || this.stopping) {
      this.retryDelayMs = 0;
      return;
    }
    if (this.retryTimer) return;
    this.retryDelayMs = Math.min(30_000, this.retryDelayMs ? this.retryDelayMs * 2 : this.settings.retryInitialMs ?? 1000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, this.retryDelayMs);
    this.retryTimer.unref();
  }

  /** Runs one step, records its result for `kst status`; never throws. */
  private async timed(area: string, fn: () => Promise<unknown>): Promise<boolean> {
    const started = Date.now();
    try {
      await fn();
      this.reports.set(area, { area, lastResult: 'ok', lastRunAt: new Date(started).toISOString(), durationMs: Date.now() - started });
      return true;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.parts.logger.error(`${area} reconcile failed: ${message}`, { area });
      this.reports.set(area, { area, lastResult: 'error', lastError: message, lastRunAt: new Date(started).toISOString(), durationMs: Date.now() - started });
      return false;
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
