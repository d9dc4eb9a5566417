export { Agent } from './agent.js';
export type { AgentParts, AgentSettings } from './agent.js';
export { runAgent } from './run.js';
export type { RunAgentOptions } from './run.js';
export { buildStatusReport, kubeReadiness, kubeReport } from './status.js';
export { BucketTableWriter, planTableWrites } from '../kube/table-writer.js';
