/** Shared helpers for the native addon tests (not a test file itself). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { NativeError } from '../../src/native.js';

/** We run as root in CI; tests that need privileges assert EPERM otherwise. */
export const isRoot = process.getuid?.() === 0;

/**
 * A fresh directory under os.tmpdir(), removed after the test. On the CI host /tmp is on
 * the root ext4 filesystem, which supports user.* and trusted.* xattrs, mknod and all
 * renameat2 flags; the xattr test asserts that directly rather than assuming it.
 */
export function tempDir(t: TestContext, prefix = 'layerpool-native-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Assert `fn` throws a node:fs-shaped error with this code, syscall and path. */
export function assertErrno(
  fn: () => unknown,
  expected: { code: string; errno: number; syscall: string; path?: string; dest?: string },
): NativeError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  if (!(caught instanceof Error)) throw new Error(`expected an error with code ${expected.code}, got ${String(caught)}`);
  const err = caught as NativeError;
  const actual: Record<string, unknown> = { code: err.code, errno: err.errno, syscall: err.syscall };
  if ('path' in expected) actual.path = err.path;
  if ('dest' in expected) actual.dest = err.dest;
  if (actual.code !== expected.code || actual.errno !== expected.errno || actual.syscall !== expected.syscall ||
      actual.path !== expected.path || actual.dest !== expected.dest) {
    throw new Error(`unexpected error fields ${JSON.stringify(actual)} (wanted ${JSON.stringify(expected)}): ${err.message}`);
  }
  let where = `, ${expected.syscall}`;
  if (expected.path !== undefined) where += ` '${expected.path}'`;
  if (expected.dest !== undefined) where += ` -> '${expected.dest}'`;
  if (!err.message.startsWith(`${expected.code}: `) || !err.message.endsWith(where)) {
    throw new Error(`message not shaped like a node:fs error: ${JSON.stringify(err.message)}`);
  }
  return err;
}
