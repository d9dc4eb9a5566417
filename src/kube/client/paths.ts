// REST paths of the objects the agent reads and writes.

export interface ResourceRef {
  /** '' or absent: the core group (/api/v1). */
  readonly group?: string;
  readonly version: string;
  /** Plural, e.g. services, leases. */
  readonly resource: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: string;
}

export function resourcePath(ref: ResourceRef): string {
  const parts = [ref.group ? `/apis/${ref.group}/${ref.version}` : `/api/${ref.version}`];
  if (ref.namespace !== undefined) parts.push('namespaces', encodeURIComponent(ref.namespace));
  parts.push(ref.resource);
  if (ref.name !== undefined) parts.push(encodeURIComponent(ref.name));
  if (ref.subresource) parts.push(ref.subresource);
  return parts.join('/').replace(/^\/\//, '/');
}

export const servicePath = (namespace: string, name: string, subresource?: string) =>
  resourcePath({ version: 'v1', resource: 'services', namespace, name, ...(subresource ? { subresource } : {}) });
export const secretPath = (namespace: string, name: string) => resourcePath({ version: 'v1', resource: 'secrets', namespace, name });
export const eventPath = (namespace: string, name?: string) => resourcePath({ version: 'v1', resource: 'events', namespace, ...(name !== undefined ? { name } : {}) });
export const leasePath = (namespace: string, name?: string) =>
  resourcePath({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases', namespace, ...(name !== undefined ? { name } : {}) });
