// A typed client for gobgpd's gRPC API (apipb.GobgpApi, Debian's gobgpd 3.10.0).
// Every call has a deadline and fails fast when the sidecar is unreachable; the channel
// itself reconnects with backoff (grpc-js), and the callers (BgpSpeaker) retry whole
// reconcile passes with their own backoff. Errors name the operation and its object.
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { loadGobgpProtos } from './proto.js';
import { familyOf, fromApiPath, toApiPath, type ApiPath, type HostRoute } from './paths.js';

export interface GobgpClientOptions {
  /** gRPC target: "127.0.0.1:50051" or "unix:///run/gobgp/api.sock". */
  readonly target: string;
  /** Deadline of each unary call. */
  readonly callTimeoutMs?: number;
  /** Channel reconnect backoff bounds (grpc-js). */
  readonly reconnectBackoffMs?: { readonly initial: number; readonly max: number };
}

export interface GlobalSpec {
  readonly asn: number;
  readonly routerId: string;
  /** -1: no listening socket (outbound sessions only). */
  readonly listenPort: number;
  readonly listenAddresses?: readonly string[];
}

export interface PeerSpec {
  readonly address: string;
  readonly asn: number;
  /** This side's AS on the session; unset: gobgpd's global AS. */
  readonly localAsn?: number;
  readonly password?: string;
  readonly holdTimeSeconds: number;
  readonly keepaliveSeconds: number;
  /** eBGP multihop TTL; unset for directly connected peers. */
  readonly multihopTtl?: number;
  /** Seconds between connection attempts; default 5 (gobgpd's own default is 120). */
  readonly connectRetrySeconds?: number;
  readonly localAddress?: string;
  readonly passive?: boolean;
  /** Address families on this session; default: the peer address's own family. */
  readonly families?: readonly (4 | 6)[];
  /**
   * Graceful restart (RFC 4724) for every family of the session; unset: none. The router
   * keeps our routes as stale for `restartTimeSeconds` when the session drops without a
   * NOTIFICATION (gobgpd SIGKILLed or crashed). `restarting` sets the Restart State bit:
   * we come back from such a drop, so the router keeps the stale routes until our
   * End-of-RIB instead of flushing them at our OPEN. gobgpd clears it itself once synced,
   * so it is not compared by samePeerConfig.
   */
  readonly gracefulRestart?: { readonly restartTimeSeconds: number; readonly restarting?: boolean };
}

export type PeerSessionState = 'unknown' | 'idle' | 'connect' | 'active' | 'opensent' | 'openconfirm' | 'established';

export interface PeerStatus {
  readonly address: string;
  readonly asn: number;
  readonly state: PeerSessionState;
  readonly adminDown: boolean;
  readonly routerId: string;
  /** The settings gobgpd runs this peer with, read back (for diffing against PeerSpec). */
  readonly config: PeerSpec;
  /** Timers and counters of the session; only ListPeer has them (WatchEvent does not). */
  readonly session?: PeerSessionInfo;
}

/** What `show bgp summary` needs, as gobgpd reports it on ListPeer. */
export interface PeerSessionInfo {
  /** Unix seconds the session last became Established (timers.state.uptime). */
  readonly establishedAt?: number;
  /** Unix seconds of the last change to any other state (timers.state.downtime). */
  readonly lastChangeAt?: number;
  /** Prefixes from the peer (Adj-RIB-In) and how many of them passed import policy, all families. */
  readonly received: number;
  readonly accepted: number;
  /** Prefixes sent to the peer; only when ListPeer was asked for them (enableAdvertised). */
  readonly advertised?: number;
  /** NOTIFICATION messages received from / sent to the peer since gobgpd started. */
  readonly notificationsReceived: number;
  readonly notificationsSent: number;
}

const DEFAULT_CONNECT_RETRY_SECONDS = 5;

/** A gobgpd call that failed: `op` and `subject` say what was attempted on what. */
export class GobgpError extends Error {
  constructor(
    readonly op: string,
    readonly subject: string,
    readonly code: grpc.status | undefined,
    readonly details: string,
  ) {
    super(`gobgpd ${op}${subject ? ` ${subject}` : ''} failed: ${details}${code !== undefined ? ` (${grpc.status[code] ?? code})` : ''}`);
    this.name = 'GobgpError';
  }

  /** The sidecar is not reachable (down, restarting): retry after a backoff. */
  get unreachable(): boolean {
    return this.code === grpc.status.UNAVAILABLE || this.code === grpc.status.DEADLINE_EXCEEDED || this.code === grpc.status.CANCELLED;
  }
}

export interface PeerEventStream {
  cancel(): void;
}

