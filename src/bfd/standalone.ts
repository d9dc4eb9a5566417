// Runs one BfdManager as its own process, driven by JSON lines on stdin and reporting
// JSON lines on stdout. Node cannot enter another network namespace, so the lab, the
// tests and the failover bench start this with `ip netns exec NODE node standalone.js`
// to put "the agent's BFD" on a tunnel node, and can SIGKILL it to simulate a crash.
// With `--threaded`, the sessions run on a worker thread (ThreadedBfdManager) as in the agent.
//
// stdin:  {"op":"set","sessions":[{peer,local,profile}]} | {"op":"adminDown","peer"?} |
//         {"op":"adminUp","peer"?} | {"op":"status"} | {"op":"stop","adminDown"?:bool} |
//         {"op":"block","ms"} (busy main thread, as an agent under load) | {"op":"crash"} (worker)
// stdout: {"event":"ready"} | {"event":"state",...BfdStateEvent,"at":ms} |
//         {"event":"status","sessions":[...],"unmatched":{...}} | {"event":"error","message"} |
//         {"event":"workerError","message","at":ms}
import { createInterface } from 'node:readline';
import { BfdManager, type BfdSessionRunner, type BfdSessionSpec } from './manager.js';
import { bfdMetrics } from './metrics.js';
import { ThreadedBfdManager } from './threaded-manager.js';

type Command =
  | { op: 'set'; sessions: BfdSessionSpec[] }
  | { op: 'adminDown'; peer?: string }
  | { op: 'adminUp'; peer?: string }
  | { op: 'status' }
  | { op: 'stop'; adminDown?: boolean }
  | { op: 'block'; ms: number }
  | { op: 'crash' };

function emit(obj: object): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const threaded = process.argv.includes('--threaded') ? new ThreadedBfdManager() : undefined;
const manager: BfdSessionRunner = threaded ?? new BfdManager({ metrics: bfdMetrics() });
manager.on('state', (ev) => emit({ event: 'state', ...ev, at: Date.now() }));
manager.on('error', (err) => emit({ event: 'workerError', message: err.message, at: Date.now() }));

async function handle(cmd: Command): Promise<void> {
  switch (cmd.op) {
    case 'set':
      await manager.setSessions(cmd.sessions);
      emit({ event: 'set', count: cmd.sessions.length });
      return;
    case 'adminDown':
      manager.adminDown(cmd.peer);
      emit({ event: 'adminDown' });
      return;
    case 'adminUp':
      manager.adminUp(cmd.peer);
      emit({ event: 'adminUp' });
      return;
    case 'status':
      await threaded?.refresh();
      emit({ event: 'status', sessions: manager.status(), unmatched: manager.unmatchedDrops() });
      return;
    case 'block': {
      // Deliberately synchronous: nothing else runs on this thread meanwhile.
      const end = Date.now() + cmd.ms;
      while (Date.now() < end);
      emit({ event: 'block', ms: cmd.ms });
      return;
    }
    case 'crash':
      if (!threaded) throw new Error('crash: only with --threaded');
      threaded.simulateCrash();
      emit({ event: 'crash' });
      return;
    case 'stop':
      await manager.stop({ adminDown: cmd.adminDown ?? false });
      emit({ event: 'stopped' });
      process.exit(0);
  }
}

let chain = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    try {
      await handle(JSON.parse(line) as Command);
    } catch (err) {
      emit({ event: 'error', message: (err as Error).message });
    }
  });
}).on('close', () => {
  // The parent went away: behave like a crashed agent (no AdminDown).
  void manager.stop().then(() => process.exit(0));
});
emit({ event: 'ready', pid: process.pid });
