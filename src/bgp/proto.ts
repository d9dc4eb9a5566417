// Loads GoBGP's API definition (copied from Debian's golang-github-osrg-gobgp-dev by
// `npm run proto`) once, for both halves of the wire format:
// - the gRPC service (@grpc/proto-loader, keepCase: field names as in the .proto),
// - the google.protobuf.Any payloads (NLRI, path attributes), encoded with protobufjs
//   from a Root loaded with the SAME keepCase setting. Mixing snake_case and camelCase
//   makes protobufjs drop fields silently and gobgpd answer a bare UNKNOWN.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const PROTO_FILES = ['gobgp.proto', 'attribute.proto', 'capability.proto'];
export const TYPE_URL_PREFIX = 'type.googleapis.com/apipb.';

/** The package root: the nearest ancestor with our package.json (works from src/ and dist/src/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'kube-service-tunnel') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('GoBGP protos: package root (package.json of kube-service-tunnel) not found');
    dir = up;
  }
}

export function protoDir(): string {
  const dir = process.env.KST_GOBGP_PROTO_DIR ?? join(packageRoot(), 'proto', 'gobgp');
  for (const f of PROTO_FILES) {
    if (!existsSync(join(dir, f))) throw new Error(`GoBGP protos: ${join(dir, f)} missing; run \`npm run proto\` (needs Debian's golang-github-osrg-gobgp-dev)`);
  }
  return dir;
}

export interface GobgpProtos {
  /** Constructor of the apipb.GobgpApi service client. */
  readonly Service: grpc.ServiceClientConstructor;
  /** protobufjs types for Any payloads, snake_case field names. */
  readonly root: protobuf.Root;
}

let cached: GobgpProtos | undefined;

export function loadGobgpProtos(): GobgpProtos {
  if (cached) return cached;
  const dir = protoDir();
  const def = protoLoader.loadSync(PROTO_FILES.map((f) => join(dir, f)), {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [dir],
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { apipb: { GobgpApi: grpc.ServiceClientConstructor } };
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/') ? target : join(dir, target.replace(/^.*\//, '')));
  root.loadSync(PROTO_FILES.map((f) => join(dir, f)), { keepCase: true });
  root.resolveAll();
  cached = { Service: pkg.apipb.GobgpApi, root };
  return cached;
}

const types = new Map<string, protobuf.Type>();
function messageType(name: string): protobuf.Type {
  let t = types.get(name);
  if (!t) {
    t = loadGobgpProtos().root.lookupType(`apipb.${name}`);
    types.set(name, t);
  }
  return t;
}

/**
 * Encodes `value` as an Any of apipb.`typeName`. Unknown keys throw: protobufjs would
 * drop them silently (a camelCase key here would vanish on the wire).
 */
export function packAny(typeName: string, value: Record<string, unknown>): { type_url: string; value: Buffer } {
  const type = messageType(typeName);
  for (const k in value) if (!(k in type.fields)) throw new Error(`GoBGP ${typeName}: unknown field ${k}`);
  const msg = type.fromObject(value);
  return { type_url: `${TYPE_URL_PREFIX}${typeName}`, value: Buffer.from(type.encode(msg).finish()) };
}

/** Decodes an Any from a gobgpd reply into [type name, plain object (snake_case)]. */
export function unpackAny(any: { type_url?: string; value?: Uint8Array }): [string, Record<string, unknown>] {
  const name = (any.type_url ?? '').replace(/^.*\//, '').replace(/^apipb\./, '');
  const type = messageType(name);
  const msg = type.decode(any.value ?? new Uint8Array());
  return [name, type.toObject(msg, { longs: Number, enums: String, defaults: true, arrays: true }) as Record<string, unknown>];
}
