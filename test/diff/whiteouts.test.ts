import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { inheritImpliedDirectories } from '../../src/diff/apply.js';
import { applyTarget } from '../../src/diff/target.js';
import { native } from '../../src/native.js';
import { applyBuffer, bind, escapeFixture, overlay, tarLayer } from '../helpers/layers.js';
import { tempDir } from '../helpers/tmp.js';

const isWhiteout = (path: string): boolean => {
  const st = lstatSync(path, { throwIfNoEntry: false });
  return st !== undefined && st.isCharacterDevice() && st.rdev === 0;
};

/** A lower layer: etc/{passwd,group}, var/cache/{a,b/c}, opt/app/{bin,lib}. */
function lowerTree(dir: string): void {
  mkdirSync(join(dir, 'etc'), { recursive: true });
  writeFileSync(join(dir, 'etc/passwd'), 'root');
  writeFileSync(join(dir, 'etc/group'), 'root');
  mkdirSync(join(dir, 'var/cache/b'), { recursive: true });
  writeFileSync(join(dir, 'var/cache/a'), 'a');
  writeFileSync(join(dir, 'var/cache/b/c'), 'c');
  mkdirSync(join(dir, 'opt/app'), { recursive: true });
  writeFileSync(join(dir, 'opt/app/bin'), 'bin');
  writeFileSync(join(dir, 'opt/app/lib'), 'lib');
}

