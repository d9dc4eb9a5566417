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

/**
 * How the real server validates an object's name: most kinds are DNS subdomains, Namespaces
 * DNS-1123 labels, Services DNS-1035 labels; core/v1 Events keep their legacy rule (not checked).
 */
export type NameRule = 'subdomain' | 'label' | 'dns1035' | 'legacy-event';

export interface ResourceType {
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** Has a status subresource: the main resource ignores status writes, /status only takes status. */
  readonly hasStatus: boolean;
  readonly nameRule: NameRule;
  /** False where a PUT must carry metadata.resourceVersion (the real strategy's AllowUnconditionalUpdate). */
  readonly unconditionalUpdate: boolean;
  /** A PUT of a missing object creates it (AllowCreateOnUpdate: Leases, core Events); elsewhere 404. */
  readonly createOnUpdate?: boolean;
  /** Paths of metav1.Time fields ("a.b[].c": every element of list b); metadata.creationTimestamp is implied. */
  readonly timeFields?: readonly string[];
  /** Paths of metav1.MicroTime fields. */
  readonly microTimeFields?: readonly string[];
}

const CONDITION_TIMES = ['status.conditions[].lastTransitionTime'];

export const RESOURCE_TYPES: readonly ResourceType[] = [
  { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false, hasStatus: true, nameRule: 'label', unconditionalUpdate: true, timeFields: CONDITION_TIMES },
  { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false, hasStatus: true, nameRule: 'subdomain', unconditionalUpdate: true, timeFields: [...CONDITION_TIMES, 'status.conditions[].lastHeartbeatTime'] },
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true, hasStatus: true, nameRule: 'subdomain', unconditionalUpdate: true, timeFields: [...CONDITION_TIMES, 'status.conditions[].lastProbeTime', 'status.startTime'] },
  { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true, hasStatus: true, nameRule: 'dns1035', unconditionalUpdate: true, timeFields: CONDITION_TIMES },
  { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true, hasStatus: false, nameRule: 'legacy-event', unconditionalUpdate: true, createOnUpdate: true, timeFields: ['firstTimestamp', 'lastTimestamp'], microTimeFields: ['eventTime', 'series.lastObservedTime'] },
  // Secrets: BGP passwords (bgp.peers[].passwordSecretRef), read by name only.
  { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true, hasStatus: false, nameRule: 'subdomain', unconditionalUpdate: true },
  { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true, hasStatus: false, nameRule: 'subdomain', unconditionalUpdate: true },
  { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true, hasStatus: false, nameRule: 'subdomain', unconditionalUpdate: true },
  { group: 'events.k8s.io', version: 'v1', plural: 'events', kind: 'Event', namespaced: true, hasStatus: false, nameRule: 'subdomain', unconditionalUpdate: true, timeFields: ['deprecatedFirstTimestamp', 'deprecatedLastTimestamp'], microTimeFields: ['eventTime', 'series.lastObservedTime'] },
  // Leases: the real strategy refuses unconditional updates (a PUT without resourceVersion is 422).
  { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true, hasStatus: false, nameRule: 'subdomain', unconditionalUpdate: false, createOnUpdate: true, microTimeFields: ['spec.acquireTime', 'spec.renewTime'] },
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

/** "leases.coordination.k8s.io", "services": how the real server names a resource in messages. */
export function qualifiedResource(type: ResourceType): string {
  return type.group ? `${type.plural}.${type.group}` : type.plural;
}

/** A metav1.StatusCause; `reason` is the CauseType (FieldValueInvalid, ResourceVersionTooLarge...). */
export interface StatusCause {
  readonly reason: string;
  readonly message: string;
  readonly field?: string;
}

export interface StatusDetails {
  readonly name?: string;
  readonly group?: string;
  readonly kind?: string;
  readonly causes?: readonly StatusCause[];
  readonly retryAfterSeconds?: number;
}

/** An API error, answered as a `Status` object with the same code, reason and details as the real server. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
    /** The Status's list metadata (a 410 on a continued list carries a new continue token). */
    readonly listMeta?: { readonly continue?: string },
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toStatus(): KubeObject {
    return {
      kind: 'Status', apiVersion: 'v1', metadata: { ...this.listMeta }, status: 'Failure', message: this.message, reason: this.reason,
      ...(this.details ? { details: this.details } : {}), code: this.code,
    };
  }
}

const detailsOf = (type: ResourceType, name: string): StatusDetails => ({ name, ...(type.group ? { group: type.group } : {}), kind: type.plural });

export const notFound = (type: ResourceType, name: string) => new ApiError(404, 'NotFound', `${qualifiedResource(type)} "${name}" not found`, detailsOf(type, name));
export const alreadyExists = (type: ResourceType, name: string) => new ApiError(409, 'AlreadyExists', `${qualifiedResource(type)} "${name}" already exists`, detailsOf(type, name));
export const conflict = (type: ResourceType, name: string) =>
  new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(type)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, detailsOf(type, name));
export const badRequest = (message: string) => new ApiError(400, 'BadRequest', message);

/** One validation failure, as apimachinery's field.Error renders it. */
export interface FieldError {
  readonly type: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueTooLong' | 'FieldValueForbidden' | 'FieldValueNotSupported';
  readonly field: string;
  /** The rejected value as Go prints it (strings quoted); absent for Required, TooLong and Forbidden. */
  readonly value?: string;
  readonly detail: string;
}

const TYPE_TEXT: Record<FieldError['type'], string> = {
  FieldValueInvalid: 'Invalid value', FieldValueRequired: 'Required value', FieldValueTooLong: 'Too long', FieldValueForbidden: 'Forbidden', FieldValueNotSupported: 'Unsupported value',
};

function errorBody(e: FieldError): string {
  const withValue = e.type === 'FieldValueInvalid' || e.type === 'FieldValueNotSupported';
  const head = withValue ? `${TYPE_TEXT[e.type]}: ${e.value ?? '""'}` : TYPE_TEXT[e.type];
  return e.detail ? `${head}: ${e.detail}` : head;
}

/**
 * 422 Invalid, like errors.NewInvalid: `Service "x" is invalid: <field>: <body>` (several errors
 * in brackets), one cause per error. `kind` is the Kind for validation, the resource for the
 * "resourceVersion must be specified" check, as the real server has them.
 */
export function invalid(group: string, kind: string, name: string, errors: readonly FieldError[]): ApiError {
  const texts = errors.map((e) => `${e.field}: ${errorBody(e)}`);
  const qualified = group ? `${kind}.${group}` : kind;
  return new ApiError(422, 'Invalid', `${qualified} "${name}" is invalid: ${texts.length === 1 ? texts[0] : `[${texts.join(', ')}]`}`, {
    name, ...(group ? { group } : {}), kind,
    causes: errors.map((e) => ({ reason: e.type, message: errorBody(e), field: e.field })),
  });
}

/** storage.NewTooLargeResourceVersionError: 504 Timeout with a ResourceVersionTooLarge cause. */
export function tooLargeResourceVersion(requested: number, current: number, retryAfterSeconds: number): ApiError {
  return new ApiError(504, 'Timeout', `Timeout: Too large resource version: ${requested}, current: ${current}`, {
    causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
    ...(retryAfterSeconds ? { retryAfterSeconds } : {}),
  });
}
