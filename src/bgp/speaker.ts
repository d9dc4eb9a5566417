// BgpSpeaker: the agent's one controller of its gobgpd sidecar. Declarative, like
// MetalLB's Session.Set: callers hand over the WHOLE desired set of peers and
// announcements; a single reconcile loop reads gobgpd back (GetBgp, ListPeer, ListPath),
// diffs and applies only the difference, on every change, on a periodic resync, and
// after gobgpd restarts (it comes back empty: StartBgp, peers and every route again).
// Failures are logged with their object, counted, and retried with backoff; nothing here
// throws into the agent.
import { EventEmitter } from 'node:events';
import type { Announcement, ServiceRef } from '../model/types.js';
import type { NodePeer } from '../model/index.js';
import type { Config } from '../config/index.js';
import { silentLogger, type BgpPeerReport, type Logger } from '../observe/index.js';
import { GobgpClient, GobgpError, samePeerConfig, type GlobalSpec, type PeerSpec, type PeerStatus } from './gobgp-client.js';
import { canonicalIp, normalizeRoute, routeKey, type HostRoute } from './paths.js';
import { bgpMetrics } from './metrics.js';
import { PeerHistory } from './peer-report.js';
import { ReconcileLoop, type BackoffOptions } from '../system/index.js';
import { exportPolicy } from './export-policy.js';

export interface BgpSpeakerOptions {
  readonly client: GobgpClient;
  readonly global: GlobalSpec;
  readonly logger?: Logger;
  /** Periodic full pass that repairs drift and notices a restarted gobgpd (default 30 s). */
  readonly resyncMs?: number;
  /** Retry delay after a failed pass: the one backoff (system/backoff.ts) from `initialMs` up to `maxMs`. */
  readonly backoff?: BackoffOptions;
  /**
   * Fail static at start (the agent sets it): touch neither peers nor routes until the
   * first setAnnouncements/setRoutes. A restarted agent that adopts a running gobgpd must
   * not withdraw its routes before the model is ready, and a restarted gobgpd must not
   * open sessions (and send End-of-RIB, ending the routers' graceful restart) before it
   * has the routes to send.
   */
  readonly waitForAnnouncements?: boolean;
}

export interface SyncResult {
  /** Everything desired is in gobgpd. */
  readonly ok: boolean;
  /** One line per failure, naming the peer or VIP/Service. */
  readonly errors: readonly string[];
  /** gobgpd had lost its state (restart) and was set up again in this pass. */
  readonly restarted: boolean;
  readonly announced: number;
  readonly added: number;
  readonly withdrawn: number;
  /** The errors as one line (the loop contract's `error`). */
  readonly error?: string;
  /** The pass could not reach gobgpd at all (readiness). */
  readonly unreachable?: boolean;
}

export interface SpeakerEvents {
  /** A peer's session state changed (WatchEvent, or seen in a pass). */
  peer: [PeerStatus];
  /** gobgpd came back without state and is being set up again. */
  restarted: [];
  synced: [SyncResult];
}

interface DesiredRoute {
  readonly route: HostRoute;
  readonly service?: ServiceRef;
  /** routeKey(route), computed once: diffs over 10,000 routes run on every change. */
  readonly key?: string;
  /** The only peers that may receive it (export policy); absent: every peer. */
  readonly peers?: readonly string[];
}

/** Maps an Announcement of the model onto the route gobgpd announces. */
export function announcementToRoute(a: Announcement): HostRoute {
  return {
    prefix: a.prefix,
    family: a.family,
    communities: a.communities,
    largeCommunities: a.largeCommunities,
    ...(a.localPref !== undefined ? { localPref: a.localPref } : {}),
  };
}

/**
 * Maps one session of the node's plan (model/peers.ts) onto gobgpd's peer settings; the
 * password, resolved by the caller from the plan's Secret or file, is passed separately.
 */
export function peerSpecFromPlan(p: NodePeer, password?: string, extra: Partial<PeerSpec> = {}): PeerSpec {
  return {
    address: p.address,
    asn: p.asn,
    localAsn: p.localAsn,
    holdTimeSeconds: p.holdTimeSeconds,
    keepaliveSeconds: p.keepaliveSeconds,
    ...(password !== undefined ? { password } : {}),
    ...(p.multihopTtl !== undefined ? { multihopTtl: p.multihopTtl } : {}),
    ...(p.sourceAddress !== undefined ? { localAddress: p.sourceAddress } : {}),
    ...extra,
  };
}

