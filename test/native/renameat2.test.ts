import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as fsc, existsSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { native, RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT } from '../../src/native.js';
import { assertErrno, tempDir } from './helpers.js';

test('RENAME_NOREPLACE fails with EEXIST when the target exists and leaves both alone', (t) => {
  const { renameat2 } = native();
  const dir = tempDir(t);
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  writeFileSync(a, 'A');
  writeFileSync(b, 'B');
  const err = assertErrno(() => renameat2(a, b, RENAME_NOREPLACE), {
    code: 'EEXIST',
    errno: constants.errno.EEXIST,
    syscall: 'renameat2',
    path: a,
    dest: b,
  });
  assert.equal(err.message, `EEXIST: file already exists, renameat2 '${a}' -> '${b}'`);
  assert.equal(readFileSync(a, 'utf8'), 'A');
  assert.equal(readFileSync(b, 'utf8'), 'B');
});

test('RENAME_NOREPLACE moves when the target is absent', (t) => {
  const { renameat2 } = native();
  const dir = tempDir(t);
  const a = join(dir, 'a');
  const c = join(dir, 'c');
  writeFileSync(a, 'A');
  renameat2(a, c, RENAME_NOREPLACE);
  assert.equal(existsSync(a), false);
  assert.equal(readFileSync(c, 'utf8'), 'A');
});

test('RENAME_NOREPLACE protects a committed directory that plain rename would replace', (t) => {
  const { renameat2 } = native();
  const dir = tempDir(t);
  const staged = join(dir, 'extract-1');
  const committed = join(dir, 'committed');
  mkdirSync(staged);
  writeFileSync(join(staged, 'mine'), '1');
  mkdirSync(committed); // empty: rename(2) would silently replace it
  assertErrno(() => renameat2(staged, committed, RENAME_NOREPLACE), {
    code: 'EEXIST',
    errno: constants.errno.EEXIST,
    syscall: 'renameat2',
    path: staged,
    dest: committed,
  });
  assert.ok(existsSync(join(staged, 'mine')));
  renameat2(staged, committed, 0); // flags 0 is plain rename
  assert.ok(existsSync(join(committed, 'mine')));
  assert.equal(existsSync(staged), false);
});

test('RENAME_EXCHANGE swaps two files (and a file with a directory) atomically', (t) => {
  const { renameat2 } = native();
  const dir = tempDir(t);
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  writeFileSync(a, 'A');
  writeFileSync(b, 'B');
  renameat2(a, b, RENAME_EXCHANGE);
  assert.equal(readFileSync(a, 'utf8'), 'B');
  assert.equal(readFileSync(b, 'utf8'), 'A');

  const d = join(dir, 'd');
  mkdirSync(d);
  renameat2(a, d, RENAME_EXCHANGE);
  assert.ok(lstatSync(a).isDirectory());
  assert.equal(readFileSync(d, 'utf8'), 'B');
});

test('RENAME_EXCHANGE needs both paths: a missing target is ENOENT', (t) => {
  const { renameat2 } = native();
  const dir = tempDir(t);
  const a = join(dir, 'a');
  const missing = join(dir, 'missing');
  writeFileSync(a, 'A');
  assertErrno(() => renameat2(a, missing, RENAME_EXCHANGE), {
    code: 'ENOENT',
    errno: constants.errno.ENOENT,
    syscall: 'renameat2',
    path: a,
    dest: missing,
  });
  assert.equal(readFileSync(a, 'utf8'), 'A');
});

test('contradictory flags are EINVAL', (t) => {
  const { renameat2 } = native();
  const dir = tempDir(t);
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  writeFileSync(a, 'A');
  writeFileSync(b, 'B');
  assertErrno(() => renameat2(a, b, RENAME_NOREPLACE | RENAME_EXCHANGE), {
    code: 'EINVAL',
    errno: constants.errno.EINVAL,
    syscall: 'renameat2',
    path: a,
    dest: b,
  });
});

// Like mknod 0/0, whiteout creation needs no privilege on Linux >= 5.8.
test('RENAME_WHITEOUT moves the file and leaves a char 0/0 whiteout behind', (t) => {
  const { renameat2 } = native();
  const dir = tempDir(t);
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  writeFileSync(a, 'A');
  renameat2(a, b, RENAME_WHITEOUT);
  assert.equal(readFileSync(b, 'utf8'), 'A');
  const wh = lstatSync(a);
  assert.ok(wh.isCharacterDevice());
  assert.equal(wh.rdev, 0);
  assert.equal(wh.mode & fsc.S_IFMT, fsc.S_IFCHR);
});
