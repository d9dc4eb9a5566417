// A full list in pages, as client-go's reflector lists: `limit` 500 and `continue` until
// the server says there is no more. Every page belongs to the same snapshot, so the last
// page's resourceVersion is the list's. A continue token the server no longer has (410
// Expired: compaction passed it) restarts as one full list without paging, as client-go's
// pager does. A server that ignores `limit` answers everything in one page: also fine.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from './client.js';
import { KubeApiError } from './errors.js';

export const LIST_PAGE_SIZE = 500;

export interface ListOptions<T = KubernetesObject> {
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  /** Default 500; 0 lists in one request. */
  readonly pageSize?: number;
  readonly signal?: AbortSignal;
  /**
   * Called on each item as its page arrives; what it returns is what the list keeps
   * (the feed's conversion), so only one page of raw objects is alive at a time.
   */
  readonly each?: (item: T) => T;
}

export interface ListedObjects<T> {
  readonly items: T[];
  readonly resourceVersion: string;
  /** Pages fetched (a restarted list counts all its pages). */
  readonly pages: number;
}

interface ListPage<T> {
  readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
  readonly items?: T[];
}

export async function listAll<T extends KubernetesObject = KubernetesObject>(client: KubeClient, path: string, opts: ListOptions<T> = {}): Promise<ListedObjects<T>> {
  const base = {
    ...(opts.fieldSelector ? { fieldSelector: opts.fieldSelector } : {}),
    ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
  };
  const pageSize = opts.pageSize ?? LIST_PAGE_SIZE;
  const each = opts.each ?? ((item: T) => item);
  const items: T[] = [];
  let pages = 0;
  let token: string | undefined;
  for (;;) {
    let page: ListPage<T>;
    try {
      page = await client.request<ListPage<T>>({
        method: 'GET',
        path,
        query: { ...base, ...(pageSize ? { limit: pageSize } : {}), ...(token ? { continue: token } : {}) },
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      if (token !== undefined && err instanceof KubeApiError && err.code === 410) {
        // The snapshot our pages belong to is gone: start over, in one request.
        items.length = 0;
        const full = await client.request<ListPage<T>>({ method: 'GET', path, query: base, ...(opts.signal ? { signal: opts.signal } : {}) });
        for (const item of full.items ?? []) items.push(each(item));
        return { items, resourceVersion: full.metadata?.resourceVersion ?? '', pages: pages + 1 };
      }
      throw err;
    }
    pages += 1;
    for (const item of page.items ?? []) items.push(each(item));
    token = page.metadata?.continue || undefined;
    if (!token) return { items, resourceVersion: page.metadata?.resourceVersion ?? '', pages };
  }
}
