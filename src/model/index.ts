// The model's public face: pure functions from Kubernetes inputs to one node's desired state.
export type * from './types.js';
export {
  parseIp,
  parseCidr,
  parseCidrDetailed,
  ipFamily,
  ipToBigInt,
  bigIntToIp,
  cidrRange,
  cidrContains,
  cidrsOverlap,
  hostPrefix,
  classifyIp,
  compareIps,
  sortIps,
} from './ip.js';
export type { IpClass, CidrRange, CidrParse } from './ip.js';
export { murmur3 } from './hash.js';
export { maglevBuckets, buildBucketTable, rebalance, sameOwners, movedBuckets, bucketShares, compareBackends } from './maglev.js';
export type { HashParams } from './maglev.js';
export { parseSelector, selectorMatches } from './selector.js';
export type { LabelSelector, Requirement, SelectorParse } from './selector.js';
export { allocate } from './allocator.js';
export type { AllocationRequest, Allocation, AllocatedAddress } from './allocator.js';
export { preparePools, poolAllowsNamespace, poolAllowsService, poolRefusal, poolContaining } from './settings.js';
export type { ModelSettings, PoolSettings, Pool } from './settings.js';
export { resolveVips, serviceKey, compareServiceAge, isOurLoadBalancer, poolAnnotationKey } from './vips.js';
export type { ServiceVip, VipResolution } from './vips.js';
export { collectEndpoints, toBackend } from './endpoints.js';
export type { ServiceEndpoints } from './endpoints.js';
export { EndpointPool } from './endpoint-pool.js';
export { nodeAvailability, EXCLUDE_FROM_LB_LABEL } from './node.js';
export { nodeBgp, nodeBgpKey, NODE_BGP_ANNOTATIONS, NODE_BGP_ANNOTATION_PREFIX } from './peers.js';
export type { NodeBgp, NodePeer, PeerSettings, BgpSettings, PasswordSource, PeerSecretRef } from './peers.js';
export type { NodeAvailability } from './node.js';
export { IncrementalModel, computeDesiredState, sortProblems } from './incremental.js';
export type { IncrementalModelOptions, KernelLimitsInput } from './incremental.js';
export {
  parseStoredTables,
  formatStoredTables,
  storedTablesKey,
  storedTableProblem,
  toStoredTable,
  tableFromStored,
  NO_STORED_TABLES,
  STORED_TABLE_REASON,
  STORED_TABLE_VERSION,
} from './stored-table.js';
export type { KnownAddress, StoredTable, StoredTables } from './stored-table.js';
export { modeTraits } from './mode-traits.js';
export type { ModeTraits } from './mode-traits.js';
