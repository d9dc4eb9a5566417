// The four resources the agent watches, listed in pages by the agent's own client
// (client/list.ts) with the feed's AbortSignal as the deadline; each item is kept by the
// feed as its page arrives (only one page of raw objects alive at a time).
import { kubeClient, listAll, type KubeConnection } from './client/index.js';
import type { FeedSource } from './feed.js';

/** Services, EndpointSlices and Nodes cluster-wide; Pods of this node only. */
export function clusterSources(connection: KubeConnection, nodeName: string): FeedSource[] {
  const client = kubeClient(connection);
  const podsOnNode = `spec.nodeName=${nodeName}`;
  const source = (name: FeedSource['name'], path: string, fieldSelector?: string): FeedSource => ({
    name,
    path,
    ...(fieldSelector ? { fieldSelector } : {}),
    list: async (signal, keep) => listAll(client, path, { signal, each: keep, ...(fieldSelector ? { fieldSelector } : {}) }),
  });
  return [
    source('services', '/api/v1/services'),
    source('endpointslices', '/apis/discovery.k8s.io/v1/endpointslices'),
    source('nodes', '/api/v1/nodes'),
    source('pods', '/api/v1/pods', podsOnNode),
  ];
}
