// The BGP sessions of this node, from each desired state's plan (model/peers.ts): which
// peers it dials (their nodeSelector), with which local AS, router id, source address and
// password. Applied only when the plan changes: a peer that leaves the node's selection is
// deleted from gobgpd (the router drops its routes with the session), a new one added,
// BFD sessions follow the same set.
//
// Passwords are read here, from the Secret (through the API) or the file the plan names,
// at each plan change and on `refresh()`. They go to gobgpd and nowhere else: not to the
// logs, Events, status or metrics (messages name the Secret or file, never the value).
// A peer whose password cannot be read is added but held administratively down: dialling
// it without its password would be a silent downgrade, or a session that never comes up.
import { readFile } from 'node:fs/promises';
import { nodeBgpKey, type NodeBgp, type NodePeer, type PasswordSource } from '../model/index.js';
import { peerSpecFromPlan, type BgpSpeaker, type PeerSpec } from '../bgp/index.js';
import type { Logger } from '../observe/index.js';

export interface PeerSessionsOptions {
  readonly speaker: BgpSpeaker;
  readonly logger: Logger;
  /** gobgpd's listen port (bgp.listenPort). */
  readonly listenPort: number;
  /** Reads a Secret key in the agent's namespace (kube/secrets.ts). */
  readonly readSecret?: (name: string, key: string) => Promise<string>;
  /** The kernel's source address towards a peer: the router id when none is planned. */
  readonly localAddressTowards: (peer: string) => Promise<string | undefined>;
  /** BFD follows the node's peers (absent: no BFD). */
  readonly setBfdPeers?: (peers: readonly NodePeer[]) => Promise<void>;
  /** Settings every peer gets besides its plan: graceful restart (bgp/speaker.ts gracefulRestartSpec). */
  readonly peerDefaults?: Partial<PeerSpec>;
}

export function describePasswordSource(s: PasswordSource): string {
  return s.kind === 'secret' ? `Secret ${s.name} key "${s.key}"` : `file ${s.path}`;
}

export class PeerSessions {
  private appliedKey: string | undefined;
  private lastPlan: NodeBgp | undefined;
  private started = false;

  constructor(private readonly opts: PeerSessionsOptions) {}

  /** Applies the node's plan if it differs from the last one applied; throws what failed (for the reconcile report). */
  async set(plan: NodeBgp | undefined, force = false): Promise<void> {
    const key = nodeBgpKey(plan);
    if (!force && key === this.appliedKey) return;
    const { speaker, logger: log } = this.opts;
    const peers = plan?.peers ?? [];
    const routerId = plan?.routerId ?? (await this.firstIpv4Towards(peers));
    if (!routerId) {
      // Keep what runs: a router id cannot be guessed, and no peer means nothing to dial.
      if (peers.length > 0) throw new Error('no BGP router id: set bgp.routerId, or the node annotation cmd.nu/bgp-router-id (no IPv4 address towards the peers was found)');
      speaker.setPeers([]);
      this.appliedKey = key;
      return;
    }
    const specs: PeerSpec[] = [];
    const notes = new Map<string, string>();
    const held = new Map<string, string>();
    for (const p of peers) {
      let password: string | undefined;
      if (p.password) {
        const where = describePasswordSource(p.password);
        try {
          password = await this.readPassword(p.password);
          notes.set(p.address, `this session uses the TCP-MD5 password from ${where}: if the router has a different one (or none), it drops our TCP segments without an answer and the session stays in connect/active; check both sides`);
        } catch (err) {
          const why = `TCP-MD5 password unavailable (${where}): ${err instanceof Error ? err.message : String(err)}`;
          held.set(p.address, why);
          log.error(`bgp peer ${p.name} (${p.address}): ${why}; held administratively down`, { peer: p.address });
        }
      }
      specs.push(peerSpecFromPlan(p, password, this.opts.peerDefaults));
    }
    speaker.setGlobal({ asn: plan!.asn, routerId, listenPort: this.opts.listenPort });
    speaker.setPeers(specs, { notes, held });
    if (!this.started) {
      this.started = true;
      speaker.start();
    }
    await this.opts.setBfdPeers?.(peers);
    if (key !== this.appliedKey) log.info(`bgp: AS ${plan!.asn} router id ${routerId}; peers ${peers.map((p) => `${p.name} (${p.address} AS ${p.asn}, local AS ${p.localAsn}${p.sourceAddress ? `, from ${p.sourceAddress}` : ''})`).join(', ') || 'none'}`);
    this.lastPlan = plan;
    // A password that could not be read is retried with the agent's backoff (the step
    // failed), until the Secret or file is there: the plan is not "applied" before.
    if (held.size > 0) {
      this.appliedKey = undefined;
      throw new Error([...held.values()].join('; '));
    }
    this.appliedKey = key;
  }

  /** Re-reads the passwords of the last plan (a rotated Secret) and applies any change. */
  async refresh(): Promise<void> {
    if (this.appliedKey !== undefined) await this.set(this.lastPlan, true);
  }

  private async readPassword(s: PasswordSource): Promise<string> {
    if (s.kind === 'file') {
      const text = (await readFile(s.path, 'utf8')).replace(/\r?\n$/, '');
      if (text === '') throw new Error('the file is empty');
      return text;
    }
    if (!this.opts.readSecret) throw new Error('no Kubernetes API to read Secrets from');
    return this.opts.readSecret(s.name, s.key);
  }

  private async firstIpv4Towards(peers: readonly NodePeer[]): Promise<string | undefined> {
    for (const p of peers) {
      const local = p.sourceAddress ?? (await this.opts.localAddressTowards(p.address));
      if (local && !local.includes(':')) return local;
    }
    return undefined;
  }
}
