// A watch: one long GET with watch=true whose body is one JSON event per line
// ({"type": "ADDED", "object": {...}}). The same shape as client-node's Watch.watch, so the
// feed's logic did not change with the transport: the promise resolves with a handle once
// the server accepted the watch (2xx headers), `onEvent` gets each event, `onDone` is
// called once when the stream ends (no error: the server's timeout) or fails. Aborting
// through the handle ends it at any time, also before the headers.
import type { KubeClient, QueryValue } from './client.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchHandle {
  abort(): void;
}

export interface WatchRequestOptions {
  /** Time allowed until the response headers (a request accepted and never answered). */
  readonly headersTimeoutMs?: number;
}

export async function watchStream(
  client: KubeClient,
  path: string,
  query: Readonly<Record<string, QueryValue>>,
  onEvent: (type: string, object: unknown) => void,
  onDone: (err?: unknown) => void,
  opts: WatchRequestOptions = {},
): Promise<WatchHandle> {
  const controller = new AbortController();
  let finished = false;
  const done = (err?: unknown) => {
    if (finished) return;
    finished = true;
    onDone(err);
  };
  const timer = opts.headersTimeoutMs
    ? setTimeout(() => controller.abort(new Error(`watch ${path}: no response headers within ${opts.headersTimeoutMs} ms`)), opts.headersTimeoutMs)
    : undefined;
  let res;
  try {
    res = await client.stream({ method: 'GET', path, query: { ...query, watch: true }, signal: controller.signal });
  } catch (err) {
    finished = true;
    throw controller.signal.aborted && controller.signal.reason instanceof Error ? controller.signal.reason : err;
  } finally {
    clearTimeout(timer);
  }
  res.setEncoding('utf8');
  let buffered = '';
  res.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while (!finished && !controller.signal.aborted && (nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      let event: { type?: string; object?: unknown };
      try {
        event = JSON.parse(line) as typeof event;
      } catch {
        controller.abort();
        return done(new Error(`watch ${path}: a line that is not JSON: ${line.slice(0, 120)}`));
      }
      onEvent(event.type ?? '', event.object);
    }
  });
  let ended = false;
  res.on('end', () => {
    ended = true;
    done();
  });
  res.on('error', (err) => done(err));
  // Closed without its end: the connection broke (a reset), or we aborted.
  res.on('close', () => {
    if (!ended) done(controller.signal.aborted ? controller.signal.reason : new Error(`watch ${path}: the connection closed in the middle of the stream`));
  });
  return { abort: () => controller.abort() };
}
