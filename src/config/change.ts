// What a new version of the configuration changes, and whether the running agent can take
// it without a restart (docs/configuration.md, "Changing the configuration live"). Pure:
// two validated configs in, a classification out; the agent applies or rejects it whole.
//
// Live fields are those the agent reads afresh on every converge (the model's pools, peers,
// selectors; BFD profiles; the log level). Everything else shapes processes, sockets or the
// kernel layout built at start (encapsulation, buckets, hash seed, gobgpd's socket, listen
// ports, the API address, feed timings) and needs a restart: a new version that changes one
// of those is rejected as a whole, so the agent never runs half of one version.
import { createHash } from 'node:crypto';
import type { Config } from './schema.js';

/** Fields (dotted paths) the agent applies live; a change anywhere else needs a restart. */
export const LIVE_FIELDS: readonly string[] = [
  'logLevel',
  'tunnelNodeSelector',
  'pools',
  'bgp.asn',
  'bgp.routerId',
  'bgp.peers',
  'bgp.maintenanceTaint',
  'bgp.withdrawWhenCordoned',
  'bfd.profiles',
];

export type ConfigChange =
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'live'; readonly changed: readonly string[] }
  | { readonly kind: 'needs-restart'; readonly changed: readonly string[]; readonly restartFields: readonly string[]; readonly why: string };

/** What the running agent was built with, beyond its config: parts it made only if needed at start. */
export interface RunningParts {
  /** A BFD runner exists (some peer had a bfdProfile at start). */
  readonly bfd: boolean;
}

/** A short, stable fingerprint of a validated config (key order does not matter). */
export function configHash(config: Config): string {
  return createHash('sha256').update(canonical(config)).digest('hex').slice(0, 12);
}

/**
 * The changed fields of `next` against `running`, at the granularity of LIVE_FIELDS and of
 * each top-level or second-level field elsewhere; then whether every one is live.
 */
export function classifyConfigChange(running: Config, next: Config, parts: RunningParts): ConfigChange {
  const changed = changedFields(running as unknown as Record<string, unknown>, next as unknown as Record<string, unknown>, '');
  if (changed.length === 0) return { kind: 'unchanged' };
  const restartFields = changed.filter((f) => !LIVE_FIELDS.includes(f));
  if (restartFields.length > 0) {
    return { kind: 'needs-restart', changed, restartFields, why: `${restartFields.join(', ')} cannot change while the agent runs (set at start: processes, sockets or the kernel layout)` };
  }
  // BFD runs on a worker made at start only when some peer used it; a first BFD peer needs it.
  if (!parts.bfd && next.bgp.peers.some((p) => p.bfdProfile !== undefined)) {
    return { kind: 'needs-restart', changed, restartFields: ['bgp.peers[].bfdProfile'], why: 'bgp.peers[].bfdProfile: this agent started without any BFD peer, so it runs no BFD; the first BFD peer needs a restart' };
  }
  return { kind: 'live', changed };
}

function changedFields(a: Record<string, unknown>, b: Record<string, unknown>, prefix: string): string[] {
  const out: string[] = [];
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const path = prefix ? `${prefix}.${k}` : k;
    const x = a[k];
    const y = b[k];
    if (canonical(x) === canonical(y)) continue;
    // Descend into sections (bgp, bfd, dataplane...) but not into live fields or lists.
    if (!LIVE_FIELDS.includes(path) && !prefix && isPlainObject(x) && isPlainObject(y)) out.push(...changedFields(x, y, path));
    else out.push(path);
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** JSON with sorted keys; undefined fields drop out, as in JSON.stringify. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) => (isPlainObject(val) ? Object.fromEntries(Object.keys(val).sort().map((k) => [k, val[k]])) : val)) ?? 'undefined';
}
