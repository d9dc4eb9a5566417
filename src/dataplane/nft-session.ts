// Element changes for one long-lived `nft -i` (see command-session.ts). nft runs each
// input line as one transaction, so a script's commands go on one line joined by "; ":
// all or nothing, as with `nft -f`. The marker, a bare word `kstmarker_N`, is a syntax
// error nft echoes back (then a caret line), whatever the ruleset holds.
import { CommandSession, type Batch } from './command-session.js';

export class NftSession extends CommandSession {
  constructor(netns?: string) {
    super(netns ? ['ip', 'netns', 'exec', netns, 'nft', '-i'] : ['nft', '-i']);
  }

  /** Applies one script of single-line commands as one transaction; throws nft's message. */
  async apply(script: string, timeoutMs: number): Promise<void> {
    const line = script
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .join('; ');
    const r = await this.send(line, timeoutMs);
    if (r instanceof Error) throw r;
    if (r.trim()) throw new Error(`nft: ${r.trim()}`);
  }

  protected override frame(batch: Batch, seq: number): Iterable<string> {
    // apply() sends one line: a script is one transaction.
    return [`${typeof batch === 'string' ? batch : batch.join('; ')}\nkstmarker_${seq}\n`];
  }

  protected override findMarker(stderr: string, seq: number): { report: string; consumed: number } | undefined {
    const echo = stderr.indexOf(`\nkstmarker_${seq}\n`);
    if (echo < 0) return undefined;
    const caretEnd = stderr.indexOf('\n', echo + `\nkstmarker_${seq}\n`.length);
    if (caretEnd < 0) return undefined; // the caret line is still on its way
    const report = stderr.slice(0, stderr.lastIndexOf('Error:', echo));
    return { report, consumed: caretEnd + 1 };
  }
}
