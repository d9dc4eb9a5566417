// What kube-apiserver checks on every object written, with its messages (apimachinery's
// pkg/util/validation and ValidateObjectMeta), in the two steps the real server has:
// - decode (400 BadRequest): Time and MicroTime fields must parse with Go's layouts; the
//   stored object carries them re-rendered as the server renders them;
// - validate (422 Invalid, one cause per error): object names per kind, namespace names,
//   label keys and values, annotation keys, the 256 KiB total annotation size, and the
//   namespace rule of core/v1 Events.
import { formatMicroTime, formatTime, GoTimeParseError, parseGoTime, RFC3339, RFC3339_MICRO, type GoLayout } from './go-time.js';
import { badRequest, invalid, type FieldError, type KubeObject, type ResourceType } from './resources.js';

const regexError = (msg: string, fmt: string, ...examples: string[]) =>
  examples.length === 0 ? `${msg} (regex used for validation is '${fmt}')` : `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${fmt}')`;
const maxLenError = (n: number) => `must be no more than ${n} characters`;

const DNS1123_LABEL_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const DNS1035_LABEL_FMT = '[a-z]([-a-z0-9]*[a-z0-9])?';
const QUALIFIED_NAME_FMT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const LABEL_VALUE_FMT = `(${QUALIFIED_NAME_FMT})?`;
const full = (fmt: string) => new RegExp(`^${fmt}$`);
const DNS1123_LABEL = full(DNS1123_LABEL_FMT);
const DNS1123_SUBDOMAIN = full(DNS1123_SUBDOMAIN_FMT);
const DNS1035_LABEL = full(DNS1035_LABEL_FMT);
const QUALIFIED_NAME = full(QUALIFIED_NAME_FMT);
const LABEL_VALUE = full(LABEL_VALUE_FMT);

/** TotalAnnotationSizeLimitB: keys plus values of one object, in bytes. */
export const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

export function isDns1123Label(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push(maxLenError(63));
  if (!DNS1123_LABEL.test(value)) errs.push(regexError("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character", DNS1123_LABEL_FMT, 'my-name', '123-abc'));
  return errs;
}

export function isDns1123Subdomain(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 253) errs.push(maxLenError(253));
  if (!DNS1123_SUBDOMAIN.test(value)) errs.push(regexError("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", DNS1123_SUBDOMAIN_FMT, 'example.com'));
  return errs;
}

export function isDns1035Label(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push(maxLenError(63));
  if (!DNS1035_LABEL.test(value)) errs.push(regexError("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character", DNS1035_LABEL_FMT, 'my-name', 'abc-123'));
  return errs;
}

