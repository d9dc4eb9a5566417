// The bucket routes read back from the kernel, parsed as `ip -json route` prints them,
// chunk by chunk. 10,000 VIPs have 2.56M bucket routes: ~470 MB of JSON text, which as
// one string is near V8's limit (it once failed with "Invalid string length") and, parsed
// in one piece, several times that in objects. Here only the current route's text is held
// at any time, and the routes go straight into their VIP's packed form (vip-routes.ts).
import type { IpFamily } from '../model/types.js';
import { fixEncapDst, readRoute, type JsonRoute } from './iproute.js';
import type { VipRoutes } from './state.js';
import { VipRoutesBuilder } from './vip-routes.js';

const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }
const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Splits a JSON array of objects, arriving in arbitrary chunks, into the text of each
 * element: nesting and strings are tracked across chunks, so a chunk may end anywhere.
 */
export class JsonArraySplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The current element's text from earlier chunks. */
  private pending = '';

  push(chunk: string, onElement: (text: string) => void): void {
    let start = this.depth >= 2 ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) this.inString = false;
        continue;
      }
      if (c === QUOTE) this.inString = true;
      else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        if (this.depth === 1) start = i;
        this.depth += 1;
      } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
        this.depth -= 1;
        if (this.depth === 1) {
          const text = this.pending + chunk.slice(start, i + 1);
          this.pending = '';
          start = -1;
          onElement(text);
        }
      }
    }
    if (this.depth >= 2 && start >= 0) this.pending += chunk.slice(start);
  }

  /** True when the whole array (or nothing at all) has been seen. */
  get complete(): boolean {
    return this.depth === 0 && !this.inString;
  }
}

/** The owned routes of one family's `ip -json route show table all proto 245`, streamed. */
export class RouteReadback {
  private readonly splitter = new JsonArraySplitter();
  private readonly byVip = new Map<string, VipRoutesBuilder>();
  private error?: Error;
  /** Route objects seen (ours or not). */
  seen = 0;

  constructor(
    private readonly family: IpFamily,
    private readonly tableBase: number,
    /** id -> canonical text of the nexthop objects (canonicalTexts). */
    private readonly canonical: ReadonlyMap<number, string>,
  ) {}

  /** Never throws (it runs in a stream's data handler); a parse error is kept for result(). */
  push(chunk: string): void {
    if (this.error) return;
    try {
      this.splitter.push(chunk, (text) => this.add(text));
    } catch (err) {
      this.error = err instanceof Error ? err : new Error(String(err));
    }
  }

  private add(text: string): void {
    this.seen += 1;
    const route = readRoute(JSON.parse(fixEncapDst(text)) as JsonRoute, this.family, this.tableBase, this.canonical);
    if (!route) return;
    let b = this.byVip.get(route.dst);
    if (!b) this.byVip.set(route.dst, (b = new VipRoutesBuilder(route.family, route.dst)));
    b.set(route.table, route.nexthop);
  }

  /** VIP -> its routes; throws when the output could not be read. */
  result(): Map<string, VipRoutes> {
    if (this.error) throw new Error(`reading back IPv${this.family} routes: ${this.error.message}`);
    if (!this.splitter.complete) throw new Error(`reading back IPv${this.family} routes: the output of ip ended inside a route`);
    const out = new Map<string, VipRoutes>();
    for (const [vip, b] of this.byVip) out.set(vip, b.build());
    this.byVip.clear();
    return out;
  }
}