/** The graceful-restart settings every peer gets (docs/bgp.md), or none. */
export function gracefulRestartSpec(bgp: Config['bgp']): Partial<PeerSpec> {
  return bgp.gracefulRestart.enabled ? { gracefulRestart: { restartTimeSeconds: bgp.gracefulRestart.restartTimeSeconds } } : {};
}

/**
 * The agent's wiring: a client for config.bgp.grpcAddress and a speaker with this node's
 * AS and router id (not started). It has no peers yet: which peers a node dials depends on
 * its labels (model/peers.ts), so the agent sets them from each desired state.
 */
export function bgpSpeakerFromConfig(bgp: Config['bgp'], opts: { routerId: string; asn?: number; logger?: Logger }): { client: GobgpClient; speaker: BgpSpeaker } {
  const client = new GobgpClient({ target: bgp.grpcAddress });
  const speaker = new BgpSpeaker({ client, global: { asn: opts.asn ?? bgp.asn, routerId: opts.routerId, listenPort: bgp.listenPort }, waitForAnnouncements: true, ...(opts.logger ? { logger: opts.logger } : {}) });
  return { client, speaker };
}

function describe(d: DesiredRoute): string {
  const vip = d.route.prefix.replace(/\/\d+$/, '');
  return d.service ? `VIP ${vip} (Service ${d.service.namespace}/${d.service.name})` : `VIP ${vip}`;
}

