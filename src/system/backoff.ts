// The one retry backoff of the agent: exponential from initialMs to maxMs, with jitter so
// that many agents (or many feeds of one agent) that failed together do not retry
// together. Every loop and every feed takes its delays from here.

export interface BackoffOptions {
  /** Delay before the first retry. */
  readonly initialMs: number;
  /** The delay never grows beyond this (before jitter). */
  readonly maxMs: number;
  /** Growth per failed attempt; default 2. */
  readonly factor?: number;
  /** Relative spread: each delay is multiplied by a value in [1 - jitter, 1 + jitter]; default 0.2. */
  readonly jitter?: number;
}

/** The delay before retry number `attempt` (0 = the first retry); pure given `random`. */
export function backoffDelay(opts: BackoffOptions, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(opts.maxMs, opts.initialMs * (opts.factor ?? 2) ** Math.max(0, attempt));
  const jitter = opts.jitter ?? 0.2;
  return Math.max(0, Math.round(base * (1 - jitter + 2 * jitter * random())));
}

/** Counts consecutive failures; `next()` is the delay to wait now, `reset()` after a success. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    return backoffDelay(this.opts, this.attempt++, this.random);
  }

  reset(): void {
    this.attempt = 0;
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.attempt;
  }
}
