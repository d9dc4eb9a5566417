// What a feed keeps while it lists: a source that lists in pages passes each item through
// the feed's `keep` as its page arrives, so the raw list is never alive at once; and a relist
// of unchanged objects converts nothing (the cached objects of the same version are kept).
// Against the lab API server, listed in pages of 50 by client-node, the reference client.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { DiscoveryV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { ClusterWatcher } from '../../src/kube/index.js';
import type { FeedSource } from '../../src/kube/feed.js';
import { clusterSources } from '../../src/kube/sources.js';
import { LabApiServer, waitFor } from '../../src/lab/index.js';
import { NODE, endpointSlice, node, service } from './fixtures.js';

describe('Feed keep: per-page conversion and reuse across relists', () => {
  let server: LabApiServer;
  let watcher: ClusterWatcher | undefined;
  beforeEach(async () => {
    server = new LabApiServer();
    await server.start();
  });
  afterEach(async () => {
    await watcher?.stop();
    await server.stop();
  });

  it('keeps each page as it arrives, and a relist of unchanged slices converts none of them', async () => {
    server.apply(node(NODE));
    for (let i = 0; i < 120; i++) {
      server.apply(service(`svc-${i}`, { vip: `203.0.113.${i + 1}` }));
      server.apply(endpointSlice(`svc-${i}-a`, `svc-${i}`, [`198.51.100.${i + 1}`]));
    }
    const kc = server.kubeConfig();
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    let converted = 0;
    /** Conversions done when each page of the first list had been kept. */
    const convertedAtPage: number[] = [];
    let listedInPages = 0;
    const slices: FeedSource = {
      name: 'endpointslices',
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      transform: (obj: KubernetesObject) => {
        converted += 1;
        return obj;
      },
      list: async (_signal, keep) => {
        const items: KubernetesObject[] = [];
        let token: string | undefined;
        let rv: string;
        do {
          const page = await discovery.listEndpointSliceForAllNamespaces({ limit: 50, ...(token ? { _continue: token } : {}) });
          listedInPages += 1;
          for (const item of page.items) items.push(keep(item));
          convertedAtPage.push(converted);
          rv = page.metadata?.resourceVersion ?? '';
          token = page.metadata?._continue;
        } while (token);
        return { items, resourceVersion: rv };
      },
    };
    const others = clusterSources(kc, NODE).filter((s) => s.name !== 'endpointslices');
    watcher = new ClusterWatcher({ kubeConfig: kc, nodeName: NODE, onChange: () => {}, debounceMs: 20, sources: [...others, slices], relistIntervalMs: 0 });
    await watcher.start();
    const first = await watcher.waitUntilReady(10000);
    expect(first.endpointSlices).toHaveLength(120);
    expect(listedInPages).toBe(3);
    // Converted page by page, while the list was still coming in.
    expect(convertedAtPage.slice(0, 3)).toEqual([50, 100, 120]);
    expect(converted).toBe(120);

    // A relist (410 on the resumed watch after compaction) with one slice changed: only that
    // one is converted again; the others are the very objects of before.
    const before = new Map(first.endpointSlices.map((s) => [s.name, s]));
    await server.stop();
    server.apply(endpointSlice('svc-7-a', 'svc-7', ['198.51.100.250']));
    server.compact();
    await server.start();
    await waitFor(() => watcher!.snapshot!.endpointSlices.find((s) => s.name === 'svc-7-a')!.endpoints[0]!.address === '198.51.100.250', 10000, 20);
    expect(listedInPages).toBeGreaterThanOrEqual(6);
    expect(converted).toBe(121);
    const after = watcher.snapshot!.endpointSlices;
    expect(after.filter((s) => s !== before.get(s.name)).map((s) => s.name)).toEqual(['svc-7-a']);
  });

  it('after a jump back in time, an object of the same resourceVersion and uid is converted again, not reused', async () => {
    const kc = server.kubeConfig();
    let lists = 0;
    const svc = (value: string) => ({ ...service('web'), metadata: { name: 'web', namespace: 'default', uid: 'u-web', resourceVersion: '50', annotations: { 'cmd.nu/tunnel': value } } }) as KubernetesObject;
    const services: FeedSource = {
      name: 'services',
      path: '/api/v1/services',
      // First the cluster as it was at revision 100; then a restored one at 80 whose object
      // carries the same resourceVersion and uid with other contents.
      list: async (_signal, keep) => {
        lists += 1;
        return lists === 1 ? { items: [keep(svc('203.0.113.1'))], resourceVersion: '100' } : { items: [keep(svc('203.0.113.2'))], resourceVersion: '80' };
      },
    };
    const others = clusterSources(kc, NODE).filter((s) => s.name !== 'services');
    watcher = new ClusterWatcher({ kubeConfig: kc, nodeName: NODE, onChange: () => {}, debounceMs: 20, sources: [...others, services], relistIntervalMs: 500 });
    await watcher.start();
    const first = await watcher.waitUntilReady(10000);
    expect(first.services[0]!.annotations['cmd.nu/tunnel']).toBe('203.0.113.1');
    await waitFor(() => watcher!.snapshot!.services[0]!.annotations['cmd.nu/tunnel'] === '203.0.113.2', 10000, 20);
    // The periodic relist found the reused object, and listed once more without reuse.
    expect(lists).toBeGreaterThanOrEqual(3);
  });
});
