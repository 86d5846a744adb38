/**
 * A directory tree as data, to compare two unpackings of one image: an overlay mount
 * of a chain against the native copy of the same chain, or either against GNU tar.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { native } from '../../src/native.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface TreeEntry {
  type: EntryType;
  /** Permission bits with setuid, setgid and sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files. */
  size?: number;
  /** Regular files: hex sha256 of the content. */
  sha256?: string;
  /** Symlinks. */
  linkTarget?: string;
  /** Character and block devices. */
  rdev?: number;
  /** `user.*` (but not `user.overlay.*`) and `security.capability`, values base64. */
  xattrs: Record<string, string>;
  /** Everything but directories (whose mtime changes as entries are added): ns since the epoch. */
  mtime?: bigint;
  /** A regular file with other links in the tree: the first of them, in path order. */
  hardlinkOf?: string;
}

/** Paths relative to the tree's root (the root itself is `.`), sorted. */
export type Tree = Map<string, TreeEntry>;

/** The type of an lstat result. */
export function entryTypeOf(st: BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/** The xattrs that belong to the content: not overlayfs's own markers (trusted.* or user.overlay.*). */
function contentXattrs(path: string): Record<string, string> {
  const xattrs: Record<string, string> = {};
  const names = native()
    .llistxattr(path)
    .filter((name) => (name.startsWith('user.') && !name.startsWith('user.overlay.')) || name === 'security.capability')
    .sort();
  for (const name of names) {
    const value = native().lgetxattr(path, name);
    if (value !== null) xattrs[name] = value.toString('base64');
  }
  return xattrs;
}

export function readTree(dir: string): Tree {
  const entries: [string, TreeEntry][] = [];
  const firstLink = new Map<bigint, string>();
  const walk = (rel: string): void => {
    const path = rel === '.' ? dir : join(dir, rel);
    const st = lstatSync(path, { bigint: true });
    const type = entryTypeOf(st);
    const entry: TreeEntry = {
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      xattrs: contentXattrs(path),
    };
    if (type !== 'dir') entry.mtime = st.mtimeNs;
    if (type === 'file') {
      entry.size = Number(st.size);
      entry.sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
      if (st.nlink > 1n) {
        const first = firstLink.get(st.ino);
        if (first === undefined) firstLink.set(st.ino, rel);
        else entry.hardlinkOf = first;
      }
    }
    if (type === 'symlink') entry.linkTarget = readlinkSync(path);
    if (type === 'char' || type === 'block') entry.rdev = Number(st.rdev);
    entries.push([rel, entry]);
    if (type === 'dir') {
      for (const name of readdirSync(path).sort()) walk(rel === '.' ? name : join(rel, name));
    }
  };
  walk('.');
  return new Map(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface CompareOptions {
  /** Paths to leave out of the comparison (on both sides). */
  ignore?: (path: string) => boolean;
  /** mtime comparison: exact ns (default), whole seconds (tar without PAX times), or none. */
  mtime?: 'exact' | 'seconds' | 'ignore';
}

function show(entry: TreeEntry, field: keyof TreeEntry): string {
  const value = entry[field];
  if (value === undefined) return '(none)';
  if (field === 'mode') return `0${(value as number).toString(8)}`;
  if (field === 'xattrs') return JSON.stringify(value);
  return String(value);
}

/** The differences between two entries of one path, one line each. */
function entryDifferences(path: string, actual: TreeEntry, expected: TreeEntry, options: CompareOptions): string[] {
  const fields: (keyof TreeEntry)[] = ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'linkTarget', 'rdev', 'hardlinkOf', 'xattrs'];
  const lines: string[] = [];
  for (const field of fields) {
    if (show(actual, field) !== show(expected, field)) {
      lines.push(`${path}: ${field} is ${show(actual, field)}, expected ${show(expected, field)}`);
    }
  }
  const mtime = options.mtime ?? 'exact';
  if (mtime !== 'ignore' && actual.mtime !== undefined && expected.mtime !== undefined) {
    const scale = mtime === 'seconds' ? 1_000_000_000n : 1n;
    if (actual.mtime / scale !== expected.mtime / scale) {
      lines.push(`${path}: mtime is ${actual.mtime}, expected ${expected.mtime}`);
    }
  }
  return lines;
}

/** Fail with a readable list of every difference (missing, extra and changed entries). */
export function assertTreesEqual(actual: Tree, expected: Tree, options: CompareOptions = {}): void {
  const keep = (path: string) => !(options.ignore?.(path) ?? false);
  const lines: string[] = [];
  for (const [path, want] of expected) {
    if (!keep(path)) continue;
    const got = actual.get(path);
    if (got === undefined) lines.push(`${path}: missing (expected a ${want.type})`);
    else lines.push(...entryDifferences(path, got, want, options));
  }
  for (const [path, got] of actual) {
    if (keep(path) && !expected.has(path)) lines.push(`${path}: unexpected ${got.type}`);
  }
  if (lines.length > 0) {
    const shown = lines.slice(0, 50);
    if (lines.length > shown.length) shown.push(`... and ${lines.length - shown.length} more`);
    assert.fail(`trees differ in ${lines.length} place(s):\n  ${shown.join('\n  ')}`);
  }
}