type Callback = (err: grpc.ServiceError | null, res: Record<string, unknown>) => void;
type Unary = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: Callback) => grpc.ClientUnaryCall;
type ServerStream = (req: unknown, opts?: grpc.CallOptions) => grpc.ClientReadableStream<Record<string, unknown>>;
type ClientStream = (meta: grpc.Metadata, opts: grpc.CallOptions, cb: Callback) => grpc.ClientWritableStream<unknown>;

function wrapError(op: string, subject: string, err: unknown): GobgpError {
  if (err instanceof GobgpError) return err;
  const e = err as Partial<grpc.ServiceError>;
  return new GobgpError(op, subject, e.code, e.details || e.message || String(err));
}

const SESSION_STATES: Record<string, PeerSessionState> = {
  IDLE: 'idle', CONNECT: 'connect', ACTIVE: 'active', OPENSENT: 'opensent', OPENCONFIRM: 'openconfirm', ESTABLISHED: 'established',
};

type Obj = Record<string, unknown>;

/** google.protobuf.Timestamp (longs as numbers) -> Unix seconds; gobgpd leaves unset times out. */
function unixSeconds(t: unknown): number | undefined {
  const secs = Number((t as Obj | null | undefined)?.seconds ?? 0);
  return secs > 0 ? secs : undefined;
}

function parseSession(p: Obj, withAdvertised: boolean): PeerSessionInfo | undefined {
  const timers = ((p.timers as Obj | null | undefined)?.state ?? undefined) as Obj | undefined;
  if (!timers) return undefined; // a WatchEvent peer: no timers, no counters
  let received = 0;
  let accepted = 0;
  let advertised = 0;
  for (const a of (p.afi_safis ?? []) as Obj[]) {
    const st = (a.state ?? {}) as Obj;
    received += Number(st.received ?? 0);
    accepted += Number(st.accepted ?? 0);
    advertised += Number(st.advertised ?? 0);
  }
  const msgs = ((p.state as Obj | undefined)?.messages ?? {}) as Obj;
  const notifications = (dir: string): number => Number(((msgs[dir] ?? {}) as Obj).notification ?? 0);
  const establishedAt = unixSeconds(timers.uptime);
  const lastChangeAt = unixSeconds(timers.downtime);
  return {
    ...(establishedAt !== undefined ? { establishedAt } : {}),
    ...(lastChangeAt !== undefined ? { lastChangeAt } : {}),
    received,
    accepted,
    ...(withAdvertised ? { advertised } : {}),
    notificationsReceived: notifications('received'),
    notificationsSent: notifications('sent'),
  };
}

function parsePeer(p: Obj | undefined, withAdvertised = false): PeerStatus {
  const conf = (p?.conf ?? {}) as Obj;
  const state = (p?.state ?? {}) as Obj;
  const timers = ((p?.timers as Obj | undefined)?.config ?? {}) as Obj;
  const multihop = (p?.ebgp_multihop ?? {}) as Obj;
  const transport = (p?.transport ?? {}) as Obj;
  const address = String(conf.neighbor_address || state.neighbor_address || '');
  const asn = Number(conf.peer_asn || state.peer_asn || 0);
  const localAsn = Number(conf.local_asn || 0);
  const local = String(transport.local_address ?? '');
  const session = p ? parseSession(p, withAdvertised) : undefined;
  const gr = (p?.graceful_restart ?? {}) as Obj;
  const families = ((p?.afi_safis ?? []) as Obj[])
    .map((a) => (a.config ?? {}) as Obj)
    .filter((c) => c.enabled && (c.family as Obj | undefined)?.safi === 'SAFI_UNICAST')
    .map((c) => ((c.family as Obj).afi === 'AFI_IP6' ? 6 : 4) as 4 | 6);
  return {
    address,
    asn,
    state: SESSION_STATES[String(state.session_state)] ?? 'unknown',
    adminDown: state.admin_state === 'DOWN' || conf.admin_down === true,
    routerId: String(state.router_id ?? ''),
    config: {
      address,
      asn,
      ...(localAsn ? { localAsn } : {}),
      ...(conf.auth_password ? { password: String(conf.auth_password) } : {}),
      holdTimeSeconds: Number(timers.hold_time ?? 0),
      keepaliveSeconds: Number(timers.keepalive_interval ?? 0),
      ...(multihop.enabled ? { multihopTtl: Number(multihop.multihop_ttl) } : {}),
      connectRetrySeconds: Number(timers.connect_retry ?? 0),
      ...(local && local !== '0.0.0.0' && local !== '::' ? { localAddress: local } : {}),
      passive: transport.passive_mode === true,
      families,
      ...(gr.enabled ? { gracefulRestart: { restartTimeSeconds: Number(gr.restart_time ?? 0), restarting: gr.local_restarting === true } } : {}),
    },
    ...(session ? { session } : {}),
  };
}

