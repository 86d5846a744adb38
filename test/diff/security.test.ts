/**
 * Path confinement: every way a layer can try to reach outside the target root. Each test
 * asserts the typed error or the confined result, and that nothing outside the root
 * (the `outside` directory with its sentinel, the base directory) changed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isInvalidArgument } from '../../src/errors.js';
import type { WhiteoutMode } from '../../src/diff/types.js';
import { applyBuffer, escapeFixture, tarLayer, type EntrySpec, type EscapeFixture } from '../helpers/layers.js';

type Context = import('node:test').TestContext;

async function rejected(t: Context, entries: (fx: EscapeFixture) => EntrySpec[], pattern: RegExp, setup?: (outside: string) => void): Promise<EscapeFixture> {
  const fx = escapeFixture(t, setup);
  await assert.rejects(applyBuffer(tarLayer(entries(fx)), fx.mounts), (err: Error) => isInvalidArgument(err) && pattern.test(err.message));
  fx.assertOutsideUntouched();
  return fx;
}

async function confined(t: Context, entries: (fx: EscapeFixture) => EntrySpec[], options: { whiteoutMode?: WhiteoutMode; setup?: (outside: string) => void } = {}): Promise<EscapeFixture> {
  const fx = escapeFixture(t, options.setup);
  await applyBuffer(tarLayer(entries(fx)), fx.mounts, options.whiteoutMode ? { whiteoutMode: options.whiteoutMode } : {});
  fx.assertOutsideUntouched();
  return fx;
}

describe('names', () => {
  test('"../x" is rejected', async (t) => {
    await rejected(t, () => [{ name: '../pwned', content: 'x' }], /climbs above the root/);
  });

  test('"a/../../x" is rejected', async (t) => {
    await rejected(t, () => [{ name: 'a/../../pwned', content: 'x' }], /climbs above the root/);
  });

  test('"a/../x" stays inside and lands at x', async (t) => {
    const fx = await confined(t, () => [{ name: 'a/../inside', content: 'x' }]);
    assert.equal(readFileSync(join(fx.root, 'inside'), 'utf8'), 'x');
  });

  test('an absolute name is stripped of its "/", not written at that absolute path', async (t) => {
    const fx = await confined(t, (fx) => [{ name: `${fx.outside}/pwned`, content: 'x' }]);
    assert.equal(readFileSync(join(fx.root, fx.outside, 'pwned'), 'utf8'), 'x');
  });

  test('a NUL byte in a name is rejected', async (t) => {
    await rejected(t, () => [{ name: 'f', content: 'x', pax: { path: 'ok\0../../pwned' } }], /NUL/);
  });
});

describe('symlinked parents resolve as if the root were /', () => {
  test('a symlink to "/" then a file under it', async (t) => {
    const fx = await confined(t, () => [
      { name: 'evil', type: 'symlink', linkname: '/' },
      { name: 'evil/pwned', content: 'x' },
    ]);
    assert.equal(readFileSync(join(fx.root, 'pwned'), 'utf8'), 'x');
  });

  test('a symlink to an absolute directory outside then a file under it', async (t) => {
    const fx = await confined(t, (fx) => [
      { name: 'evil', type: 'symlink', linkname: fx.outside },
      { name: 'evil/pwned', content: 'x' },
    ]);
    assert.equal(readFileSync(join(fx.root, fx.outside, 'pwned'), 'utf8'), 'x');
    assert.equal(readlinkSync(join(fx.root, 'evil')), fx.outside, 'the symlink itself keeps its text');
  });

  test('a relative symlink climbing out then a file, a directory, a FIFO and a hardlink under it', async (t) => {
    const fx = await confined(t, () => [
      { name: 'f', content: 'f' },
      { name: 'up', type: 'symlink', linkname: '../../../outside' },
      { name: 'up/pwned', content: 'x' },
      { name: 'up/dir/', type: 'dir' },
      { name: 'up/fifo', type: 'fifo' },
      { name: 'up/hard', type: 'hardlink', linkname: 'f' },
    ]);
    assert.equal(readFileSync(join(fx.root, 'outside/pwned'), 'utf8'), 'x');
    assert.ok(statSync(join(fx.root, 'outside/dir')).isDirectory());
    assert.ok(lstatSync(join(fx.root, 'outside/fifo')).isFIFO());
    assert.equal(statSync(join(fx.root, 'outside/hard')).ino, statSync(join(fx.root, 'f')).ino);
  });

  test('a chain of symlinks (relative, absolute, "..") ends inside', async (t) => {
    const fx = await confined(t, () => [
      { name: 'a', type: 'symlink', linkname: 'b' },
      { name: 'b', type: 'symlink', linkname: '/c/../../d' },
      { name: 'd', type: 'symlink', linkname: '../../outside' },
      { name: 'a/pwned', content: 'x' },
    ]);
    assert.equal(readFileSync(join(fx.root, 'outside/pwned'), 'utf8'), 'x');
  });

  test('a symlink loop is rejected', async (t) => {
    await rejected(t, () => [
      { name: 'x', type: 'symlink', linkname: 'y' },
      { name: 'y', type: 'symlink', linkname: 'x' },
      { name: 'x/f', content: 'x' },
    ], /too many levels of symbolic links/);
  });

  test('a directory replaced by a symlink in the same layer, then a file under it', async (t) => {
    const fx = await confined(t, () => [
      { name: 'd/', type: 'dir' },
      { name: 'd/early', content: 'cached the directory' },
      { name: 'd', type: 'symlink', linkname: '../outside' },
      { name: 'd/pwned', content: 'x' },
    ]);
    assert.equal(readFileSync(join(fx.root, 'outside/pwned'), 'utf8'), 'x');
    assert.equal(readlinkSync(join(fx.root, 'd')), '../outside');
  });

  test("a directory's deferred mode and mtime are not applied through a symlink that replaced it", async (t) => {
    const fx = await confined(t, () => [
      { name: 'x/', type: 'dir', mode: 0o777, mtime: 1 },
      { name: 'x', type: 'symlink', linkname: '../outside' },
      { name: 'a/b/', type: 'dir', mode: 0o777, mtime: 1 },
      { name: 'a', type: 'symlink', linkname: '../outside' },
    ], { setup: (outside) => mkdirSync(join(outside, 'b'), { mode: 0o700 }) });
    assert.equal(readlinkSync(join(fx.root, 'x')), '../outside');
    assert.equal(statSync(join(fx.outside, 'b')).mode & 0o777, 0o700);
  });

  test('a file over an in-layer symlink that points outside replaces the symlink', async (t) => {
    const fx = await confined(t, (fx) => [
      { name: 'link', type: 'symlink', linkname: join(fx.outside, 'sentinel') },
      { name: 'link', content: 'replaced' },
    ]);
    assert.equal(readFileSync(join(fx.root, 'link'), 'utf8'), 'replaced');
    assert.equal(readFileSync(join(fx.outside, 'sentinel'), 'utf8'), 'do not touch');
  });

  test('a parent that is a regular file is rejected', async (t) => {
    await rejected(t, () => [{ name: 'file', content: 'x' }, { name: 'file/child', content: 'y' }], /not a directory/);
  });
});

describe('hardlinks', () => {
  test('a hardlink to "../outside/sentinel" is rejected', async (t) => {
    const fx = await rejected(t, () => [{ name: 'h', type: 'hardlink', linkname: '../outside/sentinel' }], /climbs above the root/);
    assert.equal(statSync(join(fx.outside, 'sentinel')).nlink, 1);
  });

  test('a hardlink to an absolute path outside resolves inside the root (and fails there)', async (t) => {
    const fx = await rejected(t, (fx) => [{ name: 'h', type: 'hardlink', linkname: join(fx.outside, 'sentinel') }], /does not exist in the layer/);
    assert.equal(statSync(join(fx.outside, 'sentinel')).nlink, 1);
  });

  test('a hardlink through a symlinked directory does not reach outside', async (t) => {
    const fx = await rejected(t, () => [
      { name: 's', type: 'symlink', linkname: '../outside' },
      { name: 'h', type: 'hardlink', linkname: 's/sentinel' },
    ], /does not exist in the layer/);
    assert.equal(statSync(join(fx.outside, 'sentinel')).nlink, 1);
    assert.equal(existsSync(join(fx.root, 'h')), false);
  });

  test('a hardlink to a symlink pointing outside links the symlink, not its target', async (t) => {
    const fx = await confined(t, (fx) => [
      { name: 's', type: 'symlink', linkname: join(fx.outside, 'sentinel') },
      { name: 'h', type: 'hardlink', linkname: 's', mode: 0o777 },
    ]);
    assert.ok(lstatSync(join(fx.root, 'h')).isSymbolicLink());
    assert.equal(statSync(join(fx.outside, 'sentinel')).nlink, 1);
    assert.equal(statSync(join(fx.outside, 'sentinel')).mode & 0o777, 0o644 & ~process.umask());
  });

  test('a hardlink to a directory is rejected', async (t) => {
    await rejected(t, () => [{ name: 'd/', type: 'dir' }, { name: 'h', type: 'hardlink', linkname: 'd' }], /is a directory/);
  });
});

describe('whiteouts', () => {
  for (const mode of ['delete', 'overlay'] as const) {
    test(`${mode} mode: ".wh...", ".wh.." and a bare ".wh." are rejected`, async (t) => {
      for (const name of ['.wh...', 'sub/.wh...', '.wh..', '.wh.']) {
        const fx = escapeFixture(t);
        await assert.rejects(applyBuffer(tarLayer([{ name, content: '' }]), fx.mounts, { whiteoutMode: mode }), (err: Error) => isInvalidArgument(err) && /invalid whiteout/.test(err.message), name);
        fx.assertOutsideUntouched();
      }
    });

    test(`${mode} mode: a whiteout and an opaque marker under a symlink pointing outside stay inside`, async (t) => {
      await confined(t, (fx) => [
        { name: 'rel', type: 'symlink', linkname: '../outside' },
        { name: 'rel/.wh.sentinel', content: '' },
        { name: 'abs', type: 'symlink', linkname: fx.outside },
        { name: 'abs/.wh..wh..opq', content: '' },
      ], { whiteoutMode: mode });
    });
  }
});