/** Mount upper over lowers read-only and return the merged directory listing of `paths`. */
function mergedView(t: TestContext, upper: string, lowers: string[], paths: string[]): Record<string, string[] | string | null> {
  const base = tempDir(t, 'layerpool-ovl-');
  const merged = join(base, 'merged');
  mkdirSync(merged);
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${[upper, ...lowers].join(':')}`, merged]);
  try {
    const out: Record<string, string[] | string | null> = {};
    for (const p of paths) {
      const path = join(merged, p);
      const st = lstatSync(path, { throwIfNoEntry: false });
      out[p] = st === undefined ? null : st.isDirectory() ? readdirSync(path).sort() : readFileSync(path, 'utf8');
    }
    return out;
  } finally {
    execFileSync('umount', [merged]);
  }
}

describe('delete mode (a native snapshot: a full copy of the parent)', () => {
  test('.wh.<name> removes a lower file and a lower directory tree', async (t) => {
    const root = tempDir(t);
    lowerTree(root);
    const stats = await applyBuffer(tarLayer([{ name: 'etc/.wh.passwd' }, { name: 'var/.wh.cache' }]), bind(root));
    assert.equal(existsSync(join(root, 'etc/passwd')), false);
    assert.equal(existsSync(join(root, 'etc/group')), true);
    assert.equal(existsSync(join(root, 'var/cache')), false);
    assert.equal(stats.whiteouts, 2);
  });

  test('a whiteout does not remove what the same layer wrote, before or after it', async (t) => {
    const root = tempDir(t);
    lowerTree(root);
    await applyBuffer(tarLayer([{ name: 'etc/passwd', content: 'new' }, { name: 'etc/.wh.passwd' }, { name: 'etc/.wh.group' }, { name: 'etc/group', content: 'new group' }]), bind(root));
    assert.equal(readFileSync(join(root, 'etc/passwd'), 'utf8'), 'new');
    assert.equal(readFileSync(join(root, 'etc/group'), 'utf8'), 'new group');
  });

  test('.wh..wh..opq removes the lower children and keeps what the layer wrote in that directory, in any order', async (t) => {
    const root = tempDir(t);
    lowerTree(root);
    await applyBuffer(
      tarLayer([
        { name: 'opt/app/', type: 'dir' },
        { name: 'opt/app/bin', content: 'new bin' },
        { name: 'opt/app/.wh..wh..opq' },
        { name: 'opt/app/extra', content: 'extra' },
        { name: 'var/cache/b/', type: 'dir' },
        { name: 'var/cache/b/new', content: 'n' },
        { name: 'var/cache/.wh..wh..opq' },
      ]),
      bind(root),
    );
    assert.deepEqual(readdirSync(join(root, 'opt/app')).sort(), ['bin', 'extra']);
    assert.equal(readFileSync(join(root, 'opt/app/bin'), 'utf8'), 'new bin');
    assert.deepEqual(readdirSync(join(root, 'var/cache')), ['b'], 'the lower file a is gone');
    assert.deepEqual(readdirSync(join(root, 'var/cache/b')), ['new'], 'lower content of a directory the layer re-listed is gone too');
  });

  test('on an empty target (a first layer) whiteouts and opaque markers remove nothing the layer wrote', async (t) => {
    const root = tempDir(t);
    const stats = await applyBuffer(
      tarLayer([{ name: 'a/x', content: 'x' }, { name: 'a/.wh..wh..opq' }, { name: 'b', content: 'b' }, { name: '.wh.b' }, { name: 'a/.wh.x' }]),
      bind(root),
    );
    assert.deepEqual(readdirSync(root).sort(), ['a', 'b']);
    assert.deepEqual(readdirSync(join(root, 'a')), ['x']);
    assert.equal(stats.whiteouts, 3);
  });

  test('a whiteout for a name no layer has, and AUFS metadata entries, change nothing', async (t) => {
    const root = tempDir(t);
    lowerTree(root);
    await applyBuffer(tarLayer([{ name: 'nothing/here/.wh.x' }, { name: 'etc/.wh..wh.plnk/', type: 'dir' }, { name: '.wh..wh.aufs' }]), bind(root));
    assert.equal(existsSync(join(root, 'nothing')), false);
    assert.equal(existsSync(join(root, 'etc/.wh..wh.plnk')), false);
    assert.deepEqual(readdirSync(join(root, 'etc')).sort(), ['group', 'passwd']);
  });
});

describe('overlay mode', () => {
  test('.wh.<name> becomes a char 0/0 whiteout and .wh..wh..opq the trusted.overlay.opaque xattr', async (t) => {
    const upper = tempDir(t);
    const stats = await applyBuffer(
      tarLayer([{ name: 'etc/.wh.passwd', uid: 0 }, { name: 'opt/app/', type: 'dir' }, { name: 'opt/app/.wh..wh..opq' }, { name: 'opt/app/bin', content: 'new' }]),
      overlay(upper),
    );
    assert.ok(isWhiteout(join(upper, 'etc/passwd')));
    assert.equal(native().lgetxattr(join(upper, 'opt/app'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(readFileSync(join(upper, 'opt/app/bin'), 'utf8'), 'new');
    assert.equal(stats.whiteouts, 2);
  });

  test('overlay-userxattr mode uses user.overlay.opaque', async (t) => {
    const upper = tempDir(t);
    await applyBuffer(tarLayer([{ name: 'd/.wh..wh..opq' }, { name: 'd/.wh.gone' }]), overlay(upper, [], ['userxattr']));
    assert.equal(native().lgetxattr(join(upper, 'd'), 'user.overlay.opaque')?.toString(), 'y');
    assert.equal(native().lgetxattr(join(upper, 'd'), 'trusted.overlay.opaque'), null);
    assert.ok(isWhiteout(join(upper, 'd/gone')));
  });

  test('a bind mount with whiteoutMode "overlay" (a parentless overlay snapshot) gets overlay whiteouts', async (t) => {
    const dir = tempDir(t);
    await applyBuffer(tarLayer([{ name: '.wh.gone' }]), bind(dir), { whiteoutMode: 'overlay' });
    assert.ok(isWhiteout(join(dir, 'gone')));
  });

  test('a whiteout does not replace an entry the same layer wrote; a directory over a whiteout is made opaque', async (t) => {
    const upper = tempDir(t);
    await applyBuffer(
      tarLayer([{ name: 'kept', content: 'mine' }, { name: '.wh.kept' }, { name: '.wh.redone' }, { name: 'redone/', type: 'dir' }, { name: 'redone/f', content: 'f' }]),
      overlay(upper),
    );
    assert.equal(readFileSync(join(upper, 'kept'), 'utf8'), 'mine');
    assert.ok(statSync(join(upper, 'redone')).isDirectory());
    assert.equal(native().lgetxattr(join(upper, 'redone'), 'trusted.overlay.opaque')?.toString(), 'y');
  });

  test('mounted with its lower, the layer hides, replaces and adds exactly what it says (real overlayfs)', async (t) => {
    const lower = tempDir(t);
    lowerTree(lower);
    const upper = tempDir(t);
    await applyBuffer(
      tarLayer([
        { name: 'etc/.wh.passwd' },
        { name: 'opt/app/.wh..wh..opq' },
        { name: 'opt/app/new', content: 'new' },
        { name: 'var/.wh.cache' },
        { name: 'var/cache/', type: 'dir' },
        { name: 'var/cache/fresh', content: 'fresh' },
      ]),
      overlay(upper, [lower]),
    );
    assert.deepEqual(mergedView(t, upper, [lower], ['etc', 'etc/passwd', 'opt/app', 'var/cache', 'var/cache/fresh']), {
      etc: ['group'],
      'etc/passwd': null,
      'opt/app': ['new'],
      'var/cache': ['fresh'],
      'var/cache/fresh': 'fresh',
    });
  });
});

describe('overlay mounts as the target', () => {
  test('the layer is written into upperdir; lowerdirs are read, never written', async (t) => {
    const lower = tempDir(t);
    lowerTree(lower);
    const before = readdirSync(lower, { recursive: true }).sort();
    const upper = tempDir(t);
    await applyBuffer(tarLayer([{ name: 'etc/hosts', content: 'h' }, { name: 'etc/.wh.group' }]), overlay(upper, [lower]));
    assert.equal(readFileSync(join(upper, 'etc/hosts'), 'utf8'), 'h');
    assert.deepEqual(readdirSync(lower, { recursive: true }).sort(), before);
  });

  test('a hardlink to a file only a lower layer has copies it up, then links it', async (t) => {
    const lowest = tempDir(t);
    lowerTree(lowest);
    chownSync(join(lowest, 'opt/app/bin'), 42, 43);
    utimesSync(join(lowest, 'opt/app/bin'), 1_111_111_111, 1_111_111_111);
    native().lsetxattr(join(lowest, 'opt/app/bin'), 'user.origin', Buffer.from('lowest'));
    const middle = tempDir(t);
    const upper = tempDir(t);
    const stats = await applyBuffer(tarLayer([{ name: 'usr/bin/app', type: 'hardlink', linkname: 'opt/app/bin', mode: 0o755, uid: 42, gid: 43, mtime: 1_111_111_111 }]), overlay(upper, [middle, lowest]));
    assert.equal(stats.hardlinks, 1);
    const copied = statSync(join(upper, 'opt/app/bin'));
    assert.equal(statSync(join(upper, 'usr/bin/app')).ino, copied.ino);
    assert.equal(readFileSync(join(upper, 'usr/bin/app'), 'utf8'), 'bin');
    assert.deepEqual([copied.uid, copied.gid], [42, 43]);
    assert.equal(native().lgetxattr(join(upper, 'opt/app/bin'), 'user.origin')?.toString(), 'lowest');
    assert.equal(readFileSync(join(lowest, 'opt/app/bin'), 'utf8'), 'bin', 'the lower file is untouched');
  });

  test('a hardlink to a file a higher lower layer deleted (whiteout) or hid (opaque) is rejected', async (t) => {
    const lowest = tempDir(t);
    lowerTree(lowest);
    const middle = tempDir(t);
    mkdirSync(join(middle, 'etc'));
    native().mknod(join(middle, 'etc/passwd'), 0o20000, 0);
    mkdirSync(join(middle, 'opt/app'), { recursive: true });
    native().lsetxattr(join(middle, 'opt/app'), 'trusted.overlay.opaque', Buffer.from('y'));
    for (const target of ['etc/passwd', 'opt/app/lib']) {
      await assert.rejects(
        applyBuffer(tarLayer([{ name: 'h', type: 'hardlink', linkname: target }]), overlay(tempDir(t), [middle, lowest])),
        { code: 'LP_ERR_INVALID_ARGUMENT', message: /does not exist in the layer or its parents/ },
      );
    }
  });

  test('a directory the layer implies but does not list takes its attributes from the lower layer', async (t) => {
    const lower = tempDir(t);
    mkdirSync(join(lower, 'srv/www'), { recursive: true, mode: 0o750 });
    chownSync(join(lower, 'srv/www'), 33, 33);
    utimesSync(join(lower, 'srv/www'), 1_222_222_222, 1_222_222_222);
    const upper = tempDir(t);
    await applyBuffer(tarLayer([{ name: 'srv/www/index.html', content: 'hi' }]), overlay(upper, [lower]));
    const www = statSync(join(upper, 'srv/www'));
    assert.equal(www.mode & 0o7777, 0o750);
    assert.deepEqual([www.uid, www.gid], [33, 33]);
    assert.equal(www.mtimeMs, 1_222_222_222_000);
  });
});

describe('parentless overlay applies (all layers at once)', () => {
  test('implied directories are reported, then take their attributes from the parents once known', async (t) => {
    const lower = tempDir(t);
    mkdirSync(join(lower, 'srv/www'), { recursive: true, mode: 0o750 });
    chownSync(join(lower, 'srv/www'), 33, 33);
    utimesSync(join(lower, 'srv/www'), 1_222_222_222, 1_222_222_222);
    const upper = tempDir(t);
    const stats = await applyBuffer(tarLayer([{ name: 'srv/www/index.html', content: 'hi' }]), overlay(upper));
    assert.deepEqual(stats.impliedDirPaths?.sort(), ['srv', 'srv/www']);
    assert.equal(statSync(join(upper, 'srv/www')).mode & 0o7777, 0o755, 'no parents known yet: 0755');
    inheritImpliedDirectories(overlay(upper), bind(lower), stats.impliedDirPaths ?? [], {});
    const www = statSync(join(upper, 'srv/www'));
    assert.equal(www.mode & 0o7777, 0o750);
    assert.deepEqual([www.uid, www.gid], [33, 33]);
    assert.equal(www.mtimeMs, 1_222_222_222_000);
  });

  test('an implied directory whose parent the layer later replaced by a symlink is not followed outside', async (t) => {
    const fx = escapeFixture(t, (outside) => mkdirSync(join(outside, 'b'), { mode: 0o700 }));
    const lower = tempDir(t);
    mkdirSync(join(lower, 'a/b'), { recursive: true, mode: 0o777 });
    chmodSync(join(lower, 'a/b'), 0o777);
    const stats = await applyBuffer(
      tarLayer([{ name: 'a/b/f', content: 'x' }, { name: 'a', type: 'symlink', linkname: '../outside' }]),
      bind(fx.root),
      { whiteoutMode: 'overlay' },
    );
    assert.ok(stats.impliedDirPaths?.includes('a/b'));
    inheritImpliedDirectories(bind(fx.root), bind(lower), stats.impliedDirPaths ?? [], { whiteoutMode: 'overlay' });
    fx.assertOutsideUntouched();
    assert.equal(statSync(join(fx.outside, 'b')).mode & 0o777, 0o700);
  });
});

describe('target from mounts', () => {
  test('bind -> its source with delete mode; overlay -> upperdir with overlay (or userxattr) mode and lowerdirs', () => {
    assert.deepEqual(applyTarget(bind('/snap/1/fs'), undefined), { root: '/snap/1/fs', lowerDirs: [], whiteoutMode: 'delete' });
    assert.deepEqual(applyTarget(overlay('/snap/3/fs', ['/snap/2/fs', '/snap/1/fs']), undefined), {
      root: '/snap/3/fs',
      lowerDirs: ['/snap/2/fs', '/snap/1/fs'],
      whiteoutMode: 'overlay',
    });
    assert.equal(applyTarget(overlay('/u', [], ['userxattr']), undefined).whiteoutMode, 'overlay-userxattr');
    assert.equal(applyTarget(bind('/u'), 'overlay').whiteoutMode, 'overlay');
    assert.deepEqual(applyTarget([{ type: 'overlay', source: 'overlay', options: ['lowerdir=/a\\:b:/c', 'upperdir=/u'] }], undefined).lowerDirs, ['/a:b', '/c']);
  });

  test('read-only, upperdir-less, relative, multiple and unknown mounts are refused', () => {
    assert.throws(() => applyTarget([{ type: 'bind', source: '/x', options: ['ro', 'rbind'] }], undefined), { code: 'LP_ERR_INVALID_ARGUMENT' });
    assert.throws(() => applyTarget([{ type: 'overlay', source: 'overlay', options: ['lowerdir=/a:/b'] }], undefined), { code: 'LP_ERR_INVALID_ARGUMENT' });
    assert.throws(() => applyTarget(bind('relative/dir'), undefined), { code: 'LP_ERR_INVALID_ARGUMENT' });
    assert.throws(() => applyTarget([...bind('/a'), ...bind('/b')], undefined), { code: 'LP_ERR_NOT_IMPLEMENTED' });
    assert.throws(() => applyTarget([{ type: 'erofs', source: '/img', options: [] }], undefined), { code: 'LP_ERR_NOT_IMPLEMENTED' });
  });
});
