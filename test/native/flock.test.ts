import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { native, nativeAddonPath } from '../../src/native.js';
import { assertErrno, tempDir } from './helpers.js';

// Runs in a child process: opens `file` (a new open file description) and tries a
// non-blocking flock through the addon, printing the boolean result.
const TRY_LOCK = `
const b = require(process.argv[1]);
const fd = require('node:fs').openSync(process.argv[2], 'r');
process.stdout.write(JSON.stringify(b.flock(fd, process.argv[3], true)));
`;

function childTryLock(file: string, op: 'sh' | 'ex'): boolean {
  const out = execFileSync(process.execPath, ['-e', TRY_LOCK, nativeAddonPath(), file, op], { encoding: 'utf8' });
  return JSON.parse(out) as boolean;
}

function lockFile(t: import('node:test').TestContext): { file: string; fd: number } {
  const file = join(tempDir(t), 'lock');
  writeFileSync(file, '');
  const fd = openSync(file, 'r');
  t.after(() => closeSync(fd));
  return { file, fd };
}

test('an exclusive lock held here makes LOCK_EX|LOCK_NB in another process fail; unlock releases it', (t) => {
  const { flock } = native();
  const { file, fd } = lockFile(t);
  assert.equal(childTryLock(file, 'ex'), true, 'free lock: the child gets it (and releases it by exiting)');
  assert.equal(flock(fd, 'ex', true), true);
  assert.equal(childTryLock(file, 'ex'), false);
  assert.equal(childTryLock(file, 'sh'), false);
  assert.equal(flock(fd, 'un', false), true);
  assert.equal(childTryLock(file, 'ex'), true);
});

test('shared locks coexist across processes but exclude an exclusive one', (t) => {
  const { flock } = native();
  const { file, fd } = lockFile(t);
  assert.equal(flock(fd, 'sh', true), true);
  assert.equal(childTryLock(file, 'sh'), true);
  assert.equal(childTryLock(file, 'ex'), false);
  assert.equal(flock(fd, 'un'), true);
  assert.equal(childTryLock(file, 'ex'), true);
});

test('the lock belongs to the open file description: a second open() in this process conflicts too', (t) => {
  const { flock } = native();
  const { file, fd } = lockFile(t);
  const other = openSync(file, 'r');
  t.after(() => closeSync(other));
  assert.equal(flock(fd, 'ex', true), true);
  assert.equal(flock(other, 'ex', true), false);
  closeSync(openSync(file, 'r')); // closing an unrelated fd of the same file keeps the lock
  assert.equal(flock(other, 'ex', true), false);
  assert.equal(flock(fd, 'un'), true);
  assert.equal(flock(other, 'ex', true), true);
});

test('a blocking flock in another process waits until the holder unlocks', async (t) => {
  const { flock } = native();
  const { file, fd } = lockFile(t);
  assert.equal(flock(fd, 'ex', true), true);
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const b = require(process.argv[1]);
       const fd = require('node:fs').openSync(process.argv[2], 'r');
       process.stdout.write('waiting\\n');
       b.flock(fd, 'ex', false);
       process.stdout.write('locked\\n');`,
      nativeAddonPath(),
      file,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  while (!out.includes('waiting')) await sleep(10);
  await sleep(300);
  assert.equal(out, 'waiting\n', 'the child must still be blocked while we hold the lock');
  assert.equal(flock(fd, 'un'), true);
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0);
  assert.equal(out, 'waiting\nlocked\n');
});

test('flock on a closed fd throws EBADF shaped like a node:fs error', (t) => {
  const { flock } = native();
  const { file } = lockFile(t);
  const fd = openSync(file, 'r');
  closeSync(fd);
  assertErrno(() => flock(fd, 'ex', true), { code: 'EBADF', errno: constants.errno.EBADF, syscall: 'flock' });
});
