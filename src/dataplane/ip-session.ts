// Batches for one long-lived `ip -force -batch -` (see command-session.ts). ip numbers
// its input lines and reports each failed one as "Command failed -:N" after the error;
// the marker, `nexthop show id 0`, always fails (0 is never a valid nexthop id).
import { CommandSession, type Batch } from './command-session.js';

const MARKER = 'nexthop show id 0';
/** Lines per piece written to ip's stdin. */
const PIECE_LINES = 4096;

export interface FailedLine {
  /** 1-based line in the batch. */
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

  /** `args`: ip's options before `-force -batch -` (e.g. `-n NS`, `-6`). */
  constructor(args: readonly string[]) {
    super(['ip', ...args, '-force', '-batch', '-']);
  }

  /** Applies one batch; every line is tried (-force). Never rejects. */
  async apply(lines: readonly string[], timeoutMs: number): Promise<IpBatchResult> {
    const r = await this.send(lines, timeoutMs);
    if (r instanceof Error) return { ok: false, failed: [], stderr: r.message };
    const failed = parseBatchErrors(r);
    return failed.length ? { ok: false, failed, stderr: r.trim() } : { ok: true, failed: [], stderr: '' };
  }

  protected override restarted(): void {
    this.written = 0;
    this.spans.clear();
  }

  protected override *frame(batch: Batch, seq: number): Iterable<string> {
    const lines = typeof batch === 'string' ? [batch] : batch;
    const first = this.written + 1;
    // A line holding a newline is two to ip: count what ip counts.
    for (const line of lines) this.written += lineCount(line);
    this.written += 1; // the marker
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

/** Lines in `text` (one more than its newlines), counted without splitting: a first full
 * batch is hundreds of thousands of lines, and split() made a string of each only to count. */
export function lineCount(text: string): number {
  let n = 1;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) n += 1;
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
