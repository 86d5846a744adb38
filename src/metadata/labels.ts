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
    if (value !== '') setLabel(out, key, value);
  }
  return out;
}

/**
 * Set one label as an own property: a plain `labels[key] = value` with the key
 * `__proto__` would hit Object.prototype's setter and silently drop the label.
 */
function setLabel(labels: Labels, key: string, value: string): void {
  Object.defineProperty(labels, key, { value, enumerable: true, writable: true, configurable: true });
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
      for (const [key, value] of Object.entries(incoming)) setLabel(labels, key, value);
    } else if (path.startsWith('labels.')) {
      const key = path.slice('labels.'.length);
      if (key.length === 0) throw new InvalidArgumentError(`invalid field path ${JSON.stringify(path)}`);
      const value = Object.hasOwn(incoming, key) ? incoming[key] : undefined;
      if (value === undefined) delete labels[key];
      else setLabel(labels, key, value);
    } else {
      rest.push(path);
    }
  }
  return { labels, rest };
}

/** Labels that carry meaning, with containerd's keys (see DESIGN.md, "Labels"). */
export const Label = {
  /** Any value: the object is a GC root. */
  gcRoot: 'containerd.io/gc.root',
  /** `gc.ref.content`, `gc.ref.content.<name>`, `gc.ref.content/<name>` = a digest this object keeps alive. */
  gcRefContent: 'containerd.io/gc.ref.content',
  /** `gc.ref.snapshot.<snapshotter>[/<name>]` = a snapshot key this object keeps alive. */
  gcRefSnapshotPrefix: 'containerd.io/gc.ref.snapshot.',
  /** RFC 3339 time after which a lease (or image) stops protecting. */
  gcExpire: 'containerd.io/gc.expire',
  /** On a lease: keep its resources, but do not follow their references. */
  gcFlat: 'containerd.io/gc.flat',
  /** On a layer blob: its diffID, set once an apply verified it. */
  uncompressed: 'containerd.io/uncompressed',
  /** On a snapshot: the chain ID it was unpacked as. */
  snapshotRef: 'containerd.io/snapshot.ref',
} as const;
