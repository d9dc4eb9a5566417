// The agent's view of its kernel (DESIGN.md "Know the kernel"): probed once at start, held
// against what the configuration needs in every role, and reported where an operator looks:
// `kst status` (kernel section), a Node Event, metrics, the log. The limits it derives go to
// the model, which then neither announces nor programs what this node cannot carry.
import type { Config } from '../config/index.js';
import {
  KERNEL_FEATURES,
  describeMissing,
  featuresToProbe,
  kernelLimits,
  kernelNeeds,
  missingNeeds,
  type KernelFeatures,
  type KernelLimits,
  type MissingNeed,
} from '../dataplane/index.js';
import { Gauge } from 'prom-client';
import { metricsRegistry, type EventSink, type KernelReport, type Logger } from '../observe/index.js';
import { fromBackend, probeKernelFeatures, type KernelProbeOptions } from './kernel-probe.js';
import type { ProbeResults } from '../dataplane/flow-hash-probe.js';

export interface KernelAssessment {
  readonly features: KernelFeatures;
  readonly missing: readonly MissingNeed[];
  readonly limits: KernelLimits;
  readonly report: KernelReport;
}

type NeedsConfig = Pick<Config, 'encapsulation' | 'dataplane'>;

/** Pure: probe results against a configuration's needs. */
export function assessKernel(config: NeedsConfig, features: KernelFeatures): KernelAssessment {
  const missing = missingNeeds(kernelNeeds(config), features);
  const report: KernelReport = {
    features: KERNEL_FEATURES.filter((f) => features[f]).map((f) => {
      const s = features[f]!;
      return s.state === 'present' ? { feature: f, state: s.state } : { feature: f, state: s.state, why: s.why };
    }),
    missing: missing.map((m) => ({ role: m.role, features: [...m.anyOf], ...(m.vipFamily ? { vipFamily: m.vipFamily } : {}), message: describeMissing(m) })),
  };
  return { features, missing, limits: kernelLimits(missing), report };
}

/** Probes what the configuration may need (reusing the flow-hash probe's answers) and assesses it. */
export async function probeAndAssess(config: NeedsConfig, flowHash?: ProbeResults, opts: KernelProbeOptions = {}): Promise<KernelAssessment> {
  const known: KernelFeatures = {
    ...(flowHash?.nftables ? { 'nft-inet': fromBackend(flowHash.nftables) } : {}),
    ...(flowHash?.['iptables-legacy'] ? { 'xt-hmark': fromBackend(flowHash['iptables-legacy']) } : {}),
  };
  // `auto` found nftables working: HMARK was never needed, so it is not probed either.
  const skip = new Set(flowHash?.nftables?.ok && config.dataplane.flowHash === 'auto' ? ['xt-hmark'] : []);
  const wanted = featuresToProbe(kernelNeeds(config)).filter((f) => !skip.has(f));
  const features = await probeKernelFeatures(wanted, { ...opts, known: { ...known, ...opts.known } });
  return assessKernel(config, features);
}

/**
 * Logs the result and, when the configuration needs something this kernel lacks, tells the
 * Node (Event KernelFeatureMissing). The model reports again, per role, once the node takes
 * a role it cannot fill (a tunnel node, pods with VIPs, an IPv6 VIP).
 */
export function reportKernel(a: KernelAssessment, nodeName: string, log: Logger, events: EventSink): void {
  const found = a.report.features.map((f) => `${f.feature} ${f.state}`).join(', ');
  if (a.missing.length === 0) {
    log.info(`kernel: ${found}; the configuration's needs are met`);
    return;
  }
  const lines = a.report.missing.map((m) => `${m.role === 'tunnel' ? 'as a tunnel node' : 'for VIPs in pods'}: ${m.message}`);
  log.error(`kernel: ${found}; missing: ${lines.join('; ')}`);
  events.warning({ kind: 'Node', name: nodeName }, 'KernelFeatureMissing', `This node's kernel lacks what the configuration needs: ${lines.join('; ')}. What needs it is not done on this node (see kst status).`);
}

/**
 * kst_kernel_feature{feature}: 1 present, 0 absent or not probeable (only features probed);
 * kst_kernel_missing_features{feature,role}: 1 for each feature the configuration needs in a
 * role and this node lacks (alternatives: each one is listed).
 */
export function registerKernelMetrics(read: () => KernelAssessment | undefined): void {
  if (metricsRegistry.getSingleMetric('kst_kernel_feature')) return;
  new Gauge({
    name: 'kst_kernel_feature',
    help: "Kernel features probed at start: 1 present, 0 absent or could not be probed.",
    labelNames: ['feature'],
    registers: [metricsRegistry],
    collect() {
      this.reset();
      for (const f of read()?.report.features ?? []) this.set({ feature: f.feature }, f.state === 'present' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'kst_kernel_missing_features',
    help: 'Kernel features the configuration needs in a role (tunnel, serving) that this node lacks: 1 each.',
    labelNames: ['feature', 'role'],
    registers: [metricsRegistry],
    collect() {
      this.reset();
      for (const m of read()?.missing ?? []) for (const f of m.anyOf) this.set({ feature: f, role: m.role }, 1);
    },
  });
}
