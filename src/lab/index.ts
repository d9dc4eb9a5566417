export { NetnsSet, uniqueName } from './netns.js';
export { FrrRouter, waitFor } from './frr.js';
export type { FrrRouterOptions } from './frr.js';
