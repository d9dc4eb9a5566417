// BFD (RFC 5880 asynchronous mode, RFC 5881 single hop) with the routers, tied to BGP and
// local health. See docs/bfd.md.
export { BfdState, BfdDiag, decodeControlPacket, encodeControlPacket, diagName, stateNames } from './codec.js';
export type { ControlPacket, DecodeResult, DropReason, BfdStateName } from './codec.js';
export { createSession, step, startActions, txIntervalUs, detectionTimeUs, jitterFactors, SLOW_TX_US } from './session.js';
export type { Session, SessionEvent, SessionAction, SessionTimers, StepResult } from './session.js';
export { BfdManager } from './manager.js';
export { ThreadedBfdManager } from './threaded-manager.js';
export type { ThreadedBfdManagerOptions } from './threaded-manager.js';
export type { BfdEvents, BfdSessionRunner, BfdManagerOptions, BfdProfile, BfdSessionSpec, BfdSessionStatus, BfdSessionCounters, BfdStateEvent } from './manager.js';
export { BFD_CONTROL_PORT, canonicalAddress } from './transport.js';
export { ensureGtsm, removeGtsm, gtsmDrops, gtsmRuleset, GTSM_TABLE } from './gtsm.js';
export { BfdBgpBinding } from './bgp-integration.js';
export { gatedSessionRuns } from './bgp-gate.js';
export type { PeerControl } from './bgp-integration.js';
export { bfdSessionsFor, localAddressTowards } from './config.js';
export type { BfdPlan } from './config.js';
export { bfdMetrics } from './metrics.js';
export type { BfdMetrics } from './metrics.js';
export { bfdStatusReport } from './status.js';
