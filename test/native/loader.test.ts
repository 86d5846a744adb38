import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  native,
  nativeAddonPath,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  RENAME_WHITEOUT,
  XATTR_CREATE,
  XATTR_REPLACE,
} from '../../src/native.js';
import { tempDir } from './helpers.js';

const repoRoot = new URL('../../', import.meta.url);

test('native() loads the addon from native-bindings/build/Release once', () => {
  const file = nativeAddonPath();
  assert.ok(isAbsolute(file));
  assert.ok(file.endsWith(['', 'native-bindings', 'build', 'Release', 'layerpool_native.node'].join(sep)), file);
  assert.equal(pathToFileURL(file).href, new URL('native-bindings/build/Release/layerpool_native.node', repoRoot).href);
  const a = native();
  assert.equal(native(), a);
  for (const fn of ['flock', 'syncfs', 'mknod', 'makedev', 'lgetxattr', 'lsetxattr', 'llistxattr', 'lremovexattr', 'renameat2']) {
    assert.equal(typeof (a as unknown as Record<string, unknown>)[fn], 'function', fn);
  }
});

test('the typed constants match the values compiled into the addon (Linux ABI)', () => {
  const n = native();
  assert.deepEqual(
    [n.RENAME_NOREPLACE, n.RENAME_EXCHANGE, n.RENAME_WHITEOUT, n.XATTR_CREATE, n.XATTR_REPLACE],
    [RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT, XATTR_CREATE, XATTR_REPLACE],
  );
  assert.deepEqual([RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT, XATTR_CREATE, XATTR_REPLACE], [1, 2, 4, 1, 2]);
});

test('bad arguments are TypeError/RangeError with Node codes, not crashes', () => {
  const n = native();
  assert.throws(() => n.syncfs(42 as unknown as string), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => n.syncfs('/tmp\0/x'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => n.flock(-1, 'ex', true), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => n.flock(0, 'exclusive' as 'ex', true), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => n.makedev(1.5, 0), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => n.lsetxattr('/tmp', 'user.x', 'y' as unknown as Buffer), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
});

// A copy of the loader in a fake package root shows what a user sees when the addon is
// missing or broken: one UnavailableError naming the file, the reason and the fix.
async function loaderIn(root: string): Promise<typeof import('../../src/native.js')> {
  mkdirSync(join(root, 'src'), { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'layerpool', type: 'module' }));
  for (const f of ['native.ts', 'errors.ts', 'package.ts']) copyFileSync(new URL(`src/${f}`, repoRoot), join(root, 'src', f));
  return (await import(pathToFileURL(join(root, 'src', 'native.ts')).href)) as typeof import('../../src/native.js');
}

function assertUnavailable(fn: () => unknown, file: string, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'UnavailableError');
    assert.equal((err as { code?: unknown }).code, 'LP_ERR_UNAVAILABLE');
    assert.ok(err.message.includes(file), err.message);
    assert.match(err.message, reason);
    assert.ok(err.message.includes('npm rebuild layerpool'), err.message);
    assert.ok(err.message.includes('apt-get install -y python3 make g++'), err.message);
    return true;
  });
}

test('a missing addon throws one UnavailableError with the path, the reason and the fix', async (t) => {
  const root = tempDir(t);
  const loader = await loaderIn(root);
  const file = join(root, 'native-bindings', 'build', 'Release', 'layerpool_native.node');
  assert.equal(loader.nativeAddonPath(), file);
  assertUnavailable(() => loader.native(), file, /does not exist/);
});

test('a corrupt addon throws UnavailableError carrying the loader error', async (t) => {
  const root = tempDir(t);
  const loader = await loaderIn(root);
  const file = join(root, 'native-bindings', 'build', 'Release', 'layerpool_native.node');
  mkdirSync(join(root, 'native-bindings', 'build', 'Release'), { recursive: true });
  writeFileSync(file, 'not an ELF file');
  assertUnavailable(() => loader.native(), file, /invalid ELF header|too short/);
});
