// List paging as kube-apiserver does it (`limit` and `continue`, API concepts "Retrieving
// large results sets in chunks"): a page holds at most `limit` objects in key order; when
// more remain, `metadata.continue` carries an opaque token and `metadata.remainingItemCount`
// how many (only without selectors, as the real server: with one it cannot count cheaply).
//
// The token is the real server's (apiserver/pkg/storage/continue.go): base64url (no padding)
// of {"v":"meta.k8s.io/v1","rv":<the list's resourceVersion>,"start":"<next key>"}. Every
// page of one list is served at that resourceVersion, so the pages are one consistent list;
// once history no longer reaches back to it the next page is 410 Expired, with a token at
// rv -1 that continues at the latest state instead (the client's choice).
import { ApiError, badRequest } from './resources.js';
import type { StoredEntry } from './store.js';

export interface ContinueToken {
  /** The list's resourceVersion; -1: continue at the latest one (after 410, inconsistent). */
  readonly rv: number;
  /** The first key of the next page. */
  readonly start: string;
}

const VERSION = 'meta.k8s.io/v1';

export function encodeContinue(token: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: VERSION, rv: token.rv, start: token.start })).toString('base64url');
}

/** 400 BadRequest "invalid continue token: ..." for anything this server did not make. */
export function decodeContinue(text: string): ContinueToken {
  const invalid = (why: string) => badRequest(`invalid continue token: continue key is not valid: ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalid('not base64 encoded JSON');
  }
  const t = parsed as { v?: unknown; rv?: unknown; start?: unknown } | null;
  if (t === null || typeof t !== 'object' || t.v !== VERSION) throw invalid(`server does not recognize this encoded key version`);
  if (typeof t.rv !== 'number' || !Number.isSafeInteger(t.rv) || t.rv === 0 || t.rv < -1) throw invalid(`incorrect encoded start resourceVersion (version ${VERSION})`);
  if (typeof t.start !== 'string' || t.start === '') throw invalid('encoded key is empty');
  if (t.start.split('/').includes('..')) throw invalid('key is not a valid relative key');
  return { rv: t.rv, start: t.start };
}

/** The real server's message when a continue token's resourceVersion was compacted (storage/etcd3/store.go). */
export const INCONSISTENT_CONTINUE =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

/** 410 Gone, reason Expired, with a token that continues at the latest state from the same key. */
export function continueExpired(start: string): ApiError {
  return new ApiError(410, 'Expired', INCONSISTENT_CONTINUE, undefined, { continue: encodeContinue({ rv: -1, start }) });
}

/** `limit` as the real server parses it: an integer; 0 or less means no limit. */
export function parseLimit(text: string | null): number {
  if (text === null || text === '') return 0;
  if (!/^-?\d+$/.test(text)) throw badRequest(`invalid limit "${text}": strconv.ParseInt: parsing "${text}": invalid syntax`);
  return Math.max(0, Number(text));
}

export interface Page {
  readonly items: readonly StoredEntry[];
  readonly continue?: string;
  readonly remainingItemCount?: number;
}

/**
 * One page of `entries` (in key order, already filtered by the selectors) from `start`.
 * `counted`: no selector was given, so the remaining count is reported.
 */
export function pageOf(entries: readonly StoredEntry[], rv: number, limit: number, start: string | undefined, counted: boolean): Page {
  let from = 0;
  if (start !== undefined) {
    // Binary search: entries are sorted by key.
    let hi = entries.length;
    while (from < hi) {
      const mid = (from + hi) >>> 1;
      if (entries[mid]!.key < start) from = mid + 1;
      else hi = mid;
    }
  }
  const rest = entries.length - from;
  if (limit <= 0 || rest <= limit) return { items: entries.slice(from) };
  const items = entries.slice(from, from + limit);
  // The next key after the last one returned (etcd's "key + \x00").
  const next = `${items[items.length - 1]!.key}\u0000`;
  return { items, continue: encodeContinue({ rv, start: next }), ...(counted ? { remainingItemCount: rest - limit } : {}) };
}
