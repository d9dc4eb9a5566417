// What the agent reports on GET /status and `kst status` prints: one snapshot of the VIPs
// this node serves, its BGP and BFD sessions and how its reconcilers last ran. The agent
// fills it in through ObserveServer.setStatusProvider; the types here are the wire format,
// so they use plain JSON values (strings, numbers, ISO timestamps) and nothing from other
// areas (observe sits below bgp and bfd and imports neither).
import { z } from 'zod';
import type { MemoryReport } from './memory.js';

export interface VipReport {
  readonly vip: string;
  /** "namespace/name" of the Service that owns the VIP. */
  readonly service: string;
  /** The address pool it was allocated from; absent for annotation VIPs. */
  readonly pool?: string;
  /** Addresses of the endpoints traffic goes to. */
  readonly endpoints: readonly string[];
  /** How many hash buckets point at each endpoint address. */
  readonly bucketsPerEndpoint: Readonly<Record<string, number>>;
  /** Whether this node announces the VIP to its BGP peers right now. */
  readonly announced: boolean;
  /** Why it is (not) announced, when that is not obvious: "no ready endpoints", "draining". */
  readonly reason?: string;
}

/** GoBGP's peer FSM states, lower case. */
export type BgpPeerState = 'unknown' | 'idle' | 'connect' | 'active' | 'opensent' | 'openconfirm' | 'established';

export interface BgpPeerReport {
  readonly address: string;
  readonly asn: number;
  readonly state: BgpPeerState;
  /** Seconds since the session was established; absent when it is not. */
  readonly uptimeSeconds?: number;
  // The details below (`show bgp summary`) are absent from older agents: `kst status`
  // then prints the short table.
  /** Held down administratively (by the agent for BFD or maintenance, or by an operator). */
  readonly adminDown?: boolean;
  /** Seconds since the session left Established (or since the agent first saw it down). */
  readonly downtimeSeconds?: number;
  /** Prefixes received from the peer, accepted by import policy, and advertised to it. */
  readonly prefixesReceived?: number;
  readonly prefixesAccepted?: number;
  readonly prefixesAdvertised?: number;
  /** State of the BFD session to the same address, when the agent runs one. */
  readonly bfdState?: string;
  /** Why the session last went down, and when (ISO 8601). */
  readonly lastError?: string;
  readonly lastErrorAt?: string;
}

export type BfdSessionState = 'AdminDown' | 'Down' | 'Init' | 'Up';

export interface BfdCountersReport {
  readonly rxPackets: number;
  readonly txPackets: number;
  readonly stateChanges: number;
  /** Received packets dropped, by reason. */
  readonly dropped?: Readonly<Partial<Record<string, number>>>;
}

export interface BfdSessionReport {
  readonly peer: string;
  readonly state: BfdSessionState;
  /** RFC 5880 diagnostic names: "none", "control-detection-time-expired"... */
  readonly localDiag: string;
  readonly remoteDiag: string;
  /** Seconds since the session came Up; absent when it is not Up. */
  readonly uptimeSeconds?: number;
  readonly txIntervalMs: number;
  readonly rxIntervalMs: number;
  readonly detectTimeMs: number;
  readonly counters: BfdCountersReport;
}

export interface ReconcileReport {
  /** "dataplane", "podnet", "bgp", "bfd". */
  readonly area: string;
  readonly lastResult: 'ok' | 'error';
  readonly lastError?: string;
  /** ISO 8601 time the last run started. */
  readonly lastRunAt: string;
  readonly durationMs: number;
}

/** The flow-hash backend the agent chose at start (config dataplane.flowHash) and why. */
export interface FlowHashReport {
  readonly backend: 'nftables' | 'iptables-legacy';
  readonly reason: string;
}

/** What the agent's kernel probe found at start (src/agent/kernel-report.ts). */
export interface KernelFeatureReport {
  readonly feature: string;
  readonly state: 'present' | 'absent' | 'unknown';
  /** The kernel's or the tool's answer when not present. */
  readonly why?: string;
}

/** A need of the configuration that this node's kernel does not meet. */
export interface KernelNeedReport {
  /** The role that needs it: "tunnel" (mpls: the serving node's sending side) or "serving" (pods). */
  readonly role: string;
  /** Alternatives: any one would do. */
  readonly features: readonly string[];
  /** Only VIPs of this family need it. */
  readonly vipFamily?: number;
  /** What is missing and what to turn on, in an operator's words. */
  readonly message: string;
}

export interface KernelReport {
  readonly features: readonly KernelFeatureReport[];
  readonly missing: readonly KernelNeedReport[];
}

/** One Kubernetes feed (informer) as the agent sees it. */
export interface KubeFeedReport {
  /** "services", "endpointslices", "nodes", "pods". */
  readonly feed: string;
  /** Seconds since its last event, bookmark or list; absent before the first list. */
  readonly lastEventAgeSeconds?: number;
  /** No sign of life for longer than the stale threshold: the last known state stays in force. */
  readonly stale: boolean;
  /** Its last list or watch failed (it retries on its own). */
  readonly failing: boolean;
  readonly resourceVersion?: string;
  /** ISO 8601 time of its last full list. */
  readonly lastListAt?: string;
  readonly lastError?: string;
}