function failedResult(error: string): SyncResult {
  return { ok: false, errors: [error], error, restarted: false, announced: 0, added: 0, withdrawn: 0 };
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** What one pass did to gobgpd's paths. */
interface AppliedPaths {
  readonly added: number;
  readonly withdrawn: number;
  /** Prefixes gobgpd refused to add (not counted as announced). */
  readonly failedAdds: ReadonlySet<string>;
}

/**
 * The errors of one pass, each naming its object: logged, counted and collected, while the
 * pass goes on. An unreachable gobgpd is rethrown (the loop retries the whole pass).
 */
class PassErrors {
  readonly list: string[] = [];
  constructor(private readonly log: Logger) {}

  add(op: string, subject: string, e: unknown, ctx: Record<string, string | undefined>): void {
    if (e instanceof GobgpError && e.unreachable) throw e;
    bgpMetrics.errors.inc({ op });
    const msg = `${subject}: ${errText(e)}`;
    this.list.push(msg);
    this.log.error(msg, { op, ...ctx });
  }
}

export class BgpSpeaker extends EventEmitter<SpeakerEvents> {
  private readonly client: GobgpClient;
  private readonly log: Logger;
  private readonly resyncMs: number;
  /** The reconcile loop (system/reconcile-loop.ts): coalescing, retry, periodic resync. */
  private readonly loop: ReconcileLoop<void, SyncResult>;

  private peers = new Map<string, PeerSpec>();
  /** gobgpd's global settings; a change (a node's ASN or router id annotation) restarts BGP. */
  private global: GlobalSpec;
  private routes = new Map<string, DesiredRoute>();
  /** A set of routes was given (see BgpSpeakerOptions.waitForAnnouncements). */
  private routesGiven = false;
  /**
   * gobgpd was found without state and started by us: the peers it gets until they are
   * re-created carry the Restart State bit (graceful restart), so routers holding our
   * routes as stale keep them until our End-of-RIB.
   */
  private freshGobgpd = false;
  /** Validation results of the last set, by the route as given (null: invalid). */
  private normalized = new Map<string, { route: HostRoute; key: string } | null>();
  private readonly states = new Map<string, PeerStatus>();
  /** Up/down times, prefix counts and last drop reason per peer, for `kst status`. */
  private readonly history = new PeerHistory();
  /** WatchEvent updates per peer: a ListPeer reply that raced one of them is stale. */
  private readonly peerEvents = new Map<string, number>();
  /** Peers held administratively down (BFD down, maintenance); absent = not managed here. */
  private readonly adminDown = new Map<string, { down: boolean; reason: string }>();
  /** See setPeers. */
  private notes = new Map<string, string>();
  private held = new Map<string, string>();
  /** exportPolicy(...).key of what gobgpd runs; undefined: unknown (apply on the next pass). */
  private policyKey: string | undefined;
  /** Prefix -> the peer restriction it was last announced with ("" = every peer). */
  private sentPeers = new Map<string, string>();
  /**
   * The routes gobgpd has (prefix -> route), as of the last full ListPath plus what we
   * applied since. Changes are diffed against it, so one VIP change among 10,000 does not
   * re-read 10,000 paths; it is dropped (and re-read) on the periodic resync, after any
   * error, and when gobgpd restarts.
   */
  private known: Map<string, { readonly route: HostRoute; readonly key: string }> | undefined;
  private knownAt = 0;

  private stopped = true;
  /** We have set gobgpd up at least once (so finding it empty means it restarted). */
  private configuredOnce = false;
  private watch: { cancel(): void } | undefined;

  constructor(private readonly opts: BgpSpeakerOptions) {
    super();
    this.client = opts.client;
    this.log = (opts.logger ?? silentLogger()).child({ component: 'bgp' });
    this.resyncMs = opts.resyncMs ?? 30000;
    this.loop = new ReconcileLoop<void, SyncResult>({
      name: 'bgp',
      pass: (_none, ctx) => this.runPass(ctx.full),
      failed: (error) => failedResult(error),
      resyncMs: this.resyncMs,
      backoff: opts.backoff ?? { initialMs: 200, maxMs: 5000 },
      onListenerError: (e) => this.log.error(`a "synced" listener threw: ${errText(e)}`),
    });
    this.loop.onResult((r) => this.safeEmit('synced', r));
    this.global = opts.global;
  }

  /**
   * New global AS / router id. gobgpd cannot change them on a running BGP instance: the
   * next pass stops and starts BGP, which resets every session (the routers withdraw this
   * node's routes and relearn them); a same-valued call changes nothing.
   */
  setGlobal(g: GlobalSpec): void {
    const cur = this.global;
    if (cur.asn === g.asn && cur.routerId === g.routerId && cur.listenPort === g.listenPort) return;
    this.global = g;
    this.changed();
  }

  currentGlobal(): GlobalSpec {
    return this.global;
  }

  /** The loop's health and results (health from progress; the agent listens). */
  get reconcileLoop(): ReconcileLoop<void, SyncResult> {
    return this.loop;
  }

  /** Starts the reconcile loop; returns at once (the first pass runs in the background). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop.start();
    void this.loop.request();
  }

  /**
   * Stops the loop and the event stream. gobgpd keeps what it has (fail static): withdraw
   * first (withdrawAll, or withdrawAndWait) when the announcements must go.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const stopping = this.loop.stop();
    this.watch?.cancel();
    this.watch = undefined;
    await stopping;
  }

  /**
   * The whole desired peer set (replaces the previous one). `notes`: per peer address, a
   * sentence `kst status` shows while the session is not Established (e.g. that it uses a
   * TCP-MD5 password, whose mismatch the router answers with silence). `held`: peers to
   * keep administratively down whatever BFD says, with the reason (e.g. their password
   * could not be read: dialling without it would be a silent downgrade).
   */
  setPeers(peers: readonly PeerSpec[], opts: { notes?: ReadonlyMap<string, string>; held?: ReadonlyMap<string, string> } = {}): void {
    this.notes = new Map([...(opts.notes ?? [])].map(([a, n]) => [canonicalIp(a), n]));
    this.held = new Map([...(opts.held ?? [])].map(([a, n]) => [canonicalIp(a), n]));
    const next = new Map<string, PeerSpec>();
    for (const given of peers) {
      // gobgpd reports addresses canonically; compare like with like.
      const p = { ...given, address: canonicalIp(given.address) };
      if (next.has(p.address)) this.log.warn(`peer ${p.address} listed twice; using the first`, { peer: p.address });
      else next.set(p.address, p);
    }
    this.peers = next;
    this.changed();
  }

  /**
   * The whole desired announcement set; an empty list withdraws everything. Invalid
   * announcements are logged with their Service and left out (they cannot succeed).
   */
  setAnnouncements(announcements: readonly Announcement[]): void {
    this.setDesired(announcements.map((a) => ({ route: announcementToRoute(a), service: a.service, ...(a.peers ? { peers: a.peers } : {}) })));
  }

  /** Same as setAnnouncements for callers that have routes rather than model output (benchmarks, tools). */
  setRoutes(routes: readonly HostRoute[]): void {
    this.setDesired(routes.map((route) => ({ route })));
  }

  private setDesired(items: readonly DesiredRoute[]): void {
    const next = new Map<string, DesiredRoute>();
    const cache = new Map<string, { route: HostRoute; key: string } | null>();
    for (const d of items) {
      // The whole set arrives on every change: reuse last time's validation of an
      // unchanged route (and report an invalid one once, not on every change).
      const raw = `${d.route.prefix}|${d.route.family}|${d.route.communities.join(',')}|${d.route.largeCommunities.join(',')}|${d.route.localPref ?? ''}`;
      let norm = cache.get(raw) ?? this.normalized.get(raw);
      if (norm === undefined) {
        try {
          const route = normalizeRoute(d.route);
          norm = { route, key: routeKey(route) };
        } catch (e) {
          norm = null;
          bgpMetrics.errors.inc({ op: 'validate' });
          this.log.error(`not announcing ${describe(d)}: ${errText(e)}`, { vip: d.route.prefix, service: d.service && `${d.service.namespace}/${d.service.name}` });
        }
      }
      cache.set(raw, norm);
      if (!norm) continue;
      if (next.has(norm.route.prefix)) {
        this.log.warn(`${describe(d)} announced twice; using the first`, { vip: norm.route.prefix });
        continue;
      }
      next.set(norm.route.prefix, { route: norm.route, service: d.service, key: norm.key, ...(d.peers ? { peers: d.peers } : {}) });
    }
    this.normalized = cache;
    this.routes = next;
    this.routesGiven = true;
    this.changed();
  }

  /**
   * Holds a peer's session administratively down (true) or lets it run (false), e.g. when
   * BFD declares the path down or up. Unlike GobgpClient.disablePeer this is desired
   * state: it is re-applied after gobgpd restarts. Peers never passed here are left as
   * gobgpd has them.
   */
  setPeerAdminDown(address: string, down: boolean, reason = ''): void {
    this.adminDown.set(canonicalIp(address), { down, reason });
    this.changed();
  }

  /** Withdraws every announcement and waits until gobgpd has none (peers stay up). */
  async withdrawAll(): Promise<SyncResult> {
    this.routes = new Map();
    this.routesGiven = true;
    this.changed();
    return this.sync();
  }

  /**
   * Waits for a pass that started after the latest set*() and returns its result (which
   * may carry errors: the loop keeps retrying in the background).
   */
  sync(): Promise<SyncResult> {
    if (this.stopped) return Promise.resolve(failedResult('speaker not started'));
    return this.loop.settled();
  }

  /** Last known state of each desired peer. */
  peerStates(): PeerStatus[] {
    return [...this.peers.values()].map((p) => this.states.get(p.address) ?? { address: p.address, asn: p.asn, state: 'unknown', adminDown: false, routerId: '', config: p });
  }

  /**
   * Each desired peer as `show bgp summary` shows it. Reads gobgpd afresh (with the
   * advertised counts, which the reconcile loop does not ask for) when it answers within
   * `timeoutMs`; else the last known state, without failing.
   */
  async peerReport(timeoutMs = 1000): Promise<BgpPeerReport[]> {
    if (!this.stopped) {
      try {
        const mark = new Map(this.peerEvents);
        for (const p of await this.client.listPeers('', { advertised: true, timeoutMs })) {
          if (this.peers.has(p.address) && !this.raced(mark, p.address)) this.notePeer(p);
        }
      } catch (e) {
        this.log.debug(`peer report from the last known state: ${errText(e)}`);
      }
    }
    return this.peerStates().map((p) => {
      const r = this.history.report(p);
      const note = p.state === 'established' ? undefined : this.notes.get(p.address);
      return note ? { ...r, lastError: r.lastError ? `${r.lastError}; ${note}` : note } : r;
    });
  }

  lastResult(): SyncResult | undefined {
    return this.loop.lastResult;
  }

  // ---------- the loop ----------

  private changed(): void {
    if (!this.stopped) void this.loop.request();
  }

  /** One pass of the loop; an unreachable gobgpd fails the whole pass (the loop retries it). */
  private async runPass(full: boolean): Promise<SyncResult> {
    if (full) this.known = undefined; // a full pass re-reads gobgpd's routes
    try {
      return await this.pass();
    } catch (e) {
      this.known = undefined;
      // Unreachable sidecar (or a reply we cannot read): the whole pass is retried.
      bgpMetrics.errors.inc({ op: e instanceof GobgpError ? e.op : 'pass' });
      this.log.warn(`gobgpd pass failed, retrying: ${errText(e)}`, { target: this.client.opts.target });
      return { ...failedResult(errText(e)), ...(e instanceof GobgpError && e.unreachable ? { unreachable: true } : {}) };
    }
  }

  /**
   * One pass, in order: BGP itself, the event stream, peers no longer desired, the export
   * policy, the paths, the desired peers (and their admin state), then a soft reset out when
   * the policy changed. Errors that name one object are collected and the pass goes on; an
   * unreachable gobgpd throws out of the whole pass.
   */
  private async pass(): Promise<SyncResult> {
    const errors = new PassErrors(this.log);
    const restarted = await this.ensureGlobal();
    this.ensureWatch();
    if (this.opts.waitForAnnouncements && !this.routesGiven) {
      this.log.debug('waiting for the first announcement set before touching peers and routes');
      return { ok: true, errors: errors.list, restarted, announced: 0, added: 0, withdrawn: 0 };
    }
    const actualPeers = await this.readPeers();
    await this.removeUndesiredPeers(actualPeers, errors);
    // Paths, before new peers: a session that opens on a fresh gobgpd then sends every
    // route before its End-of-RIB (graceful restart).
    const desired = this.routes;
    // Export policy before the paths: a new restricted VIP must never reach the other peers.
    const policy = await this.applyExportPolicy(desired, errors);
    if (policy === 'failed') return { ok: false, errors: errors.list, restarted, announced: 0, added: 0, withdrawn: 0 };
    const paths = await this.applyPaths(desired, policy === 'changed', errors);
    await this.applyPeers(actualPeers, errors);
    if (policy === 'changed') await this.softResetOutAfterPolicyChange(errors);
    const announced = this.recordAnnouncements(desired, paths);
    const { added, withdrawn } = paths;
    return { ok: errors.list.length === 0, errors: errors.list, restarted, announced, added, withdrawn, ...(errors.list.length ? { error: errors.list.join('; ') } : {}) };
  }

  /** gobgpd's peers, noted as their current state unless a WatchEvent raced the read. */
  private async readPeers(): Promise<PeerStatus[]> {
    const mark = new Map(this.peerEvents);
    const actualPeers = await this.client.listPeers();
    for (const p of actualPeers) if (!this.raced(mark, p.address)) this.notePeer(p);
    return actualPeers;
  }

  /** The speaker is gobgpd's only controller, so any peer not desired goes. */
  private async removeUndesiredPeers(actualPeers: readonly PeerStatus[], errors: PassErrors): Promise<void> {
    for (const p of actualPeers) {
      if (this.peers.has(p.address)) continue;
      try {
        await this.client.deletePeer(p.address);
        this.states.delete(p.address);
        this.history.forget(p.address);
        this.peerEvents.delete(p.address);
        bgpMetrics.peerState.remove({ peer: p.address });
        bgpMetrics.removePeer(p.address);
        this.log.info(`removed peer ${p.address}`, { peer: p.address });
      } catch (e) {
        errors.add('DeletePeer', `peer ${p.address}`, e, { peer: p.address });
      }
    }
  }

  /**
   * Gives gobgpd the export policy for the VIPs restricted to some peers, when it changed.
   * 'failed': the paths must be held back (without the policy, restricted VIPs would reach
   * every peer).
   */
  private async applyExportPolicy(desired: ReadonlyMap<string, DesiredRoute>, errors: PassErrors): Promise<'unchanged' | 'changed' | 'failed'> {
    const restrictions = new Map<string, readonly string[]>();
    for (const d of desired.values()) if (d.peers) restrictions.set(d.route.prefix, d.peers);
    const policy = exportPolicy(restrictions);
    if (policy.key === this.policyKey) return 'unchanged';
    try {
      await this.client.setPolicies(policy);
      if (this.policyKey === undefined) for (const a of policy.assignments) await this.client.setPolicyAssignment(a);
      this.policyKey = policy.key;
      this.log.info(`export policy: ${restrictions.size} VIP(s) restricted to some peers`);
      return 'changed';
    } catch (e) {
      errors.add('SetPolicies', 'export policy', e, {});
      return 'failed';
    }
  }

  /**
   * Diffs the desired paths against gobgpd's by route identity (prefix + attributes) and
   * applies the difference in one batch. A changed attribute is a new AddPath, which
   * replaces the old path in gobgpd (implicit withdraw); only prefixes no longer desired
   * are withdrawn.
   */
  private async applyPaths(desired: ReadonlyMap<string, DesiredRoute>, policyChanged: boolean, errors: PassErrors): Promise<AppliedPaths> {
    if (!this.known || Date.now() - this.knownAt >= this.resyncMs) await this.readRoutes();
    const { toAdd, toWithdraw } = this.diffRoutes(desired);
    if (policyChanged) toAdd.push(...(await this.withdrawVipsWhosePeersChanged(desired, toAdd, errors)));
    this.sentPeers = new Map([...desired.values()].map((d) => [d.route.prefix, (d.peers ?? []).join(',')]));
    if (!toAdd.length && !toWithdraw.length) return { added: 0, withdrawn: 0, failedAdds: new Set() };
    try {
      await this.client.applyPaths(toAdd.map((d) => d.route), toWithdraw);
      for (const r of toWithdraw) this.known?.delete(r.prefix);
      for (const d of toAdd) this.known?.set(d.route.prefix, { route: d.route, key: d.key ?? routeKey(d.route) });
      return { added: toAdd.length, withdrawn: toWithdraw.length, failedAdds: new Set() };
    } catch (e) {
      this.known = undefined;
      if (e instanceof GobgpError && e.unreachable) throw e;
      return this.applyPathsOneByOne(desired, errors);
    }
  }

  /**
   * gobgpd applies the export policy when a path is added, and neither its soft reset out
   * nor an identical AddPath re-sent a path the old policy had held back (seen with gobgpd
   * 3.10): a VIP whose peers changed is withdrawn here and returned to be announced again.
   * That costs the VIP one withdraw/announce on its other peers (the routers' other next
   * hops carry it).
   */
  private async withdrawVipsWhosePeersChanged(desired: ReadonlyMap<string, DesiredRoute>, toAdd: readonly DesiredRoute[], errors: PassErrors): Promise<DesiredRoute[]> {
    const adding = new Set(toAdd.map((d) => d.route.prefix));
    const again: DesiredRoute[] = [];
    for (const d of desired.values()) {
      const k = (d.peers ?? []).join(',');
      if (this.sentPeers.get(d.route.prefix) === k || adding.has(d.route.prefix) || !this.sentPeers.has(d.route.prefix)) continue;
      try {
        await this.client.deletePath(d.route);
        this.known?.delete(d.route.prefix);
      } catch (e) {
        errors.add('DeletePath', `re-announcing ${describe(d)} to its new peers`, e, { vip: d.route.prefix });
      }
      again.push(d);
    }
    return again;
  }

  /** gobgpd refused something in the batch: re-read, re-diff and redo one by one to name the culprit. */
  private async applyPathsOneByOne(desired: ReadonlyMap<string, DesiredRoute>, errors: PassErrors): Promise<AppliedPaths> {
    await this.readRoutes();
    const { toAdd, toWithdraw } = this.diffRoutes(desired);
    let added = 0;
    let withdrawn = 0;
    const failedAdds = new Set<string>();
    for (const r of toWithdraw) {
      try {
        await this.client.deletePath(r);
        withdrawn += 1;
      } catch (err) {
        errors.add('DeletePath', `withdrawing ${r.prefix}`, err, { vip: r.prefix });
      }
    }
    for (const d of toAdd) {
      try {
        await this.client.addPath(d.route);
        added += 1;
      } catch (err) {
        failedAdds.add(d.route.prefix);
        errors.add('AddPath', `announcing ${describe(d)}`, err, { vip: d.route.prefix, service: d.service && `${d.service.namespace}/${d.service.name}` });
      }
    }
    this.known = undefined;
    return { added, withdrawn, failedAdds };
  }

  /** Adds or updates each desired peer, then gives it its admin state. */
  private async applyPeers(actualPeers: readonly PeerStatus[], errors: PassErrors): Promise<void> {
    let peersAdded = true;
    for (const [address, spec] of this.peers) {
      const actual = actualPeers.find((p) => p.address === address);
      if (!(await this.addOrUpdatePeer(spec, actual, errors))) {
        if (!actual) peersAdded = false;
        continue;
      }
      await this.applyPeerAdminState(address, actual?.adminDown ?? false, errors);
    }
    // Only the peers re-created right after the restart come back with the Restart State
    // bit (a peer whose AddPeer failed gets it on the retry).
    if (peersAdded) this.freshGobgpd = false;
  }

  /** Makes gobgpd's peer match `spec`; false when gobgpd refused. */
  private async addOrUpdatePeer(spec: PeerSpec, actual: PeerStatus | undefined, errors: PassErrors): Promise<boolean> {
    const address = spec.address;
    try {
      if (!actual) {
        await this.client.addPeer(this.freshGobgpd && spec.gracefulRestart ? { ...spec, gracefulRestart: { ...spec.gracefulRestart, restarting: true } } : spec);
        this.log.info(`added peer ${address} (AS ${spec.asn})`, { peer: address });
      } else if (!samePeerConfig(actual.config, spec)) {
        await this.client.updatePeer(spec);
        this.log.info(`updated peer ${address} (AS ${spec.asn})`, { peer: address });
      }
      return true;
    } catch (e) {
      errors.add(actual ? 'UpdatePeer' : 'AddPeer', `peer ${address} (AS ${spec.asn})`, e, { peer: address });
      return false;
    }
  }

  /** Holds a peer down (held, or BFD/maintenance said so) or lets it run, when gobgpd differs. */
  private async applyPeerAdminState(address: string, isDown: boolean, errors: PassErrors): Promise<void> {
    const heldReason = this.held.get(address);
    const admin = heldReason !== undefined ? { down: true, reason: heldReason } : this.adminDown.get(address);
    if (!admin || admin.down === isDown) return;
    try {
      if (admin.down) await this.client.disablePeer(address, admin.reason);
      else await this.client.enablePeer(address);
      this.log.info(`peer ${address} administratively ${admin.down ? 'down' : 'up'}${admin.reason ? `: ${admin.reason}` : ''}`, { peer: address });
    } catch (e) {
      errors.add(admin.down ? 'DisablePeer' : 'EnablePeer', `peer ${address}`, e, { peer: address });
    }
  }

  /** Paths already sent go through the new policy only when re-sent: soft reset out. */
  private async softResetOutAfterPolicyChange(errors: PassErrors): Promise<void> {
    for (const p of this.peers.keys()) {
      if (this.states.get(p)?.state !== 'established') continue;
      try {
        await this.client.softResetOut(p);
        this.log.debug(`soft reset out of peer ${p} (export policy changed)`, { peer: p });
      } catch (e) {
        this.policyKey = undefined; // retried on the next pass
        errors.add('ResetPeer', `soft reset out of peer ${p}`, e, { peer: p });
      }
    }
  }

  /** Counts what was sent and what is announced (desired minus refused adds); returns the latter. */
  private recordAnnouncements(desired: ReadonlyMap<string, DesiredRoute>, paths: AppliedPaths): number {
    const { added, withdrawn } = paths;
    if (added) bgpMetrics.updates.inc({ kind: 'announce' }, added);
    if (withdrawn) bgpMetrics.updates.inc({ kind: 'withdraw' }, withdrawn);
    const counts = { 4: 0, 6: 0 };
    for (const d of desired.values()) if (!paths.failedAdds.has(d.route.prefix)) counts[d.route.family] += 1;
    bgpMetrics.announcements.set({ family: 'ipv4' }, counts[4]);
    bgpMetrics.announcements.set({ family: 'ipv6' }, counts[6]);
    if (added || withdrawn) this.log.debug(`announced ${added}, withdrew ${withdrawn}`, { announced: counts[4] + counts[6] });
    return counts[4] + counts[6];
  }

  private async readRoutes(): Promise<void> {
    const actual = [...(await this.client.listLocalRoutes(4)), ...(await this.client.listLocalRoutes(6))];
    this.known = new Map(actual.map((r) => [r.prefix, { route: r, key: routeKey(r) }]));
    this.knownAt = Date.now();
  }

  private diffRoutes(desired: ReadonlyMap<string, DesiredRoute>): { toAdd: DesiredRoute[]; toWithdraw: HostRoute[] } {
    const known = this.known ?? new Map<string, { readonly route: HostRoute; readonly key: string }>();
    const toAdd: DesiredRoute[] = [];
    for (const d of desired.values()) if (known.get(d.route.prefix)?.key !== (d.key ?? routeKey(d.route))) toAdd.push(d);
    const toWithdraw: HostRoute[] = [];
    for (const [prefix, k] of known) if (!desired.has(prefix)) toWithdraw.push(k.route);
    return { toAdd, toWithdraw };
  }

  /**
   * Makes sure gobgpd runs BGP with our global settings. gobgpd keeps nothing across a
   * restart, so "not started" after we had configured it means: set everything up again.
   * Returns true when that happened.
   */
  private async ensureGlobal(): Promise<boolean> {
    const g = this.global;
    const running = await this.client.getBgp();
    if (running && running.asn === g.asn && running.routerId === g.routerId && running.listenPort === g.listenPort) {
      this.configuredOnce = true; // also adopts a gobgpd that outlived an agent restart
      return false;
    }
    if (running) {
      this.log.warn(`gobgpd runs AS ${running.asn} router id ${running.routerId}; restarting BGP with AS ${g.asn} router id ${g.routerId}`);
      await this.client.stopBgp();
    } else if (this.configuredOnce) {
      this.log.warn('gobgpd has no BGP state (restarted?): starting BGP, adding peers and announcing everything again', { target: this.client.opts.target });
    }
    const wasConfigured = this.configuredOnce;
    try {
      await this.client.startBgp(g);
    } catch (e) {
      bgpMetrics.errors.inc({ op: 'StartBgp' });
      throw e;
    }
    this.known = undefined;
    this.freshGobgpd = true;
    this.policyKey = undefined; // gobgpd lost its routing policy too
    for (const a of this.states.keys()) this.notePeer({ ...this.states.get(a)!, state: 'unknown' }, 'gobgpd restarted without its state');
    this.configuredOnce = true;
    // Event streams opened before the restart are dead; open a new one.
    this.watch?.cancel();
    this.watch = undefined;
    if (wasConfigured) this.safeEmit('restarted');
    return wasConfigured;
  }

  private ensureWatch(): void {
    if (this.watch || this.stopped) return;
    this.watch = this.client.watchPeers(
      (p) => {
        this.peerEvents.set(p.address, (this.peerEvents.get(p.address) ?? 0) + 1);
        this.notePeer(p);
      },
      (err) => {
        this.watch = undefined;
        this.known = undefined;
        if (this.stopped) return;
        // The stream ends when gobgpd goes away: a pass finds out whether it restarted.
        this.log.debug(`gobgpd event stream ended${err ? `: ${err.message}` : ''}`);
        void this.loop.request();
      },
    );
  }

  /** A state change arrived while the ListPeer that `mark` was taken before ran. */
  private raced(mark: ReadonlyMap<string, number>, address: string): boolean {
    return (this.peerEvents.get(address) ?? 0) !== (mark.get(address) ?? 0);
  }

  private notePeer(p: PeerStatus, reason?: string): void {
    if (!p.address) return;
    const prev = this.states.get(p.address);
    this.states.set(p.address, p);
    const heldReason = this.held.get(p.address);
    const held = heldReason !== undefined ? { down: true, reason: heldReason } : this.adminDown.get(p.address);
    const why = reason ?? (p.adminDown && held?.down ? `administratively down${held.reason ? `: ${held.reason}` : ''}` : undefined);
    this.history.note(p, why);
    bgpMetrics.peerState.set({ peer: p.address }, bgpMetrics.sessionStateValue(p.state));
    bgpMetrics.setPeerEstablishedAt(p.address, this.history.establishedAt(p.address));
    if (prev?.state === p.state && prev.adminDown === p.adminDown) return;
    this.log.info(`peer ${p.address} ${p.adminDown ? 'admin down, ' : ''}${p.state}`, { peer: p.address, state: p.state });
    this.safeEmit('peer', p);
  }

  /** A listener's exception is the listener's bug: log it, keep the loop alive. */
  private safeEmit<K extends keyof SpeakerEvents>(event: K, ...args: SpeakerEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: SpeakerEvents[K]) => boolean).call(this, event, ...args);
    } catch (e) {
      this.log.error(`a "${event}" listener threw: ${errText(e)}`);
    }
  }
}
