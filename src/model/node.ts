// Whether this node takes part, and if not, why: a node in maintenance (the maintenance
// taint, the exclude-from-external-load-balancers label, NotReady) announces nothing, so
// routers drain it before work on it.
//
// Cordoning (spec.unschedulable) is NOT maintenance by default: it says "no new pods", not
// "no traffic". Kubernetes took cordoned nodes out of load-balancer selection until 1.19 and
// dropped that rule after outages (a `kubectl drain` of every node in a rolling upgrade
// withdrew every ingress at once; kubernetes/kubernetes#90823); MetalLB shipped the same rule
// and reverted it (metallb#2470, #2715). bgp.withdrawWhenCordoned brings it back on purpose.
import { parseSelector, selectorMatches } from './selector.js';
import type { ModelSettings } from './settings.js';
import type { NodeInput } from './types.js';

/** The well-known label (kubernetes.io docs, "Well-Known Labels"): exclude the node from external load balancers. */
export const EXCLUDE_FROM_LB_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

export interface NodeAvailability {
  /** Matches tunnelNodeSelector (tunnel modes). */
  readonly selected: boolean;
  /** May announce: exists, Ready, not excluded, no maintenance taint (nor cordoned, if configured). */
  readonly available: boolean;
  /** Why it may not announce; empty when available. */
  readonly reason: string;
  /** The selector could not be parsed (config validation reports it too). */
  readonly selectorError?: string;
}

export function nodeAvailability(settings: ModelSettings, nodeName: string, node: NodeInput | undefined): NodeAvailability {
  const parsed = parseSelector(settings.tunnelNodeSelector);
  const selected = parsed.ok && node !== undefined && selectorMatches(parsed.selector, node.labels);
  const selectorError = parsed.ok ? undefined : parsed.error;
  const base = { selected, ...(selectorError ? { selectorError } : {}) };
  if (!node) return { ...base, available: false, reason: `node ${nodeName} not found` };
  if (!node.ready) return { ...base, available: false, reason: `node ${nodeName} is NotReady` };
  // Any value counts, as in the Kubernetes service controller (the label's presence excludes).
  if (Object.prototype.hasOwnProperty.call(node.labels, EXCLUDE_FROM_LB_LABEL)) {
    return { ...base, available: false, reason: `node ${nodeName} has the label ${EXCLUDE_FROM_LB_LABEL}` };
  }
  if (node.taintKeys.includes(settings.bgp.maintenanceTaint)) {
    return { ...base, available: false, reason: `node ${nodeName} has the maintenance taint ${settings.bgp.maintenanceTaint}` };
  }
  if (node.unschedulable && settings.bgp.withdrawWhenCordoned === true) {
    return { ...base, available: false, reason: `node ${nodeName} is cordoned (spec.unschedulable) and bgp.withdrawWhenCordoned is set` };
  }
  return { ...base, available: true, reason: '' };
}
