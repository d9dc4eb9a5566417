// The BFD thread: one BfdManager whose timers and sockets live on this worker's own event
// loop, so a busy main thread (a long resync, a big relist, a GC pause of the main heap)
// cannot delay transmissions or detection. threaded-manager.ts is the other side; the
// messages are in worker-messages.ts. Logs and metrics are sent to the main thread, whose
// logger and registry are the agent's.
import { Writable } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
import { Registry } from 'prom-client';
import winston from 'winston';
import { BfdManager } from './manager.js';
import { bfdMetrics } from './metrics.js';
import type { FromWorker, ToWorker, WorkerOptions, WorkerSnapshot } from './worker-messages.js';

if (!parentPort) throw new Error('BFD: worker.js runs as a worker thread (see threaded-manager.ts)');
const port = parentPort;
const opts = workerData as WorkerOptions;
const post = (m: FromWorker): void => port.postMessage(m);

// Every level goes to the main thread, whose logger filters.
const forward = new Writable({
  objectMode: true,
  write(info: Record<string, unknown>, _encoding, done) {
    const { level, message, ...meta } = info;
    // JSON drops winston's symbol keys and anything that cannot cross threads.
    post({ type: 'log', level: String(level), message: String(message), meta: JSON.parse(JSON.stringify(meta)) as Record<string, unknown> });
    done();
  },
});
const logger = winston.createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream: forward })] });

const registry = new Registry();
const manager = new BfdManager({ logger, metrics: bfdMetrics(registry), ...(opts.retryMs !== undefined ? { retryMs: opts.retryMs } : {}) });

const sessionsNow = (): WorkerSnapshot => ({ sessions: manager.status(), unmatched: manager.unmatchedDrops() });

async function snapshot(): Promise<WorkerSnapshot> {
  const metrics = (await registry.getMetricsAsJSON()).map((m) => ({ name: m.name, values: m.values.map((v) => ({ labels: { ...v.labels } as Record<string, string | number>, value: v.value })) }));
  return { ...sessionsNow(), metrics };
}

const sendSnapshot = async (): Promise<void> => post({ type: 'snapshot', snapshot: await snapshot() });

manager.on('state', (event) => {
  // The sessions go with the event, so the main thread's status() agrees with it at once.
  post({ type: 'state', event, snapshot: sessionsNow() });
  void sendSnapshot();
});
manager.on('error', (err) => post({ type: 'error', message: err.message }));
setInterval(() => void sendSnapshot(), opts.snapshotIntervalMs);

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
    post({ type: 'reply', id: m.id, ...(error !== undefined ? { error } : {}), snapshot: await snapshot() });
  });
});
post({ type: 'ready' });
