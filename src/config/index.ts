export { configSchema, encapModes } from './schema.js';
export type { Config, BgpPeerConfig, BfdProfileConfig, PoolConfig } from './schema.js';
export { loadConfig, parseConfig, readConfigFile, applyOverrides, ConfigError, ENV_PREFIX, RESERVED_ENV, RESERVED_ENV_PREFIXES, formatPath, parsePath } from './load.js';
export type { ConfigSources, ConfigResult, ConfigIssue } from './load.js';
export { checkConfig } from './checks.js';
export { renderConfigDocs } from './docs.js';
