// Loading the configuration: one YAML file, then environment variables, then `--set`
// flags, each overriding the one before; the merged result is validated once by the
// schema (unknown fields are errors) and by checks.ts. Every problem is reported at
// once, each with its field path, the bad value and where the value came from.
//
//   file:  --config FILE (or KST_CONFIG)
//   env:   KST_<FIELD>, nested levels joined by "__":  KST_LOG_LEVEL=debug,
//          KST_BGP__ASN=64513, KST_ENCAPSULATION__MODE=mpls, KST_POOLS='[{...}]'
//   flags: --set path=value (repeatable): --set bgp.asn=64513 --set pools[0].autoAssign=true
// Values from env and flags are YAML ("64513" is a number, "[a, b]" a list), except where
// the field is a string, which takes the text as it is.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseDocument } from 'yaml';
import { checkConfig, type ConfigIssue } from './checks.js';
import { envFieldMap, kindOf, objectShape, schemaAt, unwrap } from './introspect.js';
import { configSchema, type Config } from './schema.js';

export type { ConfigIssue } from './checks.js';

export const ENV_PREFIX = 'KST_';
/**
 * Environment variables with the prefix that are not configuration fields (the config
 * file, other commands' and the test harness's settings): never reported as unknown.
 * Any other KST_* variable that is not a field is an error, like an unknown key in the file.
 */
export const RESERVED_ENV: ReadonlySet<string> = new Set(['KST_CONFIG', 'KST_API_ADDRESS', 'KST_GOBGP_PROTO_DIR', 'KST_IN_UML', 'KST_SELFTEST', 'KST_GUEST', 'KST_IN_GUEST']);
/** Prefixes of variables owned by the lab and the tests. */
export const RESERVED_ENV_PREFIXES: readonly string[] = ['KST_LAB_', 'KST_TEST_', 'KST_GUEST_'];

