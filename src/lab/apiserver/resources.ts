// The resource types the lab API server serves, and the Status errors it answers with.
// Only what the project (and `kst lab`) talks to; adding a type is one line.

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/** A Kubernetes object as JSON: the server never interprets more than metadata and status. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [key: string]: unknown;
}

export interface ResourceType {
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** Has a status subresource: the main resource ignores status writes, /status only takes status. */
  readonly hasStatus: boolean;
}

export const RESOURCE_TYPES: readonly ResourceType[] = [
  { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false, hasStatus: true },
  { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false, hasStatus: true },
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true, hasStatus: true },
  { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true, hasStatus: true },
  { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true, hasStatus: false },
  { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true, hasStatus: false },
  { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true, hasStatus: false },
  { group: 'events.k8s.io', version: 'v1', plural: 'events', kind: 'Event', namespaced: true, hasStatus: false },
  { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true, hasStatus: false },
];

export function apiVersionOf(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

export function resourceKey(type: ResourceType): string {
  return `${type.group}/${type.version}/${type.plural}`;
}

export function findByPath(group: string, version: string, plural: string): ResourceType | undefined {
  return RESOURCE_TYPES.find((t) => t.group === group && t.version === version && t.plural === plural);
}

export function findByKind(apiVersion: string, kind: string): ResourceType | undefined {
  return RESOURCE_TYPES.find((t) => apiVersionOf(t) === apiVersion && t.kind === kind);
}

/** An API error, answered as a `Status` object with the same code and reason as the real server. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toStatus(): KubeObject {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, code: this.code };
  }
}

export const notFound = (type: ResourceType, name: string) => new ApiError(404, 'NotFound', `${type.plural} "${name}" not found`);
export const badRequest = (message: string) => new ApiError(400, 'BadRequest', message);
