// The four resources the agent watches, listed through client-node's typed API with an
// AbortSignal (client-node 1.4.0's typed calls have no timeout of their own: the signal
// is the deadline).
import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { abortSignalOptions } from './deadline.js';
import type { FeedSource, ListResult } from './feed.js';

const asResult = (list: KubernetesListObject<KubernetesObject>): ListResult => ({ items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' });

/** Services, EndpointSlices and Nodes cluster-wide; Pods of this node only. */
export function clusterSources(kubeConfig: KubeConfig, nodeName: string): FeedSource[] {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
  const podsOnNode = `spec.nodeName=${nodeName}`;
  return [
    { name: 'services', path: '/api/v1/services', list: async (signal) => asResult(await core.listServiceForAllNamespaces({}, abortSignalOptions(signal))) },
    { name: 'endpointslices', path: '/apis/discovery.k8s.io/v1/endpointslices', list: async (signal) => asResult(await discovery.listEndpointSliceForAllNamespaces({}, abortSignalOptions(signal))) },
    { name: 'nodes', path: '/api/v1/nodes', list: async (signal) => asResult(await core.listNode({}, abortSignalOptions(signal))) },
    {
      name: 'pods',
      path: '/api/v1/pods',
      fieldSelector: podsOnNode,
      list: async (signal) => asResult(await core.listPodForAllNamespaces({ fieldSelector: podsOnNode }, abortSignalOptions(signal))),
    },
  ];
}
