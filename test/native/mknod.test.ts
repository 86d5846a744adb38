import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as fsc, lstatSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { native } from '../../src/native.js';
import { assertErrno, isRoot, tempDir } from './helpers.js';

test('makedev encodes like fs.Stats.rdev and rejects numbers Linux cannot store', () => {
  const { makedev } = native();
  assert.equal(makedev(0, 0), 0);
  assert.equal(makedev(1, 3), statSync('/dev/null').rdev);
  assert.equal(makedev(1, 5), statSync('/dev/zero').rdev);
  // glibc's encoding: minor bits 0-7 and 20-31, major bits 8-19.
  assert.equal(makedev(1, 0), 0x100);
  assert.equal(makedev(0, 256), 0x100000);
  assert.equal(makedev(0xfff, 0xfffff), 0xffffffff);
  assert.throws(() => makedev(0x1000, 0), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => makedev(0, 0x100000), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
});

// Linux >= 5.8 lets unprivileged users create the 0/0 whiteout device (nothing can be
// opened through it), so this holds as root and as any other user alike.
test('mknod char 0/0 creates an overlay whiteout', (t) => {
  const { mknod, makedev } = native();
  const wh = join(tempDir(t), 'whiteout');
  mknod(wh, fsc.S_IFCHR, makedev(0, 0));
  const st = lstatSync(wh);
  assert.ok(st.isCharacterDevice());
  assert.equal(st.rdev, 0);
  assert.equal(st.mode & 0o7777, 0);
  assertErrno(() => mknod(wh, fsc.S_IFCHR, 0), {
    code: 'EEXIST',
    errno: constants.errno.EEXIST,
    syscall: 'mknod',
    path: wh,
  });
});

test('mknod char 1/3 has the rdev of /dev/null (as root; EPERM otherwise)', (t) => {
  const { mknod, makedev } = native();
  const node = join(tempDir(t), 'null');
  if (!isRoot) {
    assertErrno(() => mknod(node, fsc.S_IFCHR | 0o666, makedev(1, 3)), {
      code: 'EPERM',
      errno: constants.errno.EPERM,
      syscall: 'mknod',
      path: node,
    });
    return;
  }
  mknod(node, fsc.S_IFBLK | 0o600, makedev(7, 0));
  assert.ok(lstatSync(node).isBlockDevice());
  assert.equal(lstatSync(node).rdev, makedev(7, 0));
  const chr = `${node}-chr`;
  mknod(chr, fsc.S_IFCHR | 0o600, makedev(1, 3));
  assert.ok(lstatSync(chr).isCharacterDevice());
  assert.equal(lstatSync(chr).rdev, statSync('/dev/null').rdev);
  assert.equal(lstatSync(chr).mode & 0o777, 0o600);
});

test('mknod creates a FIFO without privileges and refuses to replace an existing path', (t) => {
  const { mknod } = native();
  const fifo = join(tempDir(t), 'fifo');
  mknod(fifo, fsc.S_IFIFO | 0o600, 0);
  assert.ok(lstatSync(fifo).isFIFO());
  assertErrno(() => mknod(fifo, fsc.S_IFIFO | 0o600, 0), {
    code: 'EEXIST',
    errno: constants.errno.EEXIST,
    syscall: 'mknod',
    path: fifo,
  });
  const missing = join(fifo + '-dir', 'x');
  assertErrno(() => mknod(missing, fsc.S_IFIFO | 0o600, 0), {
    code: 'ENOENT',
    errno: constants.errno.ENOENT,
    syscall: 'mknod',
    path: missing,
  });
});
