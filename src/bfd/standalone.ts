// Runs one BfdManager as its own process, driven by JSON lines on stdin and reporting
// JSON lines on stdout. Node cannot enter another network namespace, so the lab, the
// tests and the failover bench start this with `ip netns exec NODE node standalone.js`
// to put "the agent's BFD" on a tunnel node, and can SIGKILL it to simulate a crash.
//
// stdin:  {"op":"set","sessions":[{peer,local,profile}]} | {"op":"adminDown","peer"?} |
//         {"op":"adminUp","peer"?} | {"op":"status"} | {"op":"stop","adminDown"?:bool}
// stdout: {"event":"ready"} | {"event":"state",...BfdStateEvent,"at":ms} |
//         {"event":"status","sessions":[...],"unmatched":{...}} | {"event":"error","message"}
import { createInterface } from 'node:readline';
import { BfdManager, type BfdSessionSpec } from './manager.js';

type Command =
  | { op: 'set'; sessions: BfdSessionSpec[] }
  | { op: 'adminDown'; peer?: string }
  | { op: 'adminUp'; peer?: string }
  | { op: 'status' }
  | { op: 'stop'; adminDown?: boolean };

function emit(obj: object): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const manager = new BfdManager();
manager.on('state', (ev) => emit({ event: 'state', ...ev, at: Date.now() }));

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
      emit({ event: 'status', sessions: manager.status(), unmatched: manager.unmatchedDrops() });
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
