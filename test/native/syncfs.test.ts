import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { native } from '../../src/native.js';
import { assertErrno, tempDir } from './helpers.js';

test('syncfs succeeds on a directory and on a file (string or Buffer path)', (t) => {
  const { syncfs } = native();
  const dir = tempDir(t);
  const file = join(dir, 'f');
  writeFileSync(file, 'data');
  assert.equal(syncfs(dir), undefined);
  assert.equal(syncfs(file), undefined);
  assert.equal(syncfs(Buffer.from(dir)), undefined);
});

test('syncfs on a missing path throws ENOENT with code, errno, syscall and path', (t) => {
  const { syncfs } = native();
  const missing = join(tempDir(t), 'does-not-exist');
  const err = assertErrno(() => syncfs(missing), {
    code: 'ENOENT',
    errno: constants.errno.ENOENT,
    syscall: 'open',
    path: missing,
  });
  assert.equal(err.message, `ENOENT: no such file or directory, open '${missing}'`);
  assert.ok(err instanceof Error);
});

test('syncfs through a non-directory parent throws ENOTDIR', (t) => {
  const { syncfs } = native();
  const file = join(tempDir(t), 'f');
  writeFileSync(file, '');
  assertErrno(() => syncfs(join(file, 'x')), {
    code: 'ENOTDIR',
    errno: constants.errno.ENOTDIR,
    syscall: 'open',
    path: join(file, 'x'),
  });
});
