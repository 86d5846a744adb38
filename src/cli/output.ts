/**
 * How the CLI writes things: byte sizes and durations for people (decimal units, as
 * `docker pull` shows them), aligned tables, and JSON for machines (`--json`).
 */
import { InvalidArgumentError } from '../errors.js';

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

/** `12.3MB`: decimal units, three significant digits. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)}${UNITS[unit]}`;
}

/** `850ms`, `3.2s`, `2m05s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}

/** `3 minutes ago`, for created/updated columns. */
export function formatAge(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const [value, unit] =
    seconds < 60 ? [seconds, 'second'] : seconds < 3600 ? [Math.floor(seconds / 60), 'minute'] : seconds < 86_400 ? [Math.floor(seconds / 3600), 'hour'] : [Math.floor(seconds / 86_400), 'day'];
  return `${value} ${unit}${value === 1 ? '' : 's'} ago`;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Go-style durations: `24h`, `1h30m`, `90s`, `500ms`; `0` is zero. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = part.exec(trimmed); m !== null; m = part.exec(trimmed)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    matched = part.lastIndex;
  }
  if (matched === 0 || matched !== trimmed.length) {
    throw new InvalidArgumentError(`invalid duration ${JSON.stringify(text)}: use a number with a unit (ms, s, m, h, d), e.g. 24h or 1h30m`);
  }
  return total;
}

/** A value of `--json`: pretty when a person reads it, one line when piped. */
export function printJSON(out: NodeJS.WritableStream & { isTTY?: boolean }, value: unknown): void {
  out.write(`${JSON.stringify(value, null, out.isTTY ? 2 : undefined)}\n`);
}

/** Columns padded to their widest cell; the last column is not padded. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] as number)))
      .join('   ')
      .trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

/** `k=v,k2=v2`, or `-` when there are none. */
export function formatLabels(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

/** A digest shortened for tables: `sha256:3a6d91fe4abe`. */
export function shortDigest(digest: string, length = 12): string {
  const colon = digest.indexOf(':');
  return colon < 0 ? digest.slice(0, length) : `${digest.slice(0, colon + 1)}${digest.slice(colon + 1, colon + 1 + length)}`;
}
