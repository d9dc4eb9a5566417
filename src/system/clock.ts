// Time as the loops see it: injected so that tests drive coalescing, backoff and resync
// without waiting (test/system/manual-clock.ts).

export interface TimerHandle {
  /** Lets the process exit while only this timer is pending (periodic resyncs). */
  unref?(): void;
}

export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
