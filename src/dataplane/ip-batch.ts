// One `ip -force -batch -` run's lines, made while they are written. The first programming
// of 10,000 VIPs x 256 buckets is 2.56 million route lines, 167 MB of text and several
// times that as strings held in one array (a transient peak of ~800 MB of heap): here a
// VIP's route lines are a recipe (its two route sets and the nexthop ids) that makes them
// when the writer asks for the next chunk, and they are dropped once written.

/** Lines for one VIP, made on demand; `count` is known without making them. */
export interface LineRecipe {
  readonly vip: string;
  readonly count: number;
  /** Appends the `count` lines to `out`. */
  write(out: string[]): void;
}

type Part = { readonly lines: readonly string[]; readonly vip?: string } | LineRecipe;

/** A batch's lines with the VIP each belongs to (undefined: links, nexthops, rules). */
export interface BatchChunk {
  /** Index of the chunk's first line in the batch. */
  readonly first: number;
  readonly lines: readonly string[];
  readonly vips: readonly (string | undefined)[];
}

export class IpBatch {
  private readonly parts: Part[] = [];
  private count = 0;

  constructor(
    /** 6: run as `ip -6` (rules and nexthops take their family from that option only). */
    readonly family?: 6,
    /**
     * Run only when every batch before it succeeded: removing a nexthop object also removes
     * the routes still leading to it, which they do when their replacement failed.
     */
    readonly afterSuccess?: boolean,
  ) {}

  /** Lines in the batch (array elements; one may hold more than one ip line). */
  get size(): number {
    return this.count;
  }

  push(line: string, vip?: string): void {
    const last = this.parts.at(-1);
    if (last && 'lines' in last && last.vip === vip) (last.lines as string[]).push(line);
    else this.parts.push({ lines: [line], vip });
    this.count += 1;
  }

  /** A VIP's lines, made only when written. */
  recipe(r: LineRecipe): void {
    if (r.count === 0) return;
    this.parts.push(r);
    this.count += r.count;
  }

  /** Every line with its VIP, in order. */
  *entries(): Generator<readonly [string, string | undefined]> {
    for (const p of this.parts) {
      if ('lines' in p) for (const line of p.lines) yield [line, p.vip];
      else for (const line of made(p)) yield [line, p.vip];
    }
  }

  /** All lines at once: for small batches and tests; a large one is written by chunks(). */
  get lines(): string[] {
    return [...this.entries()].map(([line]) => line);
  }

  get vips(): (string | undefined)[] {
    return [...this.entries()].map(([, vip]) => vip);
  }

  /**
   * The lines about `size` at a time, each chunk made when asked for. A VIP's lines stay in
   * one chunk, which may so run over `size` by up to one VIP's routes.
   */
  *chunks(size: number): Generator<BatchChunk> {
    let lines: string[] = [];
    let vips: (string | undefined)[] = [];
    let first = 0;
    for (const p of this.parts) {
      if ('lines' in p) {
        for (const line of p.lines) {
          lines.push(line);
          vips.push(p.vip);
          if (lines.length < size) continue;
          yield { first, lines, vips };
          first += lines.length;
          lines = [];
          vips = [];
        }
        continue;
      }
      const at = lines.length;
      p.write(lines);
      if (lines.length - at !== p.count) throw new Error(`VIP ${p.vip}: ${lines.length - at} lines made, ${p.count} counted`);
      for (let i = 0; i < p.count; i++) vips.push(p.vip);
      if (lines.length < size) continue;
      yield { first, lines, vips };
      first += lines.length;
      lines = [];
      vips = [];
    }
    if (lines.length) yield { first, lines, vips };
  }

  /** The lines at these 1-based numbers, with their VIPs (one pass, however many). */
  pick(numbers: Iterable<number>): Map<number, { readonly line: string; readonly vip: string | undefined }> {
    const wanted = new Set(numbers);
    const out = new Map<number, { readonly line: string; readonly vip: string | undefined }>();
    if (wanted.size === 0) return out;
    let n = 0;
    for (const [line, vip] of this.entries()) {
      n += 1;
      if (wanted.has(n)) out.set(n, { line, vip });
      if (out.size === wanted.size) break;
    }
    return out;
  }
}

function made(r: LineRecipe): string[] {
  const out: string[] = [];
  r.write(out);
  if (out.length !== r.count) throw new Error(`VIP ${r.vip}: ${out.length} lines made, ${r.count} counted`);
  return out;
}
