export { createLogger, silentLogger } from './logger.js';
export type { Logger, LogLevel } from './logger.js';
export { metricsRegistry, collectProcessMetrics } from './metrics.js';
export { MemoryEventSink } from './events.js';
export type { EventSink, ObjectRef, RecordedEvent } from './events.js';