/** The agent's Kubernetes side: its feeds and whether it holds the Lease. */
export interface KubeReport {
  /** This agent holds the leader Lease (writes LoadBalancer status and stored tables). */
  readonly leader: boolean;
  /** The holder last seen in the Lease (maybe this agent). */
  readonly leaseHolder?: string;
  readonly feeds: readonly KubeFeedReport[];
}

/** The running configuration (live reloads: docs/configuration.md). */
export interface ConfigReport {
  /** 1 at start, +1 per version applied live. */
  readonly generation: number;
  /** Fingerprint of the running configuration (also the label of kst_config_info). */
  readonly hash: string;
  readonly file?: string;
  /** The last time the file changed: what became of that version. */
  readonly lastReload?: { readonly result: 'ok' | 'invalid' | 'unchanged' | 'needs_restart'; readonly at: string; readonly message: string };
}

export interface StatusReport {
  /** The node the agent runs on. */
  readonly node?: string;
  /** ISO 8601 time the report was made; the server fills it in when the provider leaves it out. */
  readonly generatedAt?: string;
  /** Absent from older agents. */
  readonly flowHash?: FlowHashReport;
  /** Absent from older agents. */
  readonly kernel?: KernelReport;
  readonly vips: readonly VipReport[];
  readonly bgpPeers: readonly BgpPeerReport[];
  readonly bfdSessions: readonly BfdSessionReport[];
  readonly reconcile: readonly ReconcileReport[];
  /** Absent from older agents. */
  readonly kube?: KubeReport;
  /** Absent from older agents. */
  readonly config?: ConfigReport;
  /** Resident set and each thread's heap (observe/memory.ts); absent from older agents. */
  readonly memory?: MemoryReport;
}

export function emptyStatusReport(node?: string): StatusReport {
  return { ...(node ? { node } : {}), vips: [], bgpPeers: [], bfdSessions: [], reconcile: [] };
}

const count = z.number().int().nonnegative();
const duration = z.number().nonnegative();

const statusReportSchema = z.object({
  node: z.string().optional(),
  generatedAt: z.string().optional(),
  flowHash: z.object({ backend: z.enum(['nftables', 'iptables-legacy']), reason: z.string() }).optional(),
  kernel: z
    .object({
      features: z.array(z.object({ feature: z.string(), state: z.enum(['present', 'absent', 'unknown']), why: z.string().optional() })),
      missing: z.array(z.object({ role: z.string(), features: z.array(z.string()), vipFamily: z.number().int().optional(), message: z.string() })),
    })
    .optional(),
  vips: z.array(
    z.object({
      vip: z.string(),
      service: z.string(),
      pool: z.string().optional(),
      endpoints: z.array(z.string()),
      bucketsPerEndpoint: z.record(z.string(), count),
      announced: z.boolean(),
      reason: z.string().optional(),
    }),
  ),
  bgpPeers: z.array(
    z.object({
      address: z.string(),
      asn: count,
      state: z.enum(['unknown', 'idle', 'connect', 'active', 'opensent', 'openconfirm', 'established']),
      uptimeSeconds: duration.optional(),
      adminDown: z.boolean().optional(),
      downtimeSeconds: duration.optional(),
      prefixesReceived: count.optional(),
      prefixesAccepted: count.optional(),
      prefixesAdvertised: count.optional(),
      bfdState: z.string().optional(),
      lastError: z.string().optional(),
      lastErrorAt: z.string().optional(),
    }),
  ),
  bfdSessions: z.array(
    z.object({
      peer: z.string(),
      state: z.enum(['AdminDown', 'Down', 'Init', 'Up']),
      localDiag: z.string(),
      remoteDiag: z.string(),
      uptimeSeconds: duration.optional(),
      txIntervalMs: duration,
      rxIntervalMs: duration,
      detectTimeMs: duration,
      counters: z.object({
        rxPackets: count,
        txPackets: count,
        stateChanges: count,
        dropped: z.record(z.string(), count).optional(),
      }),
    }),
  ),
  reconcile: z.array(
    z.object({
      area: z.string(),
      lastResult: z.enum(['ok', 'error']),
      lastError: z.string().optional(),
      lastRunAt: z.string(),
      durationMs: duration,
    }),
  ),
  kube: z
    .object({
      leader: z.boolean(),
      leaseHolder: z.string().optional(),
      feeds: z.array(
        z.object({
          feed: z.string(),
          lastEventAgeSeconds: duration.optional(),
          stale: z.boolean(),
          failing: z.boolean(),
          resourceVersion: z.string().optional(),
          lastListAt: z.string().optional(),
          lastError: z.string().optional(),
        }),
      ),
    })
    .optional(),
  config: z
    .object({
      generation: count,
      hash: z.string(),
      file: z.string().optional(),
      lastReload: z.object({ result: z.enum(['ok', 'invalid', 'unchanged', 'needs_restart']), at: z.string(), message: z.string() }).optional(),
    })
    .optional(),
  memory: z
    .object({
      rssBytes: count,
      threads: z.array(
        z.object({ thread: z.string(), heapUsedBytes: count, heapTotalBytes: count, externalBytes: count, arrayBuffersBytes: count }),
      ),
    })
    .optional(),
});

/**
 * Checks a /status body (from the network, so untrusted) and returns it typed. Throws an
 * error naming the first bad field, e.g. `status: bgpPeers[0].state: Invalid option...`.
 */
export function parseStatusReport(body: unknown): StatusReport {
  const parsed = statusReportSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') : '(top level)';
    throw new Error(`status: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}
