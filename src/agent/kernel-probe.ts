// Asks this node's kernel what it can do (src/dataplane/kernel-features.ts), without leaving
// anything behind: each check runs in a fresh network namespace of its own (`unshare --net`,
// util-linux; needs CAP_SYS_ADMIN, which the DaemonSet grants) that disappears with the
// command, so no link, route or sysctl of the node is touched. The flow-hash features reuse
// the flow-hash probes (check-only nft / iptables-legacy transactions).
//
// One side effect is the kernel's own: asking for a link type or an encapsulation may load
// its module (ip_gre, mpls_iptunnel...), as the agent's first batch would. Loading ip_gre
// also creates the fallback devices gre0/gretap0/erspan0 in every namespace, which is why
// the agent probes only what its configuration may need (featuresToProbe).
import { KERNEL_FEATURES, type FeatureState, type KernelFeature, type KernelFeatures } from '../dataplane/index.js';
import { runCommand, type CommandRunner } from '../system/index.js';
import { probeIptablesLegacy, probeNftables, type BackendProbe } from '../dataplane/flow-hash-probe.js';

export interface KernelProbeOptions {
  readonly run?: CommandRunner;
  /** Deadline of each probe command (default 20 s: on a busy node a check can wait seconds for the rtnl lock). */
  readonly timeoutMs?: number;
  /** Results already known (the flow-hash probe at start): not probed again. */
  readonly known?: KernelFeatures;
}

/** A check: one program run in a fresh network namespace; exit 0 means the feature works. */
interface Check {
  readonly file: string;
  readonly args: readonly string[];
  /** `ip -batch -` input: every line must succeed. */
  readonly input?: string;
}

const batch = (globalArgs: readonly string[], lines: readonly string[]): Check => ({ file: 'ip', args: [...globalArgs, '-batch', '-'], input: `${lines.join('\n')}\n` });

// Addresses from the documentation ranges; names that cannot clash with the kernel's
// fallback devices (gre0, tunl0...). The namespace is empty and private, so nothing is sent.
const UP_VETH = ['link add kstp-v0 type veth peer name kstp-v1', 'link set kstp-v0 up', 'link set kstp-v1 up', 'addr add 198.51.100.1/24 dev kstp-v0'];
const CHECKS: Readonly<Record<Exclude<KernelFeature, 'nft-inet' | 'xt-hmark'>, Check>> = {
  vxlan: batch([], ['link add kstp-vx type vxlan id 42 dstport 4789 local 192.0.2.1 nolearning']),
  'vxlan-external': batch([], ['link add kstp-vx type vxlan external dstport 4789', 'link set kstp-vx up', 'route add 203.0.113.1/32 dev kstp-vx encap ip id 42 dst 192.0.2.9']),
  gre: batch([], ['link add kstp-gre type gre local 192.0.2.1 remote 192.0.2.2']),
  'gre-external': batch([], ['link add kstp-gre type gre external', 'link set kstp-gre up', 'route add 203.0.113.1/32 dev kstp-gre encap ip dst 192.0.2.9']),
  ipip: batch([], ['link add kstp-ipip type ipip local 192.0.2.1 remote 192.0.2.2']),
  'nexthop-objects': batch([], [...UP_VETH, 'nexthop add id 1 via 198.51.100.2 dev kstp-v0', 'route add 203.0.113.1/32 nhid 1']),
  // A fresh namespace has the label table's settings exactly when MPLS routing is in the
  // kernel (built in, or mpls_router loaded); reading them needs no write access to /proc/sys.
  'mpls-routing': { file: 'cat', args: ['/proc/sys/net/mpls/platform_labels'] },
  'mpls-iptunnel': batch([], [...UP_VETH, 'route add 203.0.113.1/32 encap mpls 100 via inet 198.51.100.2 dev kstp-v0']),
  'seg6-lwt': batch(['-6'], ['link set lo up', 'route add 2001:db8::1/128 dev lo encap seg6 mode encap segs 2001:db8::2']),
};

/** Whether the throwaway-namespace checks can run here at all: undefined, or why not. */
export async function namespaceProbeBlocked(opts: KernelProbeOptions = {}): Promise<string | undefined> {
  const r = await inFreshNamespace({ file: 'ip', args: ['link', 'show', 'lo'] }, opts);
  return r.state === 'present' ? undefined : `cannot run checks in a throwaway network namespace (unshare --net): ${r.why}`;
}

/**
 * Probes the features asked for (default: all), one after another, each with a deadline.
 * Never throws: a check that cannot run reports `unknown` with the reason.
 */
export async function probeKernelFeatures(features: readonly KernelFeature[] = KERNEL_FEATURES, opts: KernelProbeOptions = {}): Promise<KernelFeatures> {
  const out: Partial<Record<KernelFeature, FeatureState>> = {};
  const needNamespace = features.some((f) => f in CHECKS && !opts.known?.[f]);
  const blocked = needNamespace ? await namespaceProbeBlocked(opts) : undefined;
  for (const f of features) {
    const known = opts.known?.[f];
    if (known) out[f] = known;
    else if (f === 'nft-inet') out[f] = fromBackend(await probeNftables(opts.run ? { run: opts.run } : {}));
    else if (f === 'xt-hmark') out[f] = fromBackend(await probeIptablesLegacy(opts.run ? { run: opts.run } : {}));
    else if (blocked) out[f] = { state: 'unknown', why: blocked };
    else out[f] = await inFreshNamespace(CHECKS[f], opts);
  }
  return out;
}

/** A flow-hash probe's answer as a feature state (a backend that cannot run counts as absent). */
export function fromBackend(p: BackendProbe): FeatureState {
  return p.ok ? { state: 'present' } : { state: 'absent', why: p.why };
}

/** Every feature's entry in the node's words, for logs: "gre-external absent (...)". */
export function describeFeatures(features: KernelFeatures): string {
  return KERNEL_FEATURES.filter((f) => features[f])
    .map((f) => {
      const s = features[f]!;
      return s.state === 'present' ? `${f} present` : `${f} ${s.state} (${s.why})`;
    })
    .join(', ');
}

async function inFreshNamespace(check: Check, opts: KernelProbeOptions): Promise<FeatureState> {
  const argv = ['--net', '--', check.file, ...check.args];
  const timeoutMs = opts.timeoutMs ?? 20_000;
  try {
    const r = await (opts.run ?? runCommand)('unshare', argv, { input: check.input, allowFailure: true, timeoutMs });
    if (r.code === 0) return { state: 'present' };
    const text = firstError(r.stderr || r.stdout);
    // unshare's own failures (no permission, no such program) and a killed command say
    // nothing about the kernel.
    if (/^unshare:/m.test(r.stderr) || /killed by SIG/.test(r.stderr)) {
      return { state: 'unknown', why: /killed by SIG/.test(r.stderr) ? `no answer within ${timeoutMs} ms` : text };
    }
    return { state: 'absent', why: text };
  } catch (err) {
    return { state: 'unknown', why: `unshare could not run: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** The kernel's answer, without ip's "Command failed -:N" trailer. */
function firstError(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !/^Command failed/.test(l));
  return lines[0] ?? '(no output)';
}
