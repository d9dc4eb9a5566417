// Batches for one long-lived `ip -force -batch -` (see command-session.ts). ip numbers
// its input lines and reports each failed one as "Command failed -:N" after the error;
// the marker, `nexthop show id 0`, always fails (0 is never a valid nexthop id).
//
// iproute2 (6.1 measured) keeps about 4 KB per `route` line in batch mode for the life of
// the process: 200,000 lines left one ip at 810 MB, and the first programming of 10,000
// VIPs (2.56 million routes) grew it past 3 GB before it was a third done. So a large
// batch goes in chunks, and the process is replaced (at EOF, between chunks) once it has
// taken `recycleLines`; a node's steady trickle of changes recycles it now and then.
import { CommandSession, type Batch } from './command-session.js';

const MARKER = 'nexthop show id 0';
/** Lines per piece written to ip's stdin. */
const PIECE_LINES = 4096;

/** Lines per chunk of a large batch, and lines after which the process is replaced. */
export interface IpSessionLimits {
  readonly chunkLines: number;
  readonly recycleLines: number;
}

/** About 80 MB and 200 MB of ip's memory. */
const DEFAULT_LIMITS: IpSessionLimits = { chunkLines: 20_000, recycleLines: 50_000 };

/**
 * A batch's lines as an array, or made chunk by chunk while they are written (IpBatch): a
 * first programming's 2.56 million route lines are never all held at once.
 */
export type IpLines = readonly string[] | { readonly size: number; chunks(size: number): Iterable<{ readonly lines: readonly string[] }> };

export interface FailedLine {
  /**
   * 1-based line in the batch, as given: an element holding a newline is one line here
   * though ip reads it as two (a failure in either names that element).
   */
  readonly line: number;
  readonly message: string;
}

export interface IpBatchResult {
  readonly ok: boolean;
  readonly failed: readonly FailedLine[];
  readonly stderr: string;
}

export class IpBatchSession extends CommandSession {
  /** Lines written to the current process. */
  private written = 0;
  /** seq -> [first line, marker line] of batches in flight. */
  private readonly spans = new Map<number, readonly [number, number]>();
  private applying: Promise<unknown> = Promise.resolve();

  /** Lines taken by the processes this session started (tests). */
  linesTaken = 0;

  /** `args`: ip's options before `-force -batch -` (e.g. `-n NS`, `-6`). */
  constructor(
    args: readonly string[],
    private readonly limits: IpSessionLimits = DEFAULT_LIMITS,
  ) {
    super(['ip', ...args, '-force', '-batch', '-']);
  }

