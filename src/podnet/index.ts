// The serving-node side: make VIPs local inside endpoint pods' network namespaces.
export { PodNetworks } from './reconcile.js';
export type { PodNetworksOptions, PodNetStatus, PodNetState, PassReport, SweptNamespace } from './reconcile.js';
export { NamespaceFinder } from './discovery.js';
export type { PodNamespace, PodLocator, LocateResult, NamespaceFinderOptions, NamespaceSurvey, ScannedNamespace } from './discovery.js';
export { podModes, VXLAN_POD_LINK, VXLAN_POD_MAC, GRE_POD_LINK, LO_LABEL } from './modes/index.js';
export type { PodModeDriver, PodModeContext, EncapSettings } from './modes/index.js';
export { planPod } from './plan.js';
export type { PodPlan } from './plan.js';
export type { PodObjects } from './objects.js';
export { parsePodRanges, podSideLinks, isPodNamespace, orphanRemoval } from './orphans.js';
export { cleanupPodNamespaces } from './cleanup.js';
export type { PodCleanupResult } from './cleanup.js';
