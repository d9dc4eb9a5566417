// The kube area: the agent's live view of the cluster and everything it writes back.
export { ClusterWatcher, WATCH_DEFAULTS } from './watcher.js';
export type { ClusterWatcherOptions, ClusterWatcherStatus, FeedName, FeedStatus, WatchError } from './watcher.js';
export { Feed, isTooLargeResourceVersion } from './feed.js';
export type { FeedSource, FeedTimings, ListResult, RelistReason } from './feed.js';
export { abortableCall, clusterSources } from './sources.js';
export { SnapshotBuilder, defaultConverters, plainObject, sameSnapshot } from './snapshot.js';
export type { ClusterObjects, ObjectConverters } from './snapshot.js';
export { KubeEventSink, errorText } from './events.js';
export type { KubeEventSinkOptions } from './events.js';
export { LoadBalancerStatusWriter, annotateService } from './writeback.js';
export type { AnnotationWrite, LoadBalancerStatusWriterOptions, StatusWriteResult } from './writeback.js';
export { LeaderElector } from './lease.js';
export type { LeaderElectorOptions } from './lease.js';
export { loadKubeConfig, SERVICE_ACCOUNT_DIR } from './kubeconfig.js';
export type { KubeConfigOrigin, KubeConfigSource } from './kubeconfig.js';
export { convertEndpointSlice, convertNode, convertObjects, convertPod, convertService, describeIssue, objectConverters } from './objects.js';
export type { Conversion, ConvertedObjects, KubernetesInputObject, ObjectIssue, ObjectKind } from './objects.js';
