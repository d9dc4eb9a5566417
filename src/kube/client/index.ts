// The agent's own Kubernetes client (docs/kubernetes.md "Our own client"): kubeconfig and
// in-cluster configuration, JSON requests, paged lists and watches over node:https.
export { UnsupportedKubeconfigError } from './access.js';
export type { Auth, ClusterAccess, ExecPlugin, TlsSettings } from './access.js';
export { accessFromKubeconfig, accessFromKubeconfigFile } from './kubeconfig-file.js';
export type { KubeconfigOptions } from './kubeconfig-file.js';
export { inCluster, inClusterAccess, SERVICE_ACCOUNT_DIR } from './in-cluster.js';
export { BearerToken, EXEC_PLUGIN_TIMEOUT_MS, runExecPlugin, TOKEN_FILE_REREAD_MS } from './credentials.js';
export { KubeClient, PATCH_CONTENT_TYPES } from './client.js';
export type { KubeClientOptions, KubeRequest, PatchType, QueryValue } from './client.js';
export { KubeApiError } from './errors.js';
export type { ApiStatus } from './errors.js';
export { listAll, LIST_PAGE_SIZE } from './list.js';
export type { ListedObjects, ListOptions } from './list.js';
export { watchStream } from './watch.js';
export type { WatchEventType, WatchHandle, WatchRequestOptions } from './watch.js';
export { eventPath, leasePath, resourcePath, secretPath, servicePath } from './paths.js';
export type { ResourceRef } from './paths.js';
export { accessFromClientNode, kubeClient } from './client-node-config.js';
export type { KubeConnection } from './client-node-config.js';
