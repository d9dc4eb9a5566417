// The lab's control surface for the CLI (`kst lab up|down|status|demo|drill`). A separate face
// from index.ts because index.ts also exports the API server, whose Kubernetes client
// import costs about 1.5 s of start-up that `kst lab status` should not pay.
export { DEFAULT_PREFIX, TOPOLOGY_KINDS, validatePrefix } from './topology.js';
export type { TopologyKind } from './topology.js';
export { labUp, LabError } from './up.js';
export { labDown } from './down.js';
export { labStatus, renderStatus } from './status.js';
export { labDemo, renderDemo } from './demo.js';
export { labDrill, renderDrill, DRILL_KEYS } from './drill.js';
export type { DrillKey } from './drill.js';
export { parseOverride } from './agent-config.js';
export type { ConfigOverride } from './agent-config.js';
