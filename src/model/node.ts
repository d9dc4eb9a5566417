// Whether this node takes part, and if not, why: a node in maintenance (cordoned, the
// maintenance taint, NotReady) announces nothing, so routers drain it before work on it.
import { parseSelector, selectorMatches } from './selector.js';
import type { ModelSettings } from './settings.js';
import type { NodeInput } from './types.js';

export interface NodeAvailability {
  /** Matches tunnelNodeSelector (tunnel modes). */
  readonly selected: boolean;
  /** May announce: exists, Ready, not cordoned, no maintenance taint. */
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
  if (node.unschedulable) return { ...base, available: false, reason: `node ${nodeName} is cordoned (spec.unschedulable)` };
  if (node.taintKeys.includes(settings.bgp.maintenanceTaint)) {
    return { ...base, available: false, reason: `node ${nodeName} has the maintenance taint ${settings.bgp.maintenanceTaint}` };
  }
  return { ...base, available: true, reason: '' };
}
