// Chooses the tunnel node's flow-hash backend (config dataplane.flowHash) once, at start.
// nftables jhash and xtables HMARK give the same packet different buckets, so the choice is
// cluster-wide in effect: `auto` falls back only where nftables cannot work at all (a kernel
// whose nf_tables lacks the inet family), and says so loudly (log + Node Event).
//
// Both probes are check-only: `nft -c` and `iptables-legacy-restore --test` send nothing
// that stays in the kernel (`iptables-legacy -t mangle -L` may create the empty built-in
// mangle table, which the backend needs anyway).
import type { Config } from '../config/index.js';
import type { FlowHashBackend } from './state.js';
import type { EventSink, Logger } from '../observe/index.js';
import { runCommand, type CommandRunner } from '../system/index.js';

export type FlowHashSetting = Config['dataplane']['flowHash'];

/** One backend's probe: it works here, or why it cannot hash flows on this node. */
export type BackendProbe = { readonly ok: true } | { readonly ok: false; readonly why: string };

/** What was probed; a backend that was not probed is absent. */
export type ProbeResults = Partial<Readonly<Record<FlowHashBackend, BackendProbe>>>;

export type FlowHashDecision =
  | {
      readonly ok: true;
      readonly backend: FlowHashBackend;
      readonly reason: string;
      /** `auto` had to use iptables-legacy because nftables cannot work here. */
      readonly fellBack: boolean;
      /** Set explicitly, but the probe says it cannot work here: the data plane will fail. */
      readonly problem?: string;
    }
  | { readonly ok: false; readonly error: string };

export interface ProbeOptions {
  /** Probe inside this network namespace (tests); default: the process's own. */
  readonly netns?: string;
  readonly run?: CommandRunner;
}

const TIMEOUT_MS = 10_000;
const NOT_PROBED: BackendProbe = { ok: false, why: 'not probed' };

/** Pure: the setting and the probe results -> the backend to use, or why there is none. */
export function decideFlowHash(setting: FlowHashSetting, results: ProbeResults): FlowHashDecision {
  if (setting !== 'auto') {
    const r = results[setting];
    const problem = r && !r.ok ? `dataplane.flowHash is ${setting}, but ${setting} cannot hash flows on this node: ${r.why}` : undefined;
    return { ok: true, backend: setting, reason: 'set by dataplane.flowHash', fellBack: false, ...(problem ? { problem } : {}) };
  }
  const nft = results.nftables ?? NOT_PROBED;
  if (nft.ok) return { ok: true, backend: 'nftables', reason: 'auto: nftables can create an inet table on this node', fellBack: false };
  const xt = results['iptables-legacy'] ?? NOT_PROBED;
  if (xt.ok) {
    return { ok: true, backend: 'iptables-legacy', reason: `auto: nftables cannot hash flows on this node (${nft.why}); iptables-legacy HMARK works`, fellBack: true };
  }
  return { ok: false, error: `dataplane.flowHash auto: no flow-hash backend works on this node: nftables: ${nft.why}; iptables-legacy: ${xt.why}` };
}

/** Probes what the setting needs (auto: nftables, then iptables-legacy only if nftables fails) and decides. */
export async function chooseFlowHash(setting: FlowHashSetting, opts: ProbeOptions = {}): Promise<FlowHashDecision> {
  return (await probeFlowHash(setting, opts)).decision;
}

/** chooseFlowHash, with the probe results (the kernel report reuses them). */
export async function probeFlowHash(setting: FlowHashSetting, opts: ProbeOptions = {}): Promise<{ readonly decision: FlowHashDecision; readonly results: ProbeResults }> {
  let results: ProbeResults;
  if (setting !== 'auto') results = { [setting]: await probeBackend(setting, opts) };
  else {
    const nftables = await probeNftables(opts);
    results = nftables.ok ? { nftables } : { nftables, 'iptables-legacy': await probeIptablesLegacy(opts) };
  }
  return { decision: decideFlowHash(setting, results), results };
}

export function probeBackend(backend: FlowHashBackend, opts: ProbeOptions = {}): Promise<BackendProbe> {
  return backend === 'nftables' ? probeNftables(opts) : probeIptablesLegacy(opts);
}

