// Plain-text tables and times for the CLI's human output (`kst status`).

/** Left-aligned columns, two spaces apart, no trailing spaces; "(none)" for no rows. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  if (rows.length === 0) return ['  (none)'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')}`.trimEnd();
  return [line(header), ...rows.map(line)];
}

export function oneLine(text: string | undefined): string {
  return text ? text.replace(/\s+/g, ' ').trim() : '-';
}

/** 93784 -> "1d2h3m", 125 -> "2m5s", undefined -> "-". */
export function duration(seconds: number | undefined): string {
  if (seconds === undefined) return '-';
  let s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d) return `${d}d${h}h${m}m`;
  if (h) return `${h}h${m}m${s}s`;
  if (m) return `${m}m${s}s`;
  return `${s}s`;
}

/** "12s ago" for an ISO time, relative to `now`. */
export function ago(iso: string, now: Date): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'unknown time';
  const s = Math.round((now.getTime() - t) / 1000);
  return s < 0 ? `in ${duration(-s)}` : `${duration(s)} ago`;
}
