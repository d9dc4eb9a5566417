// Equality-based Kubernetes label selectors ("node=tunnel,zone!=b,edge,!old"), the
// subset that makes sense in a config file. Set-based forms ("in (...)") are rejected
// with a clear error rather than misread.

export type Requirement =
  | { readonly op: 'eq' | 'ne'; readonly key: string; readonly value: string }
  | { readonly op: 'exists' | 'absent'; readonly key: string };

export interface LabelSelector {
  readonly text: string;
  readonly requirements: readonly Requirement[];
}

export type SelectorParse = { readonly ok: true; readonly selector: LabelSelector } | { readonly ok: false; readonly error: string };

// Label key: optional DNS-subdomain prefix and "/", then a name of up to 63 characters.
const NAME = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const KEY = new RegExp(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?${NAME}$`);
const VALUE = new RegExp(`^(${NAME})?$`);

export function parseSelector(text: string): SelectorParse {
  const requirements: Requirement[] = [];
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 1 && parts[0] === '') return { ok: true, selector: { text, requirements } }; // matches everything
  for (const part of parts) {
    if (part === '') return { ok: false, error: `empty requirement in "${text}"` };
    if (/\s(in|notin)\s*\(/.test(part)) return { ok: false, error: `set-based requirement "${part}" is not supported; use key=value, key!=value, key or !key` };
    const m = /^(!?)\s*([^=!\s]+)\s*(?:(==|=|!=)\s*(.*))?$/.exec(part);
    if (!m) return { ok: false, error: `cannot parse requirement "${part}"` };
    const [, bang, key = '', op, value] = m;
    if (!KEY.test(key)) return { ok: false, error: `invalid label key "${key}"` };
    if (op === undefined) {
      requirements.push({ op: bang ? 'absent' : 'exists', key });
      continue;
    }
    if (bang) return { ok: false, error: `"!" cannot be combined with a value in "${part}"` };
    const v = (value ?? '').trim();
    if (!VALUE.test(v)) return { ok: false, error: `invalid label value "${v}" for key "${key}"` };
    requirements.push({ op: op === '!=' ? 'ne' : 'eq', key, value: v });
  }
  return { ok: true, selector: { text, requirements } };
}

export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  return selector.requirements.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    switch (r.op) {
      case 'exists':
        return has;
      case 'absent':
        return !has;
      case 'eq':
        return has && labels[r.key] === r.value;
      case 'ne':
        return !has || labels[r.key] !== r.value;
    }
  });
}
