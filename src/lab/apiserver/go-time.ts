// The two timestamp formats of the Kubernetes API, parsed the way kube-apiserver parses them:
// with Go's time.Parse, whose error messages clients see verbatim in a 400 answer.
//
// - Time (metav1.Time: creationTimestamp, Event first/lastTimestamp, condition times):
//   layout RFC 3339 `2006-01-02T15:04:05Z07:00`. Go accepts a fractional second here even
//   though the layout has none, and the server stores and returns whole seconds in UTC.
// - MicroTime (metav1.MicroTime: Lease acquireTime/renewTime, Event eventTime): layout
//   `2006-01-02T15:04:05.000000Z07:00`. A `.000000` chunk in a Go layout needs EXACTLY six
//   digits, so a JavaScript Date's `.410Z` fails with `cannot parse ".410Z" as ".000000"`.
//
// Only these two layouts are implemented, chunk by chunk as Go walks them, so that the
// element named in an error is the one Go names.

export const RFC3339 = '2006-01-02T15:04:05Z07:00';
export const RFC3339_MICRO = '2006-01-02T15:04:05.000000Z07:00';
export type GoLayout = typeof RFC3339 | typeof RFC3339_MICRO;

export class GoTimeParseError extends Error {}

/** Go's quote(): a double-quoted string with Go escapes (JSON's are the same for what matters here). */
const quote = (s: string) => JSON.stringify(s);

const isDigit = (s: string, i: number) => i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57;

function daysIn(month: number, year: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

type Chunk = { literal: string } | { std: 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second' | 'micro' | 'zone'; text: string };

const CHUNKS: Record<GoLayout, readonly Chunk[]> = {
  [RFC3339]: [
    { std: 'year', text: '2006' }, { literal: '-' }, { std: 'month', text: '01' }, { literal: '-' }, { std: 'day', text: '02' }, { literal: 'T' },
    { std: 'hour', text: '15' }, { literal: ':' }, { std: 'minute', text: '04' }, { literal: ':' }, { std: 'second', text: '05' }, { std: 'zone', text: 'Z07:00' },
  ],
  [RFC3339_MICRO]: [
    { std: 'year', text: '2006' }, { literal: '-' }, { std: 'month', text: '01' }, { literal: '-' }, { std: 'day', text: '02' }, { literal: 'T' },
    { std: 'hour', text: '15' }, { literal: ':' }, { std: 'minute', text: '04' }, { literal: ':' }, { std: 'second', text: '05' },
    { std: 'micro', text: '.000000' }, { std: 'zone', text: 'Z07:00' },
  ],
};

/** Go's getnum: one or two digits; `fixed` demands two. Returns [number, rest] or undefined. */
function getnum(s: string, fixed: boolean): [number, string] | undefined {
  if (!isDigit(s, 0)) return undefined;
  if (!isDigit(s, 1)) return fixed ? undefined : [Number(s[0]), s.slice(1)];
  return [Number(s.slice(0, 2)), s.slice(2)];
}

/**
 * Parses `value` with a Go layout; returns epoch milliseconds plus the sub-millisecond
 * nanoseconds (a MicroTime keeps microseconds). Throws GoTimeParseError with Go's message.
 */
export function parseGoTime(layout: GoLayout, value: string): { ms: number; nanos: number } {
  let rest = value;
  let year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, nanos = 0, offsetMin = 0;
  const fail = (elem: string, layoutElem: string): never => {
    throw new GoTimeParseError(`parsing time ${quote(value)} as ${quote(layout)}: cannot parse ${quote(elem)} as ${quote(layoutElem)}`);
  };
  const outOfRange = (what: string): never => {
    throw new GoTimeParseError(`parsing time ${quote(value)}: ${what} out of range`);
  };
  for (const chunk of CHUNKS[layout]) {
    if ('literal' in chunk) {
      if (!rest.startsWith(chunk.literal)) fail(rest, chunk.literal);
      rest = rest.slice(chunk.literal.length);
      continue;
    }
    const hold = rest;
    switch (chunk.std) {
      case 'year': {
        if (rest.length < 4 || ![0, 1, 2, 3].every((i) => isDigit(rest, i))) fail(hold, chunk.text);
        year = Number(rest.slice(0, 4));
        rest = rest.slice(4);
        break;
      }
      case 'month':
      case 'day':
      case 'hour':
      case 'minute':
      case 'second': {
        // Go parses the hour of "15" with a non-fixed width; the others are zero-padded.
        const got = getnum(rest, chunk.std !== 'hour') ?? fail(hold, chunk.text);
        const [n, after] = got;
        rest = after;
        if (chunk.std === 'month') {
          if (n < 1 || n > 12) outOfRange('month');
          month = n;
        } else if (chunk.std === 'day') day = n;
        else if (chunk.std === 'hour') {
          if (n >= 24) outOfRange('hour');
          hour = n;
        } else if (chunk.std === 'minute') {
          if (n >= 60) outOfRange('minute');
          minute = n;
        } else {
          if (n >= 60) outOfRange('second');
          second = n;
          // A fraction the layout does not ask for is still accepted (Go's special case).
          if (layout === RFC3339 && rest.length >= 2 && (rest[0] === '.' || rest[0] === ',') && isDigit(rest, 1)) {
            let n2 = 2;
            while (isDigit(rest, n2)) n2++;
            nanos = Number(rest.slice(1, Math.min(n2, 10)).padEnd(9, '0'));
            rest = rest.slice(n2);
          }
        }
        break;
      }
      case 'micro': {
        // Exactly as many digits as the layout has: 1 + 6 characters.
        if (rest.length < 7 || !(rest[0] === '.' || rest[0] === ',') || ![1, 2, 3, 4, 5, 6].every((i) => isDigit(rest, i))) fail(hold, chunk.text);
        nanos = Number(rest.slice(1, 7)) * 1000;
        rest = rest.slice(7);
        break;
      }
      case 'zone': {
        if (rest.startsWith('Z')) {
          rest = rest.slice(1);
          break;
        }
        if (rest.length < 6 || rest[3] !== ':' || (rest[0] !== '+' && rest[0] !== '-')) fail(hold, chunk.text);
        const hh = getnum(rest.slice(1, 3), true);
        const mm = getnum(rest.slice(4, 6), true);
        if (!hh || !mm) fail(hold, chunk.text);
        if (hh![0] > 24) outOfRange('time zone offset hour');
        if (mm![0] > 60) outOfRange('time zone offset minute');
        offsetMin = (rest[0] === '-' ? -1 : 1) * (hh![0] * 60 + mm![0]);
        rest = rest.slice(6);
        break;
      }
    }
  }
  if (rest.length > 0) throw new GoTimeParseError(`parsing time ${quote(value)}: extra text: ${quote(rest)}`);
  if (day < 1 || day > daysIn(month, year)) outOfRange('day');
  const ms = Date.UTC(year, month - 1, day, hour, minute, second) - offsetMin * 60_000 + Math.floor(nanos / 1e6);
  return { ms, nanos: nanos % 1e6 };
}

/** metav1.Time as the server writes it: UTC, whole seconds. */
export function formatTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** metav1.MicroTime as the server writes it: UTC, exactly six fractional digits. */
export function formatMicroTime(ms: number, nanos: number): string {
  const micros = String(Math.floor(nanos / 1000)).padStart(3, '0');
  return new Date(ms).toISOString().replace(/Z$/, `${micros}Z`);
}
