export { runCommand, CommandError } from './exec.js';
export type { CommandRunner, RunOptions, RunResult } from './exec.js';
export { ROUTE_PROTOCOL, ROUTE_PROTOCOL_NAME, LINK_PREFIX, NFT_TABLE, OWNER_TAG } from './ownership.js';
