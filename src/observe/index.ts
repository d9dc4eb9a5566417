export { createLogger, silentLogger } from './logger.js';
export type { Logger, LogLevel } from './logger.js';
export { metricsRegistry, collectProcessMetrics } from './metrics.js';
export { MemoryEventSink } from './events.js';
export type { EventSink, ObjectRef, RecordedEvent } from './events.js';
export { ObserveServer, parseListenAddress } from './server.js';
export type { ObserveServerOptions, ReadinessCheck, ReadinessResult, StatusProvider, ListenAddress } from './server.js';
export { emptyStatusReport, parseStatusReport } from './status.js';
export { memoryReport, registerMemoryMetrics, threadMemory } from './memory.js';
export type { MemoryReport, ThreadMemoryReport } from './memory.js';
export type {
  StatusReport,
  FlowHashReport,
  KernelReport,
  KernelFeatureReport,
  KernelNeedReport,
  VipReport,
  BgpPeerReport,
  BgpPeerState,
  BfdSessionReport,
  BfdSessionState,
  BfdCountersReport,
  ReconcileReport,
  KubeReport,
  ConfigReport,
  KubeFeedReport,
} from './status.js';
