// The component contract and the composition root's two operations (docs/architecture.md
// "Lifecycle"): components start in list order and stop in reverse; every stop runs in its
// own guard with a deadline and is logged by name, so one failing or hanging stop never
// leaves the others running. cleanup() (kst cleanup) is separate: it removes what a
// component made in the kernel; stop() never does.
import type { Logger } from '../observe/index.js';

export interface Component {
  readonly name: string;
  start?(): void | Promise<void>;
  stop?(): void | Promise<void>;
  /** Longest this component's stop may take (a graceful withdrawal waits its grace time). */
  readonly stopDeadlineMs?: number;
}

export interface StopOutcome {
  readonly name: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly durationMs: number;
}

const DEFAULT_STOP_DEADLINE_MS = 10_000;

/**
 * Starts each component in order. When one fails, the ones already started are stopped
 * (reverse order, guarded) and the error is thrown, naming the component.
 */
export async function startAll(components: readonly Component[], log: Logger): Promise<void> {
  const started: Component[] = [];
  for (const c of components) {
    try {
      await c.start?.();
      started.push(c);
      log.debug(`started ${c.name}`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log.error(`could not start ${c.name}: ${message}; stopping what was started`);
      await stopAll(started, log);
      throw new Error(`${c.name}: ${message}`, { cause: err });
    }
  }
}

/** Stops each component in reverse order, each guarded and bounded; never throws. */
export async function stopAll(components: readonly Component[], log: Logger, now: () => number = Date.now): Promise<StopOutcome[]> {
  const outcomes: StopOutcome[] = [];
  for (const c of [...components].reverse()) {
    if (!c.stop) continue;
    const started = now();
    const deadline = c.stopDeadlineMs ?? DEFAULT_STOP_DEADLINE_MS;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(() => c.stop!()),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`did not stop within ${deadline} ms; going on without it`)), deadline);
        }),
      ]);
      outcomes.push({ name: c.name, ok: true, durationMs: now() - started });
      log.info(`stopped ${c.name}`);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      outcomes.push({ name: c.name, ok: false, error, durationMs: now() - started });
      log.error(`stopping ${c.name} failed: ${error}`);
    } finally {
      clearTimeout(timer);
    }
  }
  return outcomes;
}