export class ConfigError extends Error {
  constructor(
    readonly issues: readonly ConfigIssue[],
    readonly source?: string,
  ) {
    super(`invalid configuration${source ? ` (${source})` : ''}:\n${issues.map((i) => `  ${i.path || '(file)'}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface ConfigSources {
  /** YAML file path. */
  readonly file?: string;
  /** Environment (defaults to none: pass process.env explicitly). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** `path=value` overrides, applied last. */
  readonly set?: readonly string[];
  /** Fill nodeName from env NODE_NAME, then the hostname, when no source sets it. */
  readonly resolveNodeName?: boolean;
}

type Path = (string | number)[];

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

/** "pools[0].cidrs" or "pools.0.cidrs" -> ["pools", 0, "cidrs"] */
export function parsePath(text: string): Path {
  const out: Path = [];
  for (const part of text.replace(/\[(\d+)\]/g, '.$1').split('.')) {
    if (part === '') throw new Error(`"${text}" is not a field path (expected e.g. bgp.asn or pools[0].name)`);
    out.push(/^\d+$/.test(part) ? Number(part) : part);
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? 'nothing' : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** A text value for a field: strings stay text, everything else is read as YAML. */
function typedValue(path: Path, text: string): unknown {
  const s = schemaAt(configSchema, path);
  if (s && ['string', 'enum'].includes(kindOf(s))) return text;
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new Error(doc.errors[0]!.message.split('\n')[0]);
  return doc.toJS();
}

function setAt(root: Record<string, unknown>, path: Path, value: unknown): void {
  let node: Record<PropertyKey, unknown> = root;
  path.forEach((seg, i) => {
    if (i === path.length - 1) {
      node[seg] = value;
      return;
    }
    const next = node[seg];
    if (next === null || typeof next !== 'object') node[seg] = typeof path[i + 1] === 'number' ? [] : {};
    node = node[seg] as Record<PropertyKey, unknown>;
  });
}

/** Reads and parses a YAML file; YAML syntax errors become issues with line and column. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '', message: `cannot read: ${(err as Error).message}` }], file);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ path: '', message: `YAML ${e.linePos ? `line ${e.linePos[0].line} column ${e.linePos[0].col}` : ''}: ${e.message.split('\n')[0]}` })),
      file,
    );
  }
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError([{ path: '', message: `expected a mapping of fields at the top level, got ${show(raw)}` }], file);
  return raw as Record<string, unknown>;
}

/** Applies env and --set overrides onto raw (unvalidated) configuration; returns issues for bad ones. */
export function applyOverrides(raw: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>, set: readonly string[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const fields = envFieldMap(configSchema, ENV_PREFIX);
  for (const name of Object.keys(env).sort()) {
    const text = env[name];
    if (!name.startsWith(ENV_PREFIX) || RESERVED_ENV.has(name) || RESERVED_ENV_PREFIXES.some((p) => name.startsWith(p)) || text === undefined) continue;
    const path = fields.get(name);
    if (!path) {
      issues.push({ path: '', message: `environment variable ${name} is not a configuration field (e.g. KST_LOG_LEVEL, KST_BGP__ASN)` });
      continue;
    }
    try {
      setAt(raw, path, typedValue(path, text));
    } catch (err) {
      issues.push({ path: formatPath(path), message: `from ${name}: cannot read ${show(text)} as YAML: ${(err as Error).message}` });
    }
  }
  for (const item of set) {
    const eq = item.indexOf('=');
    if (eq <= 0) {
      issues.push({ path: '', message: `--set ${show(item)}: expected path=value` });
      continue;
    }
    try {
      const path = parsePath(item.slice(0, eq).trim());
      if (!schemaAt(configSchema, path)) {
        issues.push({ path: formatPath(path), message: `--set: no such configuration field` });
        continue;
      }
      setAt(raw, path, typedValue(path, item.slice(eq + 1)));
    } catch (err) {
      issues.push({ path: item.slice(0, eq), message: `--set: ${(err as Error).message}` });
    }
  }
  return issues;
}

/** Schema issues rewritten for people: path, bad value, and what was expected. */
function schemaIssues(raw: unknown, issues: readonly { code: string; path: PropertyKey[]; message: string; keys?: string[] }[]): ConfigIssue[] {
  return issues.flatMap((i) => {
    const path = formatPath(i.path);
    if (i.code === 'unrecognized_keys') {
      const shape = objectShape(schemaAt(configSchema, i.path as Path) ?? configSchema);
      const allowed = shape ? Object.keys(shape) : [];
      return (i.keys ?? []).map((k) => {
        const near = closest(k, allowed);
        return {
          path: formatPath([...i.path, k]),
          message: `unknown field${near ? `; did you mean "${near}"?` : ''} (allowed here: ${allowed.join(', ')})`,
        };
      });
    }
    const value = valueAt(raw, i.path);
    if (value === undefined && i.code === 'invalid_type') return [{ path, message: 'required field is missing' }];
    return [{ path, message: `${show(value)}: ${i.message.replace(/^Invalid input: /, '')}` }];
  });
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  const dist = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
    return d[a.length]![b.length]!;
  };
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const dd = dist(word, c);
    if (dd < bestD) {
      best = c;
      bestD = dd;
    }
  }
  return best;
}

export type ConfigResult = { readonly ok: true; readonly config: Config } | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/** Validates raw configuration (after overrides): schema first, then cross-field checks. */
export function parseConfig(raw: unknown): ConfigResult {
  const r = configSchema.safeParse(raw);
  if (r.success) {
    const issues = checkConfig(r.data);
    return issues.length > 0 ? { ok: false, issues } : { ok: true, config: r.data };
  }
  const issues = schemaIssues(raw, r.error.issues as never);
  // Report the cross-field problems too, so one run shows every mistake: drop the fields
  // the schema rejected (their defaults apply) and check what remains.
  const repaired = withoutBadFields(raw, r.error.issues as never);
  const again = repaired === undefined ? undefined : configSchema.safeParse(repaired);
  if (again?.success) {
    const reported = new Set(issues.map((i) => i.path));
    issues.push(...checkConfig(again.data).filter((i) => !reported.has(i.path)));
  }
  return { ok: false, issues };
}

/** A copy of raw without the offending fields, or undefined when a required field is missing. */
function withoutBadFields(raw: unknown, issues: readonly { code: string; path: PropertyKey[]; keys?: string[] }[]): unknown {
  const copy = structuredClone(raw) as Record<PropertyKey, unknown>;
  for (const i of issues) {
    const paths = i.code === 'unrecognized_keys' ? (i.keys ?? []).map((k) => [...i.path, k]) : [i.path];
    for (const p of paths) {
      if (p.length === 0 || valueAt(copy, p) === undefined) return undefined;
      const parent = valueAt(copy, p.slice(0, -1)) as Record<PropertyKey, unknown>;
      const schema = schemaAt(configSchema, p as Path);
      // A field without a default cannot be dropped: its absence is another error.
      const droppable = i.code === 'unrecognized_keys' || (schema !== undefined && (unwrap(schema).hasDefault || unwrap(schema).optional));
      if (!droppable || Array.isArray(parent)) return undefined;
      delete parent[p[p.length - 1]!];
    }
  }
  return copy;
}

/** File, then env, then --set; throws ConfigError listing every issue. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? {};
  const file = sources.file ?? env.KST_CONFIG;
  const raw = file ? readConfigFile(file) : {};
  const overrideIssues = applyOverrides(raw, env, sources.set ?? []);
  const r = parseConfig(raw);
  const issues = [...overrideIssues, ...(r.ok ? [] : r.issues)];
  if (issues.length > 0 || !r.ok) throw new ConfigError(issues, file);
  if (sources.resolveNodeName && r.config.nodeName === undefined) {
    return { ...r.config, nodeName: env.NODE_NAME || hostname() };
  }
  return r.config;
}
