import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../../src/native.js';
import { applyBuffer, bind, DEFAULT_MTIME, describeTree, tarLayer } from '../helpers/layers.js';
import { tempDir } from '../helpers/tmp.js';

/** security.capability v2: effective, permitted = CAP_SETUID (bit 7: byte 0x80) | CAP_NET_BIND_SERVICE. */
const CAPABILITY = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

const mtimeOf = (path: string): number => lstatSync(path).mtimeMs / 1000;

describe('entry types', () => {
  test('regular files get their content, mode, owner, mtime and xattrs exactly', async (t) => {
    const root = tempDir(t);
    const big = Buffer.alloc(300_000, 'x');
    const stats = await applyBuffer(
      tarLayer([
        { name: 'bin/', type: 'dir', mode: 0o755 },
        { name: 'bin/tool', content: 'tool\n', mode: 0o4755, uid: 1000, gid: 1001, mtime: 1_600_000_000, xattrs: { 'security.capability': CAPABILITY, 'user.note': 'hi' } },
        { name: 'bin/setgid', content: 'g', mode: 0o2711, uid: 12, gid: 34 },
        { name: 'big', content: big, mode: 0o600, mtime: 1_500_000_123 },
        { name: 'empty', content: '', mode: 0o400 },
        { name: 'readonly', content: 'written through the descriptor that created it', mode: 0o444 },
      ]),
      bind(root),
    );
    const tool = statSync(join(root, 'bin/tool'));
    assert.equal(readFileSync(join(root, 'bin/tool'), 'utf8'), 'tool\n');
    assert.equal(tool.mode & 0o7777, 0o4755, 'setuid survives the chown');
    assert.equal(tool.uid, 1000);
    assert.equal(tool.gid, 1001);
    assert.equal(tool.mtimeMs, 1_600_000_000_000);
    assert.deepEqual(native().lgetxattr(join(root, 'bin/tool'), 'security.capability'), CAPABILITY, 'binary capability bytes kept exactly');
    assert.equal(native().lgetxattr(join(root, 'bin/tool'), 'user.note')?.toString(), 'hi');
    const setgid = statSync(join(root, 'bin/setgid'));
    assert.equal(setgid.mode & 0o7777, 0o2711);
    assert.equal(setgid.uid, 12);
    assert.equal(setgid.gid, 34);
    assert.deepEqual(readFileSync(join(root, 'big')), big);
    assert.equal(statSync(join(root, 'big')).mode & 0o7777, 0o600);
    assert.equal(mtimeOf(join(root, 'big')), 1_500_000_123);
    assert.equal(statSync(join(root, 'empty')).size, 0);
    assert.equal(statSync(join(root, 'empty')).mode & 0o7777, 0o400);
    assert.equal(readFileSync(join(root, 'readonly'), 'utf8'), 'written through the descriptor that created it');
    assert.equal(statSync(join(root, 'readonly')).mode & 0o7777, 0o444);
    assert.equal(stats.files, 5);
    assert.equal(stats.dirs, 1);
    assert.equal(stats.entries, 6);
  });

  test('directories get mode (sticky, setgid), owner and mtime, set after their children were written', async (t) => {
    const root = tempDir(t);
    await applyBuffer(
      tarLayer([
        { name: 'tmp/', type: 'dir', mode: 0o1777, mtime: 1_400_000_000 },
        { name: 'srv/', type: 'dir', mode: 0o2750, uid: 7, gid: 8, mtime: 1_400_000_001 },
        { name: 'srv/a/', type: 'dir', mode: 0o555, mtime: 1_400_000_002 },
        { name: 'srv/a/file', content: 'x', mtime: 1_400_000_003 },
        { name: 'tmp/late', content: 'written after tmp/ was listed' },
      ]),
      bind(root),
    );
    const tmp = statSync(join(root, 'tmp'));
    assert.equal(tmp.mode & 0o7777, 0o1777);
    assert.equal(tmp.mtimeMs, 1_400_000_000_000, 'a child written later does not change the directory mtime');
    const srv = statSync(join(root, 'srv'));
    assert.equal(srv.mode & 0o7777, 0o2750);
    assert.deepEqual([srv.uid, srv.gid], [7, 8]);
    assert.equal(srv.mtimeMs, 1_400_000_001_000);
    assert.equal(statSync(join(root, 'srv/a')).mode & 0o7777, 0o555);
    assert.equal(statSync(join(root, 'srv/a')).mtimeMs, 1_400_000_002_000);
    assert.equal(readFileSync(join(root, 'srv/a/file'), 'utf8'), 'x');
  });

  test('symlinks keep their target text (never followed), owner and mtime', async (t) => {
    const root = tempDir(t);
    const stats = await applyBuffer(
      tarLayer([
        { name: 'abs', type: 'symlink', linkname: '/etc/passwd', uid: 5, gid: 6, mtime: 1_300_000_000 },
        { name: 'rel', type: 'symlink', linkname: '../../../outside' },
        { name: 'dangling', type: 'symlink', linkname: 'nowhere/at/all' },
      ]),
      bind(root),
    );
    assert.equal(readlinkSync(join(root, 'abs')), '/etc/passwd');
    assert.equal(readlinkSync(join(root, 'rel')), '../../../outside');
    assert.equal(readlinkSync(join(root, 'dangling')), 'nowhere/at/all');
    const abs = lstatSync(join(root, 'abs'));
    assert.deepEqual([abs.uid, abs.gid], [5, 6]);
    assert.equal(abs.mtimeMs, 1_300_000_000_000);
    assert.equal(stats.symlinks, 3);
  });

  test('hardlinks share the inode of their target, also through a directory written in the same layer', async (t) => {
    const root = tempDir(t);
    const stats = await applyBuffer(
      tarLayer([
        { name: 'usr/bin/', type: 'dir' },
        { name: 'usr/bin/perl', content: 'perl', mode: 0o755 },
        { name: 'usr/bin/perl5.36', type: 'hardlink', linkname: 'usr/bin/perl', mode: 0o755 },
        { name: 'other/perl', type: 'hardlink', linkname: './usr/bin/perl', mode: 0o755 },
        { name: 'lnk', type: 'symlink', linkname: '/nowhere' },
        { name: 'lnk-hard', type: 'hardlink', linkname: 'lnk' },
      ]),
      bind(root),
    );
    const perl = statSync(join(root, 'usr/bin/perl'));
    assert.equal(statSync(join(root, 'usr/bin/perl5.36')).ino, perl.ino);
    assert.equal(statSync(join(root, 'other/perl')).ino, perl.ino);
    assert.equal(perl.nlink, 3);
    assert.equal(lstatSync(join(root, 'lnk-hard')).ino, lstatSync(join(root, 'lnk')).ino, 'a hardlink to a symlink links the symlink itself');
    assert.equal(readlinkSync(join(root, 'lnk-hard')), '/nowhere');
    assert.equal(stats.hardlinks, 3);
  });

  test('character and block devices and FIFOs are created with their numbers, mode and owner (as root)', async (t) => {
    const root = tempDir(t);
    const stats = await applyBuffer(
      tarLayer([
        { name: 'dev/', type: 'dir' },
        { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
        { name: 'dev/loop9', type: 'block', devmajor: 7, devminor: 9, mode: 0o660, gid: 6 },
        { name: 'run/fifo', type: 'fifo', mode: 0o620, uid: 3 },
      ]),
      bind(root),
    );
    const nul = lstatSync(join(root, 'dev/null'));
    assert.ok(nul.isCharacterDevice());
    assert.equal(nul.rdev, native().makedev(1, 3));
    assert.equal(nul.mode & 0o7777, 0o666);
    const loop = lstatSync(join(root, 'dev/loop9'));
    assert.ok(loop.isBlockDevice());
    assert.equal(loop.rdev, native().makedev(7, 9));
    assert.equal(loop.gid, 6);
    const fifo = lstatSync(join(root, 'run/fifo'));
    assert.ok(fifo.isFIFO());
    assert.equal(fifo.mode & 0o7777, 0o620);
    assert.equal(fifo.uid, 3);
    assert.equal(stats.skipped, 0);
  });

  test('parents the layer does not list are created 0755', async (t) => {
    const root = tempDir(t);
    await applyBuffer(tarLayer([{ name: 'a/b/c/file', content: 'deep' }]), bind(root));
    assert.equal(readFileSync(join(root, 'a/b/c/file'), 'utf8'), 'deep');
    for (const dir of ['a', 'a/b', 'a/b/c']) assert.equal(statSync(join(root, dir)).mode & 0o7777, 0o755);
  });

  test("the root's own entry ('./') is ignored: the target keeps its mode", async (t) => {
    const root = tempDir(t);
    const before = statSync(root).mode;
    await applyBuffer(tarLayer([{ name: './', type: 'dir', mode: 0o700 }, { name: './f', content: 'f' }]), bind(root));
    assert.equal(statSync(root).mode, before);
    assert.equal(readFileSync(join(root, 'f'), 'utf8'), 'f');
  });

  test('files created in setgid directories (existing, the root, or listed with setgid) get the owner the tar says', async (t) => {
    const root = tempDir(t);
    mkdirSync(join(root, 'shared'));
    chownSync(join(root, 'shared'), 1234, 1234);
    chmodSync(join(root, 'shared'), 0o2775);
    chownSync(root, 0, 4321);
    chmodSync(root, 0o2755);
    await applyBuffer(
      tarLayer([
        { name: 'at-root', content: 'x' },
        { name: 'shared/file', content: 'x' },
        { name: 'listed/', type: 'dir', mode: 0o2775, gid: 555 },
        { name: 'listed/file', content: 'x' },
        { name: 'listed/sub/', type: 'dir' },
        { name: 'listed/sub/file', content: 'x', uid: 7, gid: 7 },
      ]),
      bind(root),
    );
    for (const path of ['at-root', 'shared/file', 'listed/file', 'listed/sub', 'listed/sub/file']) {
      const st = lstatSync(join(root, path));
      const expected = path === 'listed/sub/file' ? [7, 7] : [0, 0];
      assert.deepEqual([st.uid, st.gid], expected, path);
    }
    assert.equal(statSync(join(root, 'listed')).mode & 0o7777, 0o2775);
  });

  test('sameOwner: false leaves files owned by the applying process', async (t) => {
    const root = tempDir(t);
    await applyBuffer(tarLayer([{ name: 'f', content: 'x', uid: 4242, gid: 4343 }]), bind(root), { sameOwner: false });
    const st = statSync(join(root, 'f'));
    assert.deepEqual([st.uid, st.gid], [process.getuid?.(), process.getgid?.()]);
  });

  test('overlay xattrs in the layer are dropped (they would forge opaque directories); others are kept', async (t) => {
    const root = tempDir(t);
    await applyBuffer(
      tarLayer([{ name: 'd/', type: 'dir', xattrs: { 'trusted.overlay.opaque': 'y', 'user.overlay.opaque': 'y', 'trusted.keep': 'k' } }]),
      bind(root),
    );
    assert.deepEqual(native().llistxattr(join(root, 'd')).sort(), ['trusted.keep']);
  });

  test('xattr values are bytes: a value with NUL, newline and high bytes is stored unchanged', async (t) => {
    const root = tempDir(t);
    const value = Buffer.from([0, 0x0a, 0xff, 0x80, 0x3d, 0x20]);
    await applyBuffer(tarLayer([{ name: 'f', content: 'x', xattrs: { 'user.bin': value } }]), bind(root));
    assert.deepEqual(native().lgetxattr(join(root, 'f'), 'user.bin'), value);
  });
});

describe('replacing existing entries (containerd applyNaive rules)', () => {
  test('a file replaces a directory tree, a directory replaces a file, a symlink replaces a file', async (t) => {
    const root = tempDir(t);
    mkdirSync(join(root, 'was-dir/sub'), { recursive: true });
    writeFileSync(join(root, 'was-dir/sub/old'), 'old');
    writeFileSync(join(root, 'was-file'), 'old');
    writeFileSync(join(root, 'was-file-2'), 'old');
    await applyBuffer(
      tarLayer([
        { name: 'was-dir', content: 'now a file' },
        { name: 'was-file/', type: 'dir', mode: 0o711 },
        { name: 'was-file-2', type: 'symlink', linkname: 'target' },
      ]),
      bind(root),
    );
    assert.equal(readFileSync(join(root, 'was-dir'), 'utf8'), 'now a file');
    assert.ok(statSync(join(root, 'was-file')).isDirectory());
    assert.equal(statSync(join(root, 'was-file')).mode & 0o7777, 0o711);
    assert.equal(readlinkSync(join(root, 'was-file-2')), 'target');
  });

  test('a directory over an existing directory keeps its contents and takes the new mode, owner and mtime', async (t) => {
    const root = tempDir(t);
    mkdirSync(join(root, 'etc'), { mode: 0o700 });
    writeFileSync(join(root, 'etc/kept'), 'kept');
    await applyBuffer(tarLayer([{ name: 'etc/', type: 'dir', mode: 0o751, uid: 9, gid: 9, mtime: 1_234_567_890 }]), bind(root));
    assert.equal(readFileSync(join(root, 'etc/kept'), 'utf8'), 'kept');
    const etc = statSync(join(root, 'etc'));
    assert.equal(etc.mode & 0o7777, 0o751);
    assert.deepEqual([etc.uid, etc.gid], [9, 9]);
    assert.equal(etc.mtimeMs, 1_234_567_890_000);
  });

  test('a file over an existing symlink replaces the symlink and does not write through it', async (t) => {
    const root = tempDir(t);
    const victim = join(tempDir(t), 'victim');
    writeFileSync(victim, 'original');
    symlinkSync(victim, join(root, 'link'));
    await applyBuffer(tarLayer([{ name: 'link', content: 'new' }]), bind(root));
    assert.equal(readFileSync(victim, 'utf8'), 'original');
    assert.ok(lstatSync(join(root, 'link')).isFile());
    assert.equal(readFileSync(join(root, 'link'), 'utf8'), 'new');
  });

  test('a directory over an existing symlink to a directory replaces the symlink', async (t) => {
    const root = tempDir(t);
    mkdirSync(join(root, 'real'));
    symlinkSync('real', join(root, 'lib'));
    await applyBuffer(tarLayer([{ name: 'lib/', type: 'dir' }, { name: 'lib/x', content: 'x' }]), bind(root));
    assert.ok(lstatSync(join(root, 'lib')).isDirectory());
    assert.equal(readFileSync(join(root, 'lib/x'), 'utf8'), 'x');
    assert.equal(existsSync(join(root, 'real/x')), false);
  });

  test('a file listed twice ends with the second content; a hardlink listed twice stays one link', async (t) => {
    const root = tempDir(t);
    await applyBuffer(
      tarLayer([
        { name: 'f', content: 'first' },
        { name: 'f', content: 'second' },
        { name: 'h', type: 'hardlink', linkname: 'f' },
        { name: 'h', type: 'hardlink', linkname: 'f' },
      ]),
      bind(root),
    );
    assert.equal(readFileSync(join(root, 'f'), 'utf8'), 'second');
    assert.equal(statSync(join(root, 'h')).ino, statSync(join(root, 'f')).ino);
    assert.equal(statSync(join(root, 'f')).nlink, 2);
  });

  test('a tree written by the layer reads back exactly as described', async (t) => {
    const root = tempDir(t);
    await applyBuffer(
      tarLayer([
        { name: 'd/', type: 'dir', mode: 0o750, mtime: DEFAULT_MTIME - 5 },
        { name: 'd/f', content: 'f', mode: 0o640, uid: 1, gid: 2 },
        { name: 'd/s', type: 'symlink', linkname: 'f' },
      ]),
      bind(root),
    );
    const tree = describeTree(root);
    assert.deepEqual(Object.keys(tree), ['d', 'd/f', 'd/s']);
    assert.equal(tree['d']?.mtimeUs, (DEFAULT_MTIME - 5) * 1e6);
    assert.equal(tree['d/f']?.mode, 0o640);
    assert.equal(tree['d/s']?.link, 'f');
  });
});
