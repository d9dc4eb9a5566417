// PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902). Strategic merge
// patch is applied as a merge patch: lists are replaced, not merged by key (enough for
// metadata.annotations and status.loadBalancer, which is all the project patches).
import { ApiError, badRequest } from './resources.js';

type Json = unknown;

const isObject = (v: Json): v is Record<string, Json> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const result: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

interface Operation {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`json patch: invalid path "${path}"`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The container of the last token, and that token. */
function locate(doc: Json, path: string): { parent: Record<string, Json> | Json[]; key: string } {
  const parts = pointer(path);
  const key = parts.pop();
  if (key === undefined) throw badRequest('json patch: cannot operate on the whole document');
  let node: Json = doc;
  for (const part of parts) {
    node = Array.isArray(node) ? node[Number(part)] : isObject(node) ? node[part] : undefined;
    if (node === undefined || node === null || typeof node !== 'object') throw badRequest(`json patch: path "${path}" does not exist`);
  }
  return { parent: node as Record<string, Json> | Json[], key };
}

function get(doc: Json, path: string): Json {
  const { parent, key } = locate(doc, path);
  const v = Array.isArray(parent) ? parent[Number(key)] : parent[key];
  if (v === undefined) throw badRequest(`json patch: path "${path}" does not exist`);
  return v;
}

function remove(doc: Json, path: string): Json {
  const { parent, key } = locate(doc, path);
  const v = get(doc, path);
  if (Array.isArray(parent)) parent.splice(Number(key), 1);
  else delete parent[key];
  return v;
}

function add(doc: Json, path: string, value: Json, replace: boolean): void {
  const { parent, key } = locate(doc, path);
  if (replace) get(doc, path);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(i) || i < 0 || i > parent.length) throw badRequest(`json patch: bad array index in "${path}"`);
    if (replace) parent[i] = value;
    else parent.splice(i, 0, value);
  } else parent[key] = value;
}

export function jsonPatch(doc: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest('json patch: body must be an array of operations');
  const result = structuredClone(doc);
  for (const raw of ops as Operation[]) {
    const value = structuredClone(raw.value);
    switch (raw.op) {
      case 'add':
        add(result, raw.path, value, false);
        break;
      case 'replace':
        add(result, raw.path, value, true);
        break;
      case 'remove':
        remove(result, raw.path);
        break;
      case 'move':
        add(result, raw.path, remove(result, raw.from ?? ''), false);
        break;
      case 'copy':
        add(result, raw.path, structuredClone(get(result, raw.from ?? '')), false);
        break;
      case 'test':
        if (JSON.stringify(get(result, raw.path)) !== JSON.stringify(value)) throw new ApiError(422, 'Invalid', `json patch: test failed at "${raw.path}"`);
        break;
      default:
        throw badRequest(`json patch: unknown op "${String(raw.op)}"`);
    }
  }
  return result;
}
