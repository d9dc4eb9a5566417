export { configSchema, encapModes } from './schema.js';
export type { Config, BgpPeerConfig, BfdProfileConfig, PoolConfig } from './schema.js';
