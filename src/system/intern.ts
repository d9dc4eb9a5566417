// One copy of each repeated text. The same few thousand pod addresses appear in every
// EndpointSlice that lists them, and the same nexthop texts in the routes of every VIP:
// at 1,000 VIPs x 100 endpoints on 5,000 pods that was 200,000 address strings (6 MB) and
// 210,000 nexthop texts (19 MB) where 5,000 of each would do (docs/troubleshooting.md,
// "Memory"). A pool hands out the first copy it saw of a text.
//
// Bounded: when it holds `maxEntries` texts it forgets them all and starts again, so texts
// no longer used anywhere (removed pods) cannot accumulate; texts still in use stay alive
// through their users and are pooled again as they come back.
export class TextPool {
  private pool = new Map<string, string>();

  constructor(private readonly maxEntries: number) {}

  /** The pooled copy of `text` (the same value; typed as given, e.g. a branded address). */
  intern<T extends string>(text: T): T {
    const have = this.pool.get(text);
    if (have !== undefined) return have as T;
    if (this.pool.size >= this.maxEntries) this.pool = new Map();
    this.pool.set(text, text);
    return text;
  }

  get size(): number {
    return this.pool.size;
  }
}