/**
 * Whether gobgpd runs a peer as desired (UpdatePeer resets the session, so it is only
 * sent on a real change). gobgpd fills in the session's local address once connected,
 * so that is compared only when one is desired.
 */
export function samePeerConfig(actual: PeerSpec, desired: PeerSpec): boolean {
  const key = (p: PeerSpec, local: string): string => JSON.stringify([
    p.address.includes(':') ? new URL(`http://[${p.address}]/`).hostname : p.address,
    p.asn, p.localAsn ?? 0, p.password ?? '', p.holdTimeSeconds, p.keepaliveSeconds, p.multihopTtl ?? 0,
    p.connectRetrySeconds || DEFAULT_CONNECT_RETRY_SECONDS, local, p.passive ?? false,
    [...(p.families ?? [p.address.includes(':') ? 6 : 4])].sort(),
    p.gracefulRestart?.restartTimeSeconds ?? 0,
  ]);
  const wantLocal = desired.localAddress ?? '';
  // gobgpd reports the global AS as local_asn when none was set: only a wanted one compares.
  const actualAs = desired.localAsn === undefined ? { ...actual, localAsn: undefined } : actual;
  return key(actualAs, wantLocal ? (actual.localAddress ?? '') : '') === key(desired, wantLocal);
}

/** Checks a peer before gobgpd sees it (gobgpd would try DNS on a non-address). */
export function validatePeer(p: PeerSpec): void {
  const bad = (what: string): never => {
    throw new GobgpError('AddPeer', `peer ${p.address || '(no address)'}`, undefined, what);
  };
  if (!isIP(p.address)) bad(`address "${p.address}" is not an IP address`);
  if (!Number.isInteger(p.asn) || p.asn < 1 || p.asn > 0xffffffff) bad(`ASN ${p.asn} is not 1..4294967295`);
  if (p.localAsn !== undefined && (!Number.isInteger(p.localAsn) || p.localAsn < 1 || p.localAsn > 0xffffffff)) bad(`local ASN ${p.localAsn} is not 1..4294967295`);
  if (!Number.isInteger(p.holdTimeSeconds) || (p.holdTimeSeconds !== 0 && p.holdTimeSeconds < 3)) bad(`hold time ${p.holdTimeSeconds}s must be 0 or >= 3`);
  if (!Number.isInteger(p.keepaliveSeconds) || p.keepaliveSeconds < 0 || (p.holdTimeSeconds > 0 && p.keepaliveSeconds >= p.holdTimeSeconds)) {
    bad(`keepalive ${p.keepaliveSeconds}s must be below the hold time ${p.holdTimeSeconds}s`);
  }
  if (p.multihopTtl !== undefined && !(Number.isInteger(p.multihopTtl) && p.multihopTtl >= 1 && p.multihopTtl <= 255)) bad(`multihop TTL ${p.multihopTtl} is not 1..255`);
  if (p.localAddress && !isIP(p.localAddress)) bad(`local address "${p.localAddress}" is not an IP address`);
  const rt = p.gracefulRestart?.restartTimeSeconds;
  // 12 bits on the wire (RFC 4724 section 3).
  if (rt !== undefined && !(Number.isInteger(rt) && rt >= 1 && rt <= 4095)) bad(`graceful restart time ${rt}s is not 1..4095`);
}

export function peerToApi(p: PeerSpec): Record<string, unknown> {
  validatePeer(p);
  const fams = p.families ?? [p.address.includes(':') ? 6 : 4];
  const gr = p.gracefulRestart;
  return {
    conf: { neighbor_address: p.address, peer_asn: p.asn, local_asn: p.localAsn ?? 0, auth_password: p.password ?? '' },
    timers: { config: { hold_time: p.holdTimeSeconds, keepalive_interval: p.keepaliveSeconds, connect_retry: p.connectRetrySeconds || DEFAULT_CONNECT_RETRY_SECONDS } },
    ebgp_multihop: p.multihopTtl ? { enabled: true, multihop_ttl: p.multihopTtl } : { enabled: false, multihop_ttl: 0 },
    transport: { local_address: p.localAddress ?? '', passive_mode: p.passive ?? false },
    afi_safis: fams.map((f) => ({ config: { family: familyOf(f), enabled: true }, ...(gr ? { mp_graceful_restart: { config: { enabled: true } } } : {}) })),
    // No notification_enabled (RFC 8538 N bit): with it, a NOTIFICATION we send (BFD down,
    // hold timer) would also leave our routes stale at the router instead of withdrawn.
    ...(gr ? { graceful_restart: { enabled: true, restart_time: gr.restartTimeSeconds, local_restarting: gr.restarting ?? false } } : {}),
  };
}

