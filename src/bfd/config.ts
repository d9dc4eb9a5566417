// BFD sessions from the agent's configuration: one session per BGP peer that names a
// profile under bfd.profiles. The local address is the one the kernel would use towards
// the peer (single hop: the address on the shared link).
import type { BfdProfileConfig } from '../config/index.js';

/** What BFD needs of a BGP peer (a configured peer, or one session of a node's plan). */
export interface BfdPeer {
  readonly address: string;
  readonly bfdProfile?: string;
  readonly multihopTtl?: number;
}
import { runCommand, type CommandRunner } from '../system/index.js';
import type { BfdSessionSpec } from './manager.js';

export interface BfdPlan {
  readonly sessions: readonly BfdSessionSpec[];
  /** Peers that name an unknown profile or have no local address: one sentence each. */
  readonly problems: readonly string[];
}

export function bfdSessionsFor(
  peers: readonly BfdPeer[],
  profiles: Readonly<Record<string, BfdProfileConfig>>,
  localAddress: (peer: string) => string | undefined,
): BfdPlan {
  const sessions: BfdSessionSpec[] = [];
  const problems: string[] = [];
  for (const peer of peers) {
    if (!peer.bfdProfile) continue;
    const profile = profiles[peer.bfdProfile];
    if (!profile) {
      problems.push(`bgp.peers[${peer.address}].bfdProfile: no profile "${peer.bfdProfile}" under bfd.profiles (known: ${Object.keys(profiles).join(', ') || 'none'})`);
      continue;
    }
    if (peer.multihopTtl !== undefined && peer.multihopTtl > 1) {
      problems.push(`bgp.peers[${peer.address}]: BFD is single-hop (RFC 5881) but the peer is multihop (multihopTtl ${peer.multihopTtl})`);
      continue;
    }
    const local = localAddress(peer.address);
    if (!local) {
      problems.push(`bgp.peers[${peer.address}]: no local address towards the peer, BFD session not started`);
      continue;
    }
    sessions.push({ peer: peer.address, local, profile: { minTxMs: profile.minTxMs, minRxMs: profile.minRxMs, multiplier: profile.multiplier } });
  }
  return { sessions, problems };
}

/** The source address the kernel picks towards `peer` (`ip route get`), or undefined. */
export async function localAddressTowards(peer: string, opts: { run?: CommandRunner; netns?: string } = {}): Promise<string | undefined> {
  const run = opts.run ?? runCommand;
  const r = await run('ip', ['-j', 'route', 'get', peer], { allowFailure: true, ...(opts.netns ? { netns: opts.netns } : {}) });
  if (r.code !== 0) return undefined;
  try {
    const routes = JSON.parse(r.stdout) as Array<{ prefsrc?: string }>;
    return routes[0]?.prefsrc;
  } catch {
    return undefined;
  }
}
