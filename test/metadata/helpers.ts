/**
 * Fixtures for the metadata tests: every test gets its own temp dir and SQLite file,
 * closed and removed after the test, so tests never share state.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Descriptor } from '../../src/descriptor.js';
import { digestOf } from '../../src/digest.js';
import { ErrorCode } from '../../src/errors.js';
import { MetadataDB, type NamespacedMetadata } from '../../src/metadata/index.js';

const closers = new WeakMap<TestContext, (() => void)[]>();

/** Run `fn` after the test, before its temp dir is removed (last registered runs first). */
export function onCleanup(t: TestContext, fn: () => void): void {
  let list = closers.get(t);
  if (!list) {
    list = [];
    closers.set(t, list);
    const mine = list;
    t.after(() => {
      for (const close of mine.reverse()) close();
    });
  }
  list.push(fn);
}

/** A fresh temp dir, removed after the test (after every database in it is closed). */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'layerpool-metadata-'));
  onCleanup(t, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Fixture {
  dir: string;
  path: string;
  db: MetadataDB;
  /** Stores of the first namespace created (`default` unless told otherwise). */
  ns: NamespacedMetadata;
}

/** Open a database file in a fresh temp dir and create the given namespaces. */
export function setup(t: TestContext, namespaces: readonly string[] = ['default']): Fixture {
  const dir = tempDir(t);
  const path = join(dir, 'metadata.db');
  const db = MetadataDB.open({ path });
  onCleanup(t, () => db.close());
  for (const name of namespaces) db.namespaces.create(name);
  const first = namespaces[0] ?? 'default';
  if (namespaces.length === 0) db.namespaces.create(first);
  return { dir, path, db, ns: db.namespace(first) };
}

/** Another connection to the same file, closed after the test. */
export function reopen(t: TestContext, path: string): MetadataDB {
  const db = MetadataDB.open({ path });
  onCleanup(t, () => db.close());
  return db;
}

/** A sha256 digest of a string. */
export function dg(text: string): string {
  return digestOf(text);
}

export const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const INDEX = 'application/vnd.oci.image.index.v1+json';

/** A valid descriptor of some text. */
export function desc(text: string, mediaType = MANIFEST): Descriptor {
  return { mediaType, digest: dg(text), size: Buffer.byteLength(text) };
}

type Code = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Assert fn throws a layerpool error of the given code (and message, when given). */
export function throwsCode(fn: () => unknown, code: Code, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code, `expected ${code}, got ${String(err)}`);
    if (message) assert.match((err as Error).message, message);
    return true;
  });
}

export const invalid = (fn: () => unknown, message?: RegExp): void => throwsCode(fn, ErrorCode.InvalidArgument, message);
export const notFound = (fn: () => unknown, message?: RegExp): void => throwsCode(fn, ErrorCode.NotFound, message);
export const exists = (fn: () => unknown, message?: RegExp): void => throwsCode(fn, ErrorCode.AlreadyExists, message);
export const precondition = (fn: () => unknown, message?: RegExp): void =>
  throwsCode(fn, ErrorCode.FailedPrecondition, message);

/** Count rows of a table directly, bypassing the stores. */
export function countRows(db: MetadataDB, table: string, where = '1', ...params: unknown[]): number {
  return (db.sqlite.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${where}`).get(...params) as { n: number }).n;
}
