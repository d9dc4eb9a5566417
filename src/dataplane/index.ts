// The tunnel-node data plane (docs/dataplane.md): flow hashing into buckets (nftables),
// per-bucket policy routing, encapsulation drivers, converge by diff.
export { TunnelDataplane, cleanupKernel } from './tunnel-dataplane.js';
export type { TunnelDataplaneOptions, ReconcileResult } from './tunnel-dataplane.js';
export { Kernel } from './kernel.js';
export type { VipCounter } from './nft.js';
export { planKernel } from './plan.js';
export type { KernelPlan, VipProblem, PlanParams } from './plan.js';
export { diffKernel } from './diff.js';
export type { KernelChanges } from './diff.js';
export { renderNftTable } from './nft.js';
export { createDriver } from './drivers/index.js';
export type { EncapDriver } from './drivers/index.js';
export { VXLAN_NODE_MAC, VXLAN_POD_MAC, VXLAN_GATEWAY, VXLAN_GATEWAY6 } from './links.js';
export { MARK_BASE, MAX_BUCKETS, NFT_HOOK_PRIORITY, VXLAN_LINK, GRE_LWT_LINK, isOwnedLink } from './layout.js';
export type { KernelState, FlowHashBackend } from './state.js';
export { KERNEL_FEATURES, FEATURE_INFO, missingNeeds, kernelLimits, describeMissing } from './kernel-features.js';
export type { KernelFeature, KernelFeatures, FeatureState, KernelNeed, MissingNeed, KernelLimits, NodeRole } from './kernel-features.js';
export { MODE_KERNEL_NEEDS, kernelNeeds, featuresToProbe } from './drivers/kernel-needs.js';