  /**
   * Applies one batch; every line is tried (-force). Never rejects. A batch larger than a
   * chunk goes chunk by chunk (in order, each bounded by `timeoutMs`); failed lines are
   * numbered within the whole batch. A chunk that fails as a whole (the process died or
   * overran) ends the batch: the rest is not sent.
   */
  apply(lines: IpLines, timeoutMs: number): Promise<IpBatchResult> {
    // Whole batches in order: the chunks of two batches never interleave.
    const run = this.applying.then(() => this.applyChunks(lines, timeoutMs));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async applyChunks(lines: IpLines, timeoutMs: number): Promise<IpBatchResult> {
    const failed: FailedLine[] = [];
    const reports: string[] = [];
    const chunks = Array.isArray(lines) ? arrayChunks(lines as readonly string[], this.limits.chunkLines) : (lines as Exclude<IpLines, readonly string[]>).chunks(this.limits.chunkLines);
    let from = 0;
    let sent = false;
    // Each chunk is made just before it is written; awaiting ip between chunks lets the
    // event loop run (a first programming is ~130 chunks).
    for (const chunk of chunks) {
      sent = true;
      const r = await this.send(chunk.lines, timeoutMs);
      if (r instanceof Error) return { ok: false, failed, stderr: [...reports, r.message].join('\n') };
      const errors = parseBatchErrors(r);
      const element = errors.length ? elementsOf(chunk.lines) : undefined;
      const own = errors.map((f) => ({ line: f.line && element!(f.line) + from, message: f.message }));
      failed.push(...own);
      if (own.length) reports.push(r.trim());
      from += chunk.lines.length;
    }
    if (!sent) {
      const r = await this.send([], timeoutMs);
      if (r instanceof Error) return { ok: false, failed, stderr: r.message };
    }
    return failed.length ? { ok: false, failed, stderr: reports.join('\n') } : { ok: true, failed: [], stderr: '' };
  }

  protected override recycleBefore(batch: Batch): boolean {
    return this.written > 0 && this.written + batchLines(batch) > this.limits.recycleLines;
  }

  protected override restarted(): void {
    this.written = 0;
    this.spans.clear();
  }

  protected override *frame(batch: Batch, seq: number): Iterable<string> {
    const lines = typeof batch === 'string' ? [batch] : batch;
    const first = this.written + 1;
    // A line holding a newline is two to ip: count what ip counts.
    const count = batchLines(batch);
    this.linesTaken += count;
    this.written += count + 1; // and the marker
    this.spans.set(seq, [first, this.written]);
    for (let i = 0; i < lines.length; i += PIECE_LINES) yield `${lines.slice(i, i + PIECE_LINES).join('\n')}\n`;
    yield `${MARKER}\n`;
  }

  /** The batch's report, its "Command failed" lines renumbered from 1; the marker's cut off. */
  protected override findMarker(stderr: string, seq: number): { report: string; consumed: number } | undefined {
    const [first, marker] = this.spans.get(seq)!;
    const tag = `Command failed -:${marker}\n`;
    const at = stderr.indexOf(tag);
    if (at < 0) return undefined;
    this.spans.delete(seq);
    const before = stderr.slice(0, at);
    const last = before.lastIndexOf('Command failed -:');
    const own = last < 0 ? '' : before.slice(0, before.indexOf('\n', last) + 1);
    const report = own.replace(/^Command failed -:(\d+)$/gm, (_, n: string) => `Command failed -:${Number(n) - first + 1}`);
    return { report, consumed: at + tag.length };
  }
}

function* arrayChunks(lines: readonly string[], size: number): Iterable<{ readonly lines: readonly string[] }> {
  for (let from = 0; from < lines.length; from += size) yield { lines: lines.slice(from, from + size) };
}

/**
 * ip's 1-based line number -> the 1-based element of `lines` holding it (ip numbers what it
 * reads; an element with a newline is more than one line to it).
 */
export function elementsOf(lines: readonly string[]): (ipLine: number) => number {
  if (!lines.some((l) => l.includes('\n'))) return (n) => Math.min(n, lines.length);
  // ends[i]: ip's number of the last line of element i.
  const ends = new Int32Array(lines.length);
  let seen = 0;
  for (let i = 0; i < lines.length; i++) ends[i] = seen += lineCount(lines[i]!);
  return (n) => {
    let lo = 0;
    let hi = lines.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ends[mid]! >= n) hi = mid;
      else lo = mid + 1;
    }
    return lo + 1;
  };
}

/** Lines in `text` (one more than its newlines), counted without splitting: a first full
 * batch is hundreds of thousands of lines, and split() made a string of each only to count. */
export function lineCount(text: string): number {
  let n = 1;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) n += 1;
  return n;
}

/** Lines ip reads for a batch (without its marker). */
function batchLines(batch: Batch): number {
  if (typeof batch === 'string') return lineCount(batch);
  let n = 0;
  for (const line of batch) n += lineCount(line);
  return n;
}

/** Pairs each "Command failed -:N" with the message printed just before it. */
export function parseBatchErrors(stderr: string): FailedLine[] {
  const out: FailedLine[] = [];
  let previous: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)/.exec(line);
    if (m) {
      out.push({ line: Number(m[1]), message: previous.join('; ') || 'failed' });
      previous = [];
    } else if (line.trim()) previous.push(line.trim());
  }
  if (out.length === 0 && previous.length) out.push({ line: 0, message: previous.join('; ') });
  return out;
}
