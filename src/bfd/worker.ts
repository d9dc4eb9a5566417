// The BFD thread: one BfdManager whose timers and sockets live on this worker's own event
// loop, so a busy main thread (a long resync, a big relist, a GC pause of the main heap)
// cannot delay transmissions or detection. threaded-manager.ts is the other side; the
// messages are in worker-messages.ts. Logs and metrics are sent to the main thread, whose
// logger and registry are the agent's. This thread loads no logger or metrics library, and
// nothing from another area: it is an isolate of its own, where every module costs memory
// again (telemetry.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { BfdManager } from './manager.js';
import { forwardingLog, recordingMetrics } from './worker-telemetry.js';
import type { FromWorker, ToWorker, WorkerOptions, WorkerSnapshot } from './worker-messages.js';

if (!parentPort) throw new Error('BFD: worker.js runs as a worker thread (see threaded-manager.ts)');
const port = parentPort;
const opts = workerData as WorkerOptions;
const post = (m: FromWorker): void => port.postMessage(m);

// Every level goes to the main thread, whose logger filters.
const logger = forwardingLog((level, message, meta) => post({ type: 'log', level, message, meta }));
const metrics = recordingMetrics();
const manager = new BfdManager({ logger, metrics: metrics.sink, ...(opts.retryMs !== undefined ? { retryMs: opts.retryMs } : {}) });

const sessionsNow = (): WorkerSnapshot => ({ sessions: manager.status(), unmatched: manager.unmatchedDrops() });

function snapshot(): WorkerSnapshot {
  const m = process.memoryUsage();
  const memory = { heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external, arrayBuffersBytes: m.arrayBuffers };
  return { ...sessionsNow(), metrics: metrics.values(), memory };
}

const sendSnapshot = (): void => post({ type: 'snapshot', snapshot: snapshot() });

manager.on('state', (event) => {
  // The sessions go with the event, so the main thread's status() agrees with it at once.
  post({ type: 'state', event, snapshot: sessionsNow() });
  sendSnapshot();
});
manager.on('error', (err) => post({ type: 'error', message: err.message }));
setInterval(() => sendSnapshot(), opts.snapshotIntervalMs);

async function handle(m: ToWorker): Promise<void> {
  switch (m.op) {
    case 'set':
      return manager.setSessions(m.sessions);
    case 'adminDown':
      return manager.adminDown(m.peer);
    case 'adminUp':
      return manager.adminUp(m.peer);
    case 'snapshot':
      return;
    case 'stop':
      return manager.stop({ adminDown: m.adminDown });
    case 'crash':
      setImmediate(() => {
        throw new Error('BFD worker: simulated crash');
      });
  }
}

// One command at a time, in order (setSessions is asynchronous).
let chain = Promise.resolve();
port.on('message', (m: ToWorker) => {
  chain = chain.then(async () => {
    let error: string | undefined;
    try {
      await handle(m);
    } catch (err) {
      error = (err as Error).message;
    }
    post({ type: 'reply', id: m.id, ...(error !== undefined ? { error } : {}), snapshot: snapshot() });
  });
});
post({ type: 'ready' });