/**
 * A check-mode transaction (`nft -c`) of a throwaway inet table with a prerouting base chain
 * and a jhash rule: the kernel validates it (family, hook, hash expression) and commits
 * nothing. On a kernel without the inet family this fails with "Operation not supported".
 */
export async function probeNftables(opts: ProbeOptions = {}): Promise<BackendProbe> {
  const script = [
    `table inet kst_probe_${process.pid} {`,
    '  chain prerouting {',
    '    type filter hook prerouting priority -450; policy accept;',
    '    meta mark set jhash ip saddr . ip daddr mod 2 seed 0x1 offset 0x0',
    '  }',
    '}',
    '',
  ].join('\n');
  return attempt(opts, 'nft', ['-c', '-f', '-'], script);
}

/**
 * Per family: the legacy mangle table answers, and a test-only restore of a throwaway chain
 * with an HMARK rule parses. `--test` exits 0 even when the kernel lacks the target, so the
 * warning it prints ("revision 0 not supported, missing kernel module?") counts as failure.
 */
export async function probeIptablesLegacy(opts: ProbeOptions = {}): Promise<BackendProbe> {
  const chain = `KST-PROBE-${process.pid}`.slice(0, 28);
  const script = ['*mangle', `:${chain} - [0:0]`, `-A ${chain} -j HMARK --hmark-tuple src,dst,proto,sport,dport --hmark-mod 2 --hmark-offset 0x1 --hmark-rnd 0x1`, 'COMMIT', ''].join('\n');
  for (const tool of ['iptables-legacy', 'ip6tables-legacy']) {
    const list = await attempt(opts, tool, ['-t', 'mangle', '-L', '-n']);
    if (!list.ok) return list;
    const restore = await attempt(opts, `${tool}-restore`, ['--test', '--noflush'], script, /not supported|missing kernel module/i);
    if (!restore.ok) return restore;
  }
  return { ok: true };
}

/** Runs one command; fails on a non-zero exit, a missing program, or stderr matching `alsoFails`. */
async function attempt(opts: ProbeOptions, file: string, args: readonly string[], input?: string, alsoFails?: RegExp): Promise<BackendProbe> {
  const what = `${file} ${args.join(' ')}`;
  try {
    const r = await (opts.run ?? runCommand)(file, args, { netns: opts.netns, input, allowFailure: true, timeoutMs: TIMEOUT_MS });
    if (r.code !== 0) return { ok: false, why: `${what} exited ${r.code}: ${summary(r.stderr || r.stdout)}` };
    if (alsoFails?.test(r.stderr)) return { ok: false, why: `${what}: ${summary(r.stderr)}` };
    return { ok: true };
  } catch (err) {
    // runCommand rejects even with allowFailure when the program cannot be started.
    return { ok: false, why: `${what} could not run: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** The first error line, without nft's input position (later nft errors follow from the first). */
function summary(text: string): string {
  const lines = text.split('\n').map((l) => l.trim().replace(/^\/dev\/stdin:\S+ /, '')).filter(Boolean);
  return lines.find((l) => /error|warning|not supported|failed|couldn't|can't/i.test(l)) ?? lines[0] ?? '(no output)';
}

/**
 * Logs the decision and reports on the Node what an operator must act on; returns the
 * backend to give TunnelDataplane. With no working backend the agent keeps running
 * (serving-node duties need no flow hash) with nftables, whose batches then fail visibly.
 */
export function reportFlowHash(decision: FlowHashDecision, nodeName: string, log: Logger, events: EventSink): FlowHashBackend {
  const node = { kind: 'Node' as const, name: nodeName };
  if (!decision.ok) {
    log.error(decision.error);
    events.warning(node, 'FlowHashUnavailable', `${decision.error}. Tunnel-node flow hashing cannot work here.`);
    return 'nftables';
  }
  log.info(`flow hash: ${decision.backend} (${decision.reason})`);
  if (decision.problem) {
    log.error(decision.problem);
    events.warning(node, 'FlowHashUnavailable', `${decision.problem}. The data plane will fail until this is fixed.`);
  } else if (decision.fellBack) {
    const message = `${decision.reason}. HMARK buckets differ from nftables jhash buckets: if other tunnel nodes use nftables, flows move to other endpoints when ECMP shifts them between nodes. Set dataplane.flowHash to one value on every tunnel node.`;
    log.warn(message);
    events.warning(node, 'FlowHashFallback', message);
  }
  return decision.backend;
}
