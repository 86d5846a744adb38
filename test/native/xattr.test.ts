import { test } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { native, XATTR_CREATE, XATTR_REPLACE } from '../../src/native.js';
import { assertErrno, isRoot, tempDir } from './helpers.js';

// These run in os.tmpdir(); on the CI host /tmp is the root ext4 filesystem (user_xattr on).
function tempFile(t: import('node:test').TestContext): string {
  const file = join(tempDir(t), 'f');
  writeFileSync(file, 'content');
  return file;
}

test('user.* xattr set/get/list/remove round trip, binary values included', (t) => {
  const { lsetxattr, lgetxattr, llistxattr, lremovexattr } = native();
  const file = tempFile(t);
  assert.deepEqual(llistxattr(file).filter((n) => n.startsWith('user.')), []);

  const value = Buffer.from([0, 1, 2, 0xfe, 0xff, 0]);
  lsetxattr(file, 'user.layerpool.bin', value);
  lsetxattr(file, 'user.layerpool.empty', Buffer.alloc(0));
  const big = Buffer.alloc(2000, 'x');
  lsetxattr(file, 'user.layerpool.big', big);

  assert.deepEqual(lgetxattr(file, 'user.layerpool.bin'), value);
  assert.deepEqual(lgetxattr(file, 'user.layerpool.empty'), Buffer.alloc(0), 'empty value is not "missing"');
  assert.deepEqual(lgetxattr(file, 'user.layerpool.big'), big);
  assert.ok(Buffer.isBuffer(lgetxattr(file, 'user.layerpool.bin')));
  assert.deepEqual(
    llistxattr(file).filter((n) => n.startsWith('user.')).sort(),
    ['user.layerpool.big', 'user.layerpool.bin', 'user.layerpool.empty'],
  );

  // Replacing with a shorter and then a longer value must size the read buffer right.
  lsetxattr(file, 'user.layerpool.big', Buffer.from('s'));
  assert.deepEqual(lgetxattr(file, 'user.layerpool.big'), Buffer.from('s'));
  lsetxattr(file, 'user.layerpool.big', Buffer.alloc(3000, 'y'));
  assert.deepEqual(lgetxattr(file, 'user.layerpool.big'), Buffer.alloc(3000, 'y'));

  lremovexattr(file, 'user.layerpool.bin');
  assert.equal(lgetxattr(file, 'user.layerpool.bin'), null);
  assert.deepEqual(
    llistxattr(file).filter((n) => n.startsWith('user.')).sort(),
    ['user.layerpool.big', 'user.layerpool.empty'],
  );
});

test('a missing xattr reads as null; removing one is ENODATA', (t) => {
  const { lgetxattr, lremovexattr } = native();
  const file = tempFile(t);
  assert.equal(lgetxattr(file, 'user.layerpool.missing'), null);
  assertErrno(() => lremovexattr(file, 'user.layerpool.missing'), {
    code: 'ENODATA',
    errno: constants.errno.ENODATA,
    syscall: 'lremovexattr',
    path: file,
  });
});

test('XATTR_CREATE refuses to overwrite, XATTR_REPLACE refuses to create', (t) => {
  const { lsetxattr, lgetxattr } = native();
  const file = tempFile(t);
  lsetxattr(file, 'user.layerpool.a', Buffer.from('1'), XATTR_CREATE);
  assertErrno(() => lsetxattr(file, 'user.layerpool.a', Buffer.from('2'), XATTR_CREATE), {
    code: 'EEXIST',
    errno: constants.errno.EEXIST,
    syscall: 'lsetxattr',
    path: file,
  });
  assert.deepEqual(lgetxattr(file, 'user.layerpool.a'), Buffer.from('1'));
  lsetxattr(file, 'user.layerpool.a', Buffer.from('3'), XATTR_REPLACE);
  assert.deepEqual(lgetxattr(file, 'user.layerpool.a'), Buffer.from('3'));
  assertErrno(() => lsetxattr(file, 'user.layerpool.b', Buffer.from('x'), XATTR_REPLACE), {
    code: 'ENODATA',
    errno: constants.errno.ENODATA,
    syscall: 'lsetxattr',
    path: file,
  });
  assert.equal(lgetxattr(file, 'user.layerpool.b'), null);
});

test('trusted.overlay.opaque round trip as root (EPERM otherwise)', (t) => {
  const { lsetxattr, lgetxattr, llistxattr, lremovexattr } = native();
  const dir = tempDir(t);
  if (!isRoot) {
    assertErrno(() => lsetxattr(dir, 'trusted.overlay.opaque', Buffer.from('y')), {
      code: 'EPERM',
      errno: constants.errno.EPERM,
      syscall: 'lsetxattr',
      path: dir,
    });
    return;
  }
  lsetxattr(dir, 'trusted.overlay.opaque', Buffer.from('y'));
  assert.deepEqual(lgetxattr(dir, 'trusted.overlay.opaque'), Buffer.from('y'));
  assert.ok(llistxattr(dir).includes('trusted.overlay.opaque'));
  lremovexattr(dir, 'trusted.overlay.opaque');
  assert.equal(lgetxattr(dir, 'trusted.overlay.opaque'), null);
  assert.ok(!llistxattr(dir).includes('trusted.overlay.opaque'));
});

test('the l* calls act on a symlink itself, never on its target', (t) => {
  const { lsetxattr, lgetxattr, llistxattr } = native();
  const file = tempFile(t);
  const link = `${file}-link`;
  symlinkSync(file, link);
  lsetxattr(file, 'user.layerpool.target', Buffer.from('t'));
  assert.equal(lgetxattr(link, 'user.layerpool.target'), null);
  assert.ok(!llistxattr(link).includes('user.layerpool.target'));
  // user.* xattrs are not allowed on symlinks: the kernel says EPERM for the link itself.
  assertErrno(() => lsetxattr(link, 'user.layerpool.x', Buffer.from('x')), {
    code: 'EPERM',
    errno: constants.errno.EPERM,
    syscall: 'lsetxattr',
    path: link,
  });
});

test('xattr calls on a missing path throw ENOENT; unknown namespaces ENOTSUP', (t) => {
  const { lgetxattr, lsetxattr, llistxattr, lremovexattr } = native();
  const dir = tempDir(t);
  const missing = join(dir, 'missing');
  for (const [syscall, fn] of [
    ['lgetxattr', () => lgetxattr(missing, 'user.a')],
    ['lsetxattr', () => lsetxattr(missing, 'user.a', Buffer.from('v'))],
    ['llistxattr', () => llistxattr(missing)],
    ['lremovexattr', () => lremovexattr(missing, 'user.a')],
  ] as const) {
    const err = assertErrno(fn, { code: 'ENOENT', errno: constants.errno.ENOENT, syscall, path: missing });
    assert.equal(err.message, `ENOENT: no such file or directory, ${syscall} '${missing}'`);
  }
  assertErrno(() => lgetxattr(dir, 'nonamespace.a'), {
    code: 'ENOTSUP',
    errno: constants.errno.ENOTSUP,
    syscall: 'lgetxattr',
    path: dir,
  });
});
