// Walking the zod schema: environment variable names, the type of a `--set` target,
// the allowed keys for "unknown field" errors, and docs/configuration.md all come from
// the one schema, so they cannot drift from it.
import type { z } from 'zod';

type AnySchema = z.ZodType;

interface Def {
  readonly type: string;
  readonly innerType?: AnySchema;
  readonly defaultValue?: unknown;
  readonly shape?: Record<string, AnySchema>;
  readonly element?: AnySchema;
  readonly valueType?: AnySchema;
  readonly entries?: Record<string, string>;
  readonly checks?: readonly { readonly _zod: { readonly def: Record<string, unknown> } }[];
}

export function defOf(schema: AnySchema): Def {
  return (schema as unknown as { def: Def }).def;
}

export interface Unwrapped {
  readonly schema: AnySchema;
  readonly optional: boolean;
  readonly hasDefault: boolean;
  readonly defaultValue?: unknown;
  readonly description?: string;
}

/** Peels default/optional wrappers, keeping the first description met. */
export function unwrap(schema: AnySchema): Unwrapped {
  let s = schema;
  let optional = false;
  let hasDefault = false;
  let defaultValue: unknown;
  let description = s.description;
  for (;;) {
    const d = defOf(s);
    if (d.type === 'default') {
      hasDefault = true;
      defaultValue = typeof d.defaultValue === 'function' ? (d.defaultValue as () => unknown)() : d.defaultValue;
    } else if (d.type === 'optional') optional = true;
    else break;
    s = d.innerType!;
    description ??= s.description;
  }
  return { schema: s, optional, hasDefault, ...(hasDefault ? { defaultValue } : {}), ...(description !== undefined ? { description } : {}) };
}

export function kindOf(schema: AnySchema): string {
  return defOf(unwrap(schema).schema).type;
}

export function objectShape(schema: AnySchema): Record<string, AnySchema> | undefined {
  const d = defOf(unwrap(schema).schema);
  return d.type === 'object' ? d.shape : undefined;
}

/** The schema at a path of object keys and list indexes; undefined when there is none. */
export function schemaAt(root: AnySchema, path: readonly (string | number)[]): AnySchema | undefined {
  let s: AnySchema | undefined = root;
  for (const seg of path) {
    if (!s) return undefined;
    const d = defOf(unwrap(s).schema);
    if (d.type === 'object') s = typeof seg === 'string' ? d.shape?.[seg] : undefined;
    else if (d.type === 'array') s = typeof seg === 'number' ? d.element : undefined;
    else if (d.type === 'record') s = d.valueType;
    else return undefined;
  }
  return s;
}

/** "logLevel" -> "LOG_LEVEL" */
export function screamingSnake(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/**
 * Environment variable name -> field path, for every object field at any depth below the
 * root (lists and maps are set whole, as YAML): KST_LOG_LEVEL, KST_BGP__ASN, KST_POOLS.
 */
export function envFieldMap(root: AnySchema, prefix: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (s: AnySchema, path: string[]) => {
    const shape = objectShape(s);
    if (!shape) return;
    for (const [k, child] of Object.entries(shape)) {
      const p = [...path, k];
      out.set(prefix + p.map(screamingSnake).join('__'), p);
      walk(child, p);
    }
  };
  walk(root, []);
  return out;
}

/** Human-readable type: "integer 1..4096", "one of: gre, mpls", "list of object". */
export function describeType(schema: AnySchema): string {
  const s = unwrap(schema).schema;
  const d = defOf(s);
  switch (d.type) {
    case 'number': {
      let lo: unknown;
      let hi: unknown;
      let int = false;
      for (const c of d.checks ?? []) {
        const cd = c._zod.def;
        if (cd.check === 'greater_than') lo = cd.value;
        if (cd.check === 'less_than') hi = cd.value;
        if (cd.check === 'number_format' && (cd.format === 'safeint' || cd.format === 'int32')) int = true;
      }
      const range = lo !== undefined || hi !== undefined ? ` ${lo ?? ''}..${hi ?? ''}` : '';
      return `${int ? 'integer' : 'number'}${range}`;
    }
    case 'enum':
      return `one of: ${Object.values(d.entries ?? {}).join(', ')}`;
    case 'array':
      return `list of ${describeType(d.element!)}`;
    case 'record':
      return `map of name -> ${describeType(d.valueType!)}`;
    default:
      return d.type;
  }
}
