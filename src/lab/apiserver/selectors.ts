// Label and field selectors as the API server parses them (?labelSelector=, ?fieldSelector=).
import { badRequest, type KubeObject } from './resources.js';

export type ObjectPredicate = (obj: KubeObject) => boolean;

const everything: ObjectPredicate = () => true;

/** Splits on commas that are not inside `in (a,b)` parentheses. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (ch === ',' && depth === 0) {
      terms.push(current.trim());
      current = '';
    } else current += ch;
  }
  if (current.trim()) terms.push(current.trim());
  return terms;
}

/** `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma = AND. */
export function labelSelector(text: string | null): ObjectPredicate {
  if (!text) return everything;
  const tests = splitTerms(text).map((term): ((labels: Record<string, string>) => boolean) => {
    let m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (m) {
      const [, key, op, list] = m as unknown as [string, string, string, string];
      const values = list.split(',').map((v) => v.trim());
      return op === 'in' ? (l) => key in l && values.includes(l[key]!) : (l) => !(key in l) || !values.includes(l[key]!);
    }
    m = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)$/.exec(term);
    if (m) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
    }
    m = /^(!?)([^\s!=()]+)$/.exec(term);
    if (m) {
      const [, not, key] = m as unknown as [string, string, string];
      return not ? (l) => !(key in l) : (l) => key in l;
    }
    throw badRequest(`unable to parse requirement: "${term}" in labelSelector "${text}"`);
  });
  return (obj) => {
    const labels = obj.metadata?.labels ?? {};
    return tests.every((t) => t(labels));
  };
}

function fieldValue(obj: KubeObject, path: string): string {
  let v: unknown = obj;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return '';
    v = (v as Record<string, unknown>)[part];
  }
  return v === undefined || v === null ? '' : String(v);
}

/** `spec.nodeName=x`, `metadata.name==x`, `status.phase!=Failed`, comma = AND. */
export function fieldSelector(text: string | null): ObjectPredicate {
  if (!text) return everything;
  const tests = splitTerms(text).map((term): ObjectPredicate => {
    const m = /^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid field selector term "${term}" in fieldSelector "${text}"`);
    const [, path, op, value] = m as unknown as [string, string, string, string];
    return op === '!=' ? (o) => fieldValue(o, path) !== value : (o) => fieldValue(o, path) === value;
  });
  return (obj) => tests.every((t) => t(obj));
}