const QUALIFIED_NAME_ERR = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/** Label and annotation keys: an optional DNS-subdomain prefix and '/', then a name of at most 63. */
export function isQualifiedName(value: string): string[] {
  const errs: string[] = [];
  const parts = value.split('/');
  let name: string;
  if (parts.length === 1) name = parts[0]!;
  else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else errs.push(...isDns1123Subdomain(prefix).map((m) => `prefix part ${m}`));
  } else {
    return [`a qualified name ${regexError(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push(`name part ${maxLenError(63)}`);
  if (!QUALIFIED_NAME.test(name)) errs.push(`name part ${regexError(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, 'MyName', 'my.name', '123-abc')}`);
  return errs;
}

export function isValidLabelValue(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push(maxLenError(63));
  if (!LABEL_VALUE.test(value)) {
    errs.push(regexError("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", LABEL_VALUE_FMT, 'MyValue', 'my_value', '12345'));
  }
  return errs;
}

/** Go's %q of a string (JSON's quoting is the same for printable text). */
const goQuote = (s: string) => JSON.stringify(s);

/** The name check of a kind; `prefix` for generateName (a trailing '-' is then allowed). */
function nameErrors(type: ResourceType, name: string, prefix: boolean): string[] {
  const masked = prefix && name.length > 1 && name.endsWith('-') ? `${name.slice(0, -2)}a` : name;
  switch (type.nameRule) {
    case 'label':
      return isDns1123Label(masked);
    case 'dns1035':
      return isDns1035Label(masked);
    case 'subdomain':
      return isDns1123Subdomain(masked);
    case 'legacy-event':
      return [];
  }
}

const utf8Length = (s: string) => Buffer.byteLength(s, 'utf8');

/** ValidateObjectMeta (create and update) plus the per-kind rules the agent's writes meet. */
export function validateObject(type: ResourceType, obj: KubeObject): FieldError[] {
  const meta = obj.metadata ?? {};
  const errs: FieldError[] = [];
  const bad = (field: string, value: string, detail: string) => errs.push({ type: 'FieldValueInvalid', field, value: goQuote(value), detail });
  if (typeof meta.generateName === 'string' && meta.generateName) for (const m of nameErrors(type, meta.generateName, true)) bad('metadata.generateName', meta.generateName, m);
  if (!meta.name) errs.push({ type: 'FieldValueRequired', field: 'metadata.name', detail: 'name or generateName is required' });
  else for (const m of nameErrors(type, meta.name, false)) bad('metadata.name', meta.name, m);
  if (type.namespaced) {
    if (!meta.namespace) errs.push({ type: 'FieldValueRequired', field: 'metadata.namespace', detail: '' });
    else for (const m of isDns1123Label(meta.namespace)) bad('metadata.namespace', meta.namespace, m);
  }
  for (const [key, value] of Object.entries(meta.labels ?? {})) {
    for (const m of isQualifiedName(key)) bad('metadata.labels', key, m);
    if (typeof value !== 'string') continue;
    for (const m of isValidLabelValue(value)) bad('metadata.labels', value, m);
  }
  let annotationBytes = 0;
  for (const [key, value] of Object.entries(meta.annotations ?? {})) {
    // The real server lower-cases annotation keys before checking them (labels it does not).
    for (const m of isQualifiedName(key.toLowerCase())) bad('metadata.annotations', key, m);
    annotationBytes += utf8Length(key) + utf8Length(typeof value === 'string' ? value : '');
  }
  if (annotationBytes > TOTAL_ANNOTATION_SIZE_LIMIT) errs.push({ type: 'FieldValueTooLong', field: 'metadata.annotations', detail: `must have at most ${TOTAL_ANNOTATION_SIZE_LIMIT} bytes` });
  if (type.nameRule === 'legacy-event') errs.push(...legacyEventErrors(obj));
  if (type.kind === 'Secret' && type.group === '') errs.push(...secretErrors(obj));
  return errs;
}

/**
 * core/v1 Secrets (ValidateSecret): data keys are config-map keys, values base64 (the real
 * server fails to decode anything else), at most 1 MiB in all.
 */
function secretErrors(obj: KubeObject): FieldError[] {
  const errs: FieldError[] = [];
  let total = 0;
  for (const [key, value] of Object.entries((obj.data ?? {}) as Record<string, unknown>)) {
    if (!/^[-._a-zA-Z0-9]+$/.test(key) || key.length > 253 || key === '.' || key === '..') {
      errs.push({ type: 'FieldValueInvalid', field: `data[${key}]`, value: goQuote(key), detail: "a valid config key must consist of alphanumeric characters, '-', '_' or '.'" });
    }
    if (typeof value !== 'string' || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(value)) {
      errs.push({ type: 'FieldValueInvalid', field: `data[${key}]`, value: '"(value)"', detail: 'illegal base64 data' });
    } else total += Buffer.from(value, 'base64').length;
  }
  if (total > 1024 * 1024) errs.push({ type: 'FieldValueTooLong', field: 'data', detail: 'Too long: must have at most 1048576 bytes' });
  return errs;
}

/** core/v1 Events: the involved object's namespace must be the Event's (or "default" for cluster-scoped objects). */
function legacyEventErrors(obj: KubeObject): FieldError[] {
  const namespace = obj.metadata?.namespace ?? '';
  const involved = ((obj.involvedObject as { namespace?: string } | undefined)?.namespace ?? '') as string;
  const hasEventTime = obj.eventTime !== undefined && obj.eventTime !== null;
  const ok = involved
    ? namespace === involved
    : hasEventTime
      ? namespace === 'default' || namespace === 'kube-system'
      : namespace === '' || namespace === 'default';
  return ok ? [] : [{ type: 'FieldValueInvalid', field: 'involvedObject.namespace', value: goQuote(involved), detail: 'does not match event.namespace' }];
}

/** Throws the 422 the real server answers when `validateObject` finds anything. */
export function assertValid(type: ResourceType, obj: KubeObject): void {
  const errs = validateObject(type, obj);
  if (errs.length) throw invalid(type.group, type.kind, obj.metadata?.name ?? obj.metadata?.generateName ?? '', errs);
}

// ---------- decode: Time and MicroTime ----------

/** Calls `visit` with each (holder, key) that a dotted path with `[]` list steps reaches. */
function forEachAt(obj: unknown, path: string, visit: (holder: Record<string, unknown>, key: string) => void): void {
  const steps = path.split('.');
  const walk = (node: unknown, i: number): void => {
    if (node === null || typeof node !== 'object') return;
    const step = steps[i]!;
    const list = step.endsWith('[]');
    const key = list ? step.slice(0, -2) : step;
    const holder = node as Record<string, unknown>;
    if (i === steps.length - 1) {
      if (key in holder) visit(holder, key);
      return;
    }
    const next = holder[key];
    if (list) {
      if (Array.isArray(next)) next.forEach((el) => walk(el, i + 1));
    } else walk(next, i + 1);
  };
  walk(obj, 0);
}

function decodeField(holder: Record<string, unknown>, key: string, layout: GoLayout): void {
  const raw = holder[key];
  if (raw === null || raw === undefined) {
    delete holder[key]; // null decodes to the zero time, which the server omits
    return;
  }
  if (typeof raw !== 'string') throw new GoTimeParseError(`json: cannot unmarshal ${Array.isArray(raw) ? 'array' : typeof raw} into Go value of type string`);
  const { ms, nanos } = parseGoTime(layout, raw);
  holder[key] = layout === RFC3339 ? formatTime(ms) : formatMicroTime(ms, nanos);
}

/**
 * Parses every Time and MicroTime field of `obj` in place, re-rendered as the server stores
 * them. A field that does not parse is a 400, with the message the real server gives.
 */
/**
 * core/v1 Secrets: `stringData` is write-only. The real server merges it into `data`
 * (base64, its keys winning over `data`'s) while converting the request, and never
 * stores or returns it; validation then sees only `data`.
 */
export function convertSecretStringData(type: ResourceType, obj: KubeObject): void {
  if (type.kind !== 'Secret' || type.group !== '' || obj.stringData === undefined) return;
  const plain = (obj.stringData ?? {}) as Record<string, unknown>;
  const data = { ...((obj.data ?? {}) as Record<string, unknown>) };
  for (const [key, value] of Object.entries(plain)) data[key] = Buffer.from(typeof value === 'string' ? value : '', 'utf8').toString('base64');
  obj.data = data;
  delete obj.stringData;
}

export function decodeTimes(type: ResourceType, obj: KubeObject): void {
  try {
    for (const path of ['metadata.creationTimestamp', 'metadata.deletionTimestamp', ...(type.timeFields ?? [])]) forEachAt(obj, path, (h, k) => decodeField(h, k, RFC3339));
    for (const path of type.microTimeFields ?? []) forEachAt(obj, path, (h, k) => decodeField(h, k, RFC3339_MICRO));
  } catch (err) {
    if (!(err instanceof GoTimeParseError)) throw err;
    throw badRequest(`${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: ${err.message}`);
  }
}
