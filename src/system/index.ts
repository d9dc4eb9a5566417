export { runCommand, CommandError } from './exec.js';
export type { CommandRunner, RunOptions, RunResult } from './exec.js';
export { ROUTE_PROTOCOL, ROUTE_PROTOCOL_NAME, LINK_PREFIX, NFT_TABLE, OWNER_TAG } from './ownership.js';
export { Backoff, backoffDelay } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { systemClock } from './clock.js';
export type { Clock, TimerHandle } from './clock.js';
export { ReconcileLoop } from './reconcile-loop.js';
export type { LivenessBasis, LoopHealth, PassContext, PassOutcome, ReconcileLoopOptions } from './reconcile-loop.js';
