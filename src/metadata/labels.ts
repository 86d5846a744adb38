/**
 * Labels: the schema of layerpool (gc.ref.*, gc.root, uncompressed, snapshot.ref). They
 * are validated like containerd's (key + value at most 4096 bytes) and updated through
 * field paths (`labels` replaces all, `labels.<key>` sets one, an empty value deletes).
 */
import { InvalidArgumentError } from '../errors.js';

export type Labels = Record<string, string>;

/** Key plus value, in bytes, as in containerd's labels.Validate. */
export const MAX_LABEL_SIZE = 4096;

// Control characters (including NUL) would corrupt filter parsing, CLI tables and logs.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export function validateLabel(key: string, value: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidArgumentError('label key must be a non-empty string');
  if (typeof value !== 'string') throw new InvalidArgumentError(`label ${JSON.stringify(key)}: value must be a string`);
  if (CONTROL_CHARS.test(key) || /\s/.test(key)) {
    throw new InvalidArgumentError(`label key ${JSON.stringify(key.slice(0, 64))} has whitespace or control characters`);
  }
  if (value.includes('\u0000')) throw new InvalidArgumentError(`label ${JSON.stringify(key.slice(0, 64))}: value has a NUL byte`);
  const size = Buffer.byteLength(key) + Buffer.byteLength(value);
  if (size > MAX_LABEL_SIZE) {
    throw new InvalidArgumentError(
      `label ${JSON.stringify(key.slice(0, 64))}: key and value are ${size} bytes, more than the maximum ${MAX_LABEL_SIZE}`,
    );
  }
}

/** Validate every label and return a clean copy without empty values (empty means absent). */
export function validateLabels(labels: Labels | undefined): Labels {
  const out: Labels = {};
  if (labels === undefined) return out;
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw new InvalidArgumentError('labels must be an object of strings');
  }
  for (const [key, value] of Object.entries(labels)) {
    validateLabel(key, value);
    if (value !== '') out[key] = value;
  }
  return out;
}

/**
 * Apply label changes selected by field paths. Without field paths, `next` replaces
 * `current`. With them, only `labels` (replace all) and `labels.<key>` (set one key, or
 * delete it when the new value is empty or missing) are applied; other paths are the
 * caller's business and are returned in `rest`.
 */
export function applyLabelFieldpaths(
  current: Labels,
  next: Labels | undefined,
  fieldpaths: readonly string[] | undefined,
): { labels: Labels; rest: string[] } {
  const incoming = validateLabels(next);
  if (!fieldpaths || fieldpaths.length === 0) return { labels: incoming, rest: [] };
  const labels: Labels = { ...current };
  const rest: string[] = [];
  for (const path of fieldpaths) {
    if (path === 'labels') {
      for (const key of Object.keys(labels)) delete labels[key];
      Object.assign(labels, incoming);
    } else if (path.startsWith('labels.')) {
      const key = path.slice('labels.'.length);
      if (key.length === 0) throw new InvalidArgumentError(`invalid field path ${JSON.stringify(path)}`);
      const value = incoming[key];
      if (value === undefined) delete labels[key];
      else labels[key] = value;
    } else {
      rest.push(path);
    }
  }
  return { labels, rest };
}
