// The four resources the agent watches, listed through client-node's typed API with an
// AbortSignal (client-node 1.4.0's typed calls have no timeout of their own: the signal
// is the deadline), in pages of 500 as client-go's reflector lists, each item kept by the
// feed as its page arrives (only one page of raw objects alive at a time).
import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { abortSignalOptions } from './deadline.js';
import type { FeedSource, ListResult } from './feed.js';

const PAGE = 500;

type PageOptions = { limit: number; _continue?: string };

/**
 * Every page of one list (the server keeps them at the first page's resourceVersion). A
 * continue token the server no longer has (410) starts the list again.
 */
async function pagedList(fetchPage: (opts: PageOptions) => Promise<KubernetesListObject<KubernetesObject>>, keep: (obj: KubernetesObject) => KubernetesObject): Promise<ListResult> {
  const items: KubernetesObject[] = [];
  let token: string | undefined;
  for (;;) {
    let page: KubernetesListObject<KubernetesObject>;
    try {
      page = await fetchPage({ limit: PAGE, ...(token ? { _continue: token } : {}) });
    } catch (err) {
      if (token === undefined || (err as { code?: number }).code !== 410) throw err;
      items.length = 0;
      token = undefined;
      continue;
    }
    for (const item of page.items) items.push(keep(item));
    token = page.metadata?._continue || undefined;
    if (!token) return { items, resourceVersion: page.metadata?.resourceVersion ?? '' };
  }
}

/** Services, EndpointSlices and Nodes cluster-wide; Pods of this node only. */
export function clusterSources(kubeConfig: KubeConfig, nodeName: string): FeedSource[] {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
  const podsOnNode = `spec.nodeName=${nodeName}`;
  return [
    { name: 'services', path: '/api/v1/services', list: (signal, keep) => pagedList((p) => core.listServiceForAllNamespaces(p, abortSignalOptions(signal)), keep) },
    { name: 'endpointslices', path: '/apis/discovery.k8s.io/v1/endpointslices', list: (signal, keep) => pagedList((p) => discovery.listEndpointSliceForAllNamespaces(p, abortSignalOptions(signal)), keep) },
    { name: 'nodes', path: '/api/v1/nodes', list: (signal, keep) => pagedList((p) => core.listNode(p, abortSignalOptions(signal)), keep) },
    {
      name: 'pods',
      path: '/api/v1/pods',
      fieldSelector: podsOnNode,
      list: (signal, keep) => pagedList((p) => core.listPodForAllNamespaces({ ...p, fieldSelector: podsOnNode }, abortSignalOptions(signal)), keep),
    },
  ];
}