export class GobgpClient {
  private readonly client: grpc.Client & Record<string, unknown>;
  private readonly timeoutMs: number;

  constructor(readonly opts: GobgpClientOptions) {
    const { Service } = loadGobgpProtos();
    const backoff = opts.reconnectBackoffMs ?? { initial: 100, max: 2000 };
    this.client = new Service(opts.target, grpc.credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': backoff.initial,
      'grpc.max_reconnect_backoff_ms': backoff.max,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    }) as grpc.Client & Record<string, unknown>;
    this.timeoutMs = opts.callTimeoutMs ?? 10000;
  }

  private unary(op: string, subject: string, req: unknown, timeoutMs = this.timeoutMs): Promise<Record<string, unknown>> {
    const fn = this.client[op] as Unary;
    return new Promise((resolve, reject) => {
      fn.call(this.client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(wrapError(op, subject, err));
        else resolve(res ?? {});
      });
    });
  }

  private collect(op: string, subject: string, req: unknown, timeoutMs = this.timeoutMs * 6): Promise<Record<string, unknown>[]> {
    const fn = this.client[op] as ServerStream;
    return new Promise((resolve, reject) => {
      const out: Record<string, unknown>[] = [];
      const call = fn.call(this.client, req, { deadline: Date.now() + timeoutMs });
      call.on('data', (d: Record<string, unknown>) => out.push(d));
      call.on('error', (err) => reject(wrapError(op, subject, err)));
      call.on('end', () => resolve(out));
    });
  }

  /** Resolves when the channel is connected; rejects (unreachable) after `timeoutMs`. */
  waitReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (err) => {
        if (err) reject(new GobgpError('connect', this.opts.target, grpc.status.UNAVAILABLE, err.message));
        else resolve();
      });
    });
  }

  close(): void {
    this.client.close();
  }

  // ---------- global ----------

  async startBgp(g: GlobalSpec): Promise<void> {
    await this.unary('StartBgp', `(AS ${g.asn}, router id ${g.routerId})`, {
      global: { asn: g.asn, router_id: g.routerId, listen_port: g.listenPort, listen_addresses: g.listenAddresses ?? [] },
    });
  }

  /** The running global config, or undefined when BGP has not been started (AS 0). */
  async getBgp(): Promise<GlobalSpec | undefined> {
    const res = await this.unary('GetBgp', '', {});
    const g = (res.global ?? {}) as Record<string, unknown>;
    if (!g.asn) return undefined;
    return { asn: Number(g.asn), routerId: String(g.router_id), listenPort: Number(g.listen_port), listenAddresses: (g.listen_addresses as string[]) ?? [] };
  }

  async stopBgp(): Promise<void> {
    await this.unary('StopBgp', '', {});
  }

  // ---------- peers ----------

  async addPeer(p: PeerSpec): Promise<void> {
    await this.unary('AddPeer', `peer ${p.address} (AS ${p.asn})`, { peer: peerToApi(p) });
  }

  /** Changes a peer's settings in place; gobgpd resets the session when it must. */
  async updatePeer(p: PeerSpec): Promise<void> {
    await this.unary('UpdatePeer', `peer ${p.address} (AS ${p.asn})`, { peer: peerToApi(p), do_soft_reset_in: true });
  }

  async deletePeer(address: string): Promise<void> {
    await this.unary('DeletePeer', `peer ${address}`, { address });
  }

  /**
   * `advertised`: also count the prefixes sent to each peer (gobgpd walks its tables for
   * that, so the reconcile loop leaves it off and `kst status` asks for it).
   */
  async listPeers(address = '', opts: { advertised?: boolean; timeoutMs?: number } = {}): Promise<PeerStatus[]> {
    const advertised = opts.advertised ?? false;
    const res = await this.collect('ListPeer', address ? `peer ${address}` : '', { address, enableAdvertised: advertised }, opts.timeoutMs);
    return res.map((r) => parsePeer(r.peer as Record<string, unknown>, advertised));
  }

  /** Brings an administratively disabled session back (e.g. BFD up again). */
  async enablePeer(address: string): Promise<void> {
    await this.unary('EnablePeer', `peer ${address}`, { address });
  }

  /** Shuts a session down administratively (e.g. BFD detected the path down). */
  async disablePeer(address: string, communication = ''): Promise<void> {
    await this.unary('DisablePeer', `peer ${address}`, { address, communication });
  }

  /** Hard reset (new TCP session) unless `soft`. */
  /** Replaces gobgpd's defined sets and policies in one call (gobgpd keeps its assignments). */
  async setPolicies(p: { definedSets: readonly unknown[]; policies: readonly unknown[] }): Promise<void> {
    await this.unary('SetPolicies', 'export policy', { defined_sets: p.definedSets, policies: p.policies, assignments: [] });
  }

  /** Sets one policy assignment (e.g. the global export policies and default action). */
  async setPolicyAssignment(assignment: unknown): Promise<void> {
    await this.unary('SetPolicyAssignment', 'policy assignment', { assignment });
  }

  /** Re-sends the Adj-RIB-Out through the current export policy (no session reset). */
  async softResetOut(address: string): Promise<void> {
    await this.unary('ResetPeer', `peer ${address}`, { address, communication: '', soft: true, direction: 'OUT' });
  }

  async resetPeer(address: string, opts: { soft?: boolean; communication?: string } = {}): Promise<void> {
    await this.unary('ResetPeer', `peer ${address}`, { address, communication: opts.communication ?? '', soft: opts.soft ?? false, direction: 'BOTH' });
  }

  /**
   * Peer state changes as they happen (WatchEvent). `onEnd` is called once when the stream
   * ends or fails (gobgpd gone); the caller re-subscribes with its backoff.
   */
  watchPeers(onPeer: (p: PeerStatus) => void, onEnd: (err: GobgpError | undefined) => void): PeerEventStream {
    const fn = this.client.WatchEvent as ServerStream;
    const call = fn.call(this.client, { peer: {} });
    let ended = false;
    const end = (err: GobgpError | undefined): void => {
      if (ended) return;
      ended = true;
      onEnd(err);
    };
    call.on('data', (d: Record<string, unknown>) => {
      const ev = d.peer as Record<string, unknown> | undefined;
      if (ev && ev.type === 'STATE' && ev.peer) onPeer(parsePeer(ev.peer as Record<string, unknown>));
    });
    call.on('error', (err) => end(wrapError('WatchEvent', '', err)));
    call.on('end', () => end(undefined));
    return {
      cancel: () => {
        ended = true;
        call.cancel();
      },
    };
  }

  // ---------- paths ----------

  async addPath(route: HostRoute): Promise<void> {
    const path = toApiPath(route);
    await this.unary('AddPath', `path ${route.prefix}`, { table_type: 'GLOBAL', path });
  }

  async deletePath(route: HostRoute): Promise<void> {
    const path = toApiPath(route);
    await this.unary('DeletePath', `path ${route.prefix}`, { table_type: 'GLOBAL', family: path.family, path });
  }

  /**
   * Adds and withdraws many routes in one AddPathStream call (10,000 VIPs in one go).
   * gobgpd stops at the first path it refuses; the caller falls back to single calls to
   * find out which one it was.
   */
  async applyPaths(add: readonly HostRoute[], withdraw: readonly HostRoute[], chunk = 1000): Promise<void> {
    const paths = [...withdraw.map((r) => toApiPath(r, true)), ...add.map((r) => toApiPath(r))];
    if (!paths.length) return;
    const fn = this.client.AddPathStream as ClientStream;
    await new Promise<void>((resolve, reject) => {
      const call = fn.call(this.client, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs * 6 }, (err) => {
        if (err) reject(wrapError('AddPathStream', `(${add.length} add, ${withdraw.length} withdraw)`, err));
        else resolve();
      });
      for (let i = 0; i < paths.length; i += chunk) call.write({ table_type: 'GLOBAL', paths: paths.slice(i, i + chunk) });
      call.end();
    });
  }

  /** Routes this gobgpd originates itself (not learned from peers), for one family. */
  async listLocalRoutes(family: 4 | 6): Promise<HostRoute[]> {
    const res = await this.collect('ListPath', `IPv${family} paths`, { table_type: 'GLOBAL', family: familyOf(family), name: '' });
    const out: HostRoute[] = [];
    for (const r of res) {
      const dest = r.destination as { paths?: ApiPath[] } | undefined;
      for (const p of dest?.paths ?? []) {
        if (!isLocal(p)) continue;
        const route = fromApiPath(p);
        if (route) out.push(route);
      }
    }
    return out;
  }
}

/** gobgpd reports locally originated paths with no neighbour ("<nil>" or empty). */
function isLocal(p: ApiPath): boolean {
  const n = p.neighbor_ip ?? '';
  return n === '' || n === '<nil>' || n === '0.0.0.0' || n === '::';
}
