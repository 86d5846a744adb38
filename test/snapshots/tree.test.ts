import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, constants, linkSync, symlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { native } from '../../src/native.js';
import { tempDir } from '../helpers/tmp.js';
import { assertTreesEqual, readTree } from '../helpers/tree.js';
import { writeFiles } from './helpers.js';

describe('readTree and assertTreesEqual (test/helpers/tree.ts)', () => {
  test('readTree records type, mode, owner, size, content hash, link target, device, xattrs, mtime and hard links', (t) => {
    const dir = tempDir(t);
    writeFiles(dir, { 'd/file': 'hello' });
    chmodSync(join(dir, 'd/file'), 0o4750);
    utimesSync(join(dir, 'd/file'), 1, 2);
    linkSync(join(dir, 'd/file'), join(dir, 'd/link'));
    symlinkSync('d/file', join(dir, 'sym'));
    native().mknod(join(dir, 'null'), constants.S_IFCHR | 0o666, native().makedev(1, 3));
    native().lsetxattr(join(dir, 'd'), 'user.note', Buffer.from('n'));
    native().lsetxattr(join(dir, 'd'), 'user.overlay.opaque', Buffer.from('y'));
    native().lsetxattr(join(dir, 'd'), 'trusted.overlay.opaque', Buffer.from('y'));

    const tree = readTree(dir);
    assert.deepEqual([...tree.keys()], ['.', 'd', 'd/file', 'd/link', 'null', 'sym']);
    assert.deepEqual(tree.get('d/file'), {
      type: 'file',
      mode: 0o4750,
      uid: process.getuid?.(),
      gid: process.getgid?.(),
      xattrs: {},
      mtime: 2_000_000_000n,
      size: 5,
      sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
    });
    assert.equal(tree.get('d/link')?.hardlinkOf, 'd/file');
    assert.equal(tree.get('sym')?.linkTarget, 'd/file');
    assert.equal(tree.get('null')?.rdev, native().makedev(1, 3));
    assert.deepEqual(tree.get('d')?.xattrs, { 'user.note': Buffer.from('n').toString('base64') });
    assert.equal(tree.get('d')?.mtime, undefined);
  });

  test('assertTreesEqual passes for a copy and lists every missing, extra and changed entry otherwise', (t) => {
    const dir = tempDir(t);
    writeFiles(dir, { a: '1', b: '2', 'c/d': '3' });
    const copy = tempDir(t);
    execFileSync('cp', ['-a', '--no-target-directory', dir, copy]);
    assertTreesEqual(readTree(copy), readTree(dir), { ignore: (path) => path === '.' });

    writeFiles(copy, { a: 'changed', extra: 'x' });
    chmodSync(join(copy, 'b'), 0o600);
    const expected = readTree(dir);
    expected.delete('c/d');
    expected.set('gone', { type: 'file', mode: 0o644, uid: 0, gid: 0, xattrs: {} });
    assert.throws(
      () => assertTreesEqual(readTree(copy), expected, { ignore: (path) => path === '.', mtime: 'ignore' }),
      (err: Error) => {
        for (const line of [
          /a: size is 7, expected 1/,
          /a: sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}/,
          /b: mode is 0600, expected 0[0-7]+/,
          /gone: missing \(expected a file\)/,
          /c\/d: unexpected file/,
          /extra: unexpected file/,
        ]) {
          assert.match(err.message, line);
        }
        return true;
      },
    );
  });

  test('assertTreesEqual compares mtimes exactly, by whole seconds, or not at all', (t) => {
    const dir = tempDir(t);
    writeFiles(dir, { f: 'x' });
    utimesSync(join(dir, 'f'), 10.25, 10.25);
    const precise = readTree(dir);
    utimesSync(join(dir, 'f'), 10.75, 10.75);
    const later = readTree(dir);
    assert.throws(() => assertTreesEqual(later, precise), /f: mtime is 10750000000, expected 10250000000/);
    assertTreesEqual(later, precise, { mtime: 'seconds' });
    utimesSync(join(dir, 'f'), 99, 99);
    assert.throws(() => assertTreesEqual(readTree(dir), precise, { mtime: 'seconds' }), /mtime/);
    assertTreesEqual(readTree(dir), precise, { mtime: 'ignore' });
  });
});
