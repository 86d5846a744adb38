/**
 * Layers written by real tools: GNU tar (GNU and PAX formats, with xattrs), Python's
 * tarfile (GNU and PAX formats), tar-stream's pack and umoci (Go's archive/tar, a real
 * OCI image layout).
 * The oracle is the tool itself where it can extract (GNU tar), else the source tree.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, ftruncateSync, linkSync, lutimesSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import tarStream from 'tar-stream';
import { MediaType } from '../../src/images/mediatypes.js';
import { native } from '../../src/native.js';
import { applyBuffer, bind, describeTree, gzip, sha256 } from '../helpers/layers.js';
import { tempDir } from '../helpers/tmp.js';

const CAPABILITY = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const LONG_DIR = `${'long-directory-name-'.repeat(6)}/${'nested-'.repeat(20)}`;
const MTIME = 1_650_000_000;

/** A tree with every entry type, special modes, big and small owners, xattrs and long names. */
function sourceTree(t: TestContext, { devices = true } = {}): string {
  const src = tempDir(t, 'layerpool-src-');
  const dirs = ['etc', 'usr/bin', 'usr/lib', 'tmp', 'srv', 'run', 'dev', 'data', LONG_DIR];
  for (const dir of dirs) mkdirSync(join(src, dir), { recursive: true });
  chmodSync(join(src, 'tmp'), 0o1777);
  chmodSync(join(src, 'srv'), 0o2750);
  chownSync(join(src, 'srv'), 7, 8);
  writeFileSync(join(src, 'etc/hostname'), 'layerpool\n');
  writeFileSync(join(src, 'usr/bin/su'), 'su binary');
  chmodSync(join(src, 'usr/bin/su'), 0o4755);
  linkSync(join(src, 'usr/bin/su'), join(src, 'usr/bin/su-hardlink'));
  writeFileSync(join(src, 'usr/bin/ping'), 'ping binary');
  chmodSync(join(src, 'usr/bin/ping'), 0o755);
  native().lsetxattr(join(src, 'usr/bin/ping'), 'security.capability', CAPABILITY);
  // GNU tar writes the xattrs on the first name only: the link must not lose the capability.
  linkSync(join(src, 'usr/bin/ping'), join(src, 'usr/bin/ping-hardlink'));
  native().lsetxattr(join(src, 'etc/hostname'), 'user.comment', Buffer.from('set by the test'));
  const big = Buffer.alloc(200_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  writeFileSync(join(src, 'data/big'), big);
  writeFileSync(join(src, 'data/empty'), '');
  writeFileSync(join(src, 'data/owned'), 'owned');
  chownSync(join(src, 'data/owned'), 1000, 1000);
  writeFileSync(join(src, 'data/big-owner'), 'big uid');
  chownSync(join(src, 'data/big-owner'), 3_000_000, 3_000_001);
  writeFileSync(join(src, LONG_DIR, `${'file-with-a-long-name-'.repeat(5)}.txt`), 'long');
  symlinkSync('/usr/share/zoneinfo/UTC', join(src, 'etc/localtime'));
  symlinkSync('usr/lib', join(src, 'lib'));
  execFileSync('mkfifo', ['-m', '0620', join(src, 'run/fifo')]);
  if (devices) native().mknod(join(src, 'dev/null'), 0o20666, native().makedev(1, 3));
  // Whole seconds everywhere, directories last, so every writer stores the same times.
  const all = readdirSync(src, { recursive: true }) as string[];
  for (const rel of all.sort().reverse()) lutimesSync(join(src, rel), MTIME, MTIME);
  return src;
}

function gnuTarExtract(t: TestContext, archive: string): string {
  const out = tempDir(t, 'layerpool-gnutar-');
  execFileSync('tar', ['-x', '-p', '--same-owner', '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', out, '-f', archive]);
  return out;
}

describe('GNU tar layers', () => {
  for (const format of ['gnu', 'pax'] as const) {
    test(`--format=${format}${format === 'pax' ? ' --xattrs' : ''}: what we apply equals what GNU tar extracts`, async (t) => {
      const src = sourceTree(t);
      const archive = join(tempDir(t), 'layer.tar');
      const xattrs = format === 'pax' ? ['--xattrs', '--xattrs-include=*'] : [];
      execFileSync('tar', [`--format=${format}`, ...xattrs, '--numeric-owner', '-C', src, '-cf', archive, '.']);
      const ours = tempDir(t);
      const blob = readFileSync(archive);
      const stats = await applyBuffer(blob, bind(ours), { expectedDiffID: sha256(blob) });
      assert.deepEqual(describeTree(ours), describeTree(gnuTarExtract(t, archive)));
      if (format === 'pax') assert.deepEqual(describeTree(ours), describeTree(src), 'PAX with xattrs round-trips the whole tree');
      assert.equal(stats.hardlinks, 2);
      if (format === 'pax') assert.deepEqual(native().lgetxattr(join(ours, 'usr/bin/ping-hardlink'), 'security.capability'), CAPABILITY);
      assert.equal(stats.skipped, 0);
    });
  }

  // 40 data regions need extension blocks in the old GNU format (4 fit in the header);
  // the file ends in a hole, which only the file's size records.
  for (const sparse of [['--format=gnu'], ['--format=posix', '--sparse-version=0.0'], ['--format=posix', '--sparse-version=0.1'], ['--format=posix', '--sparse-version=1.0']]) {
    test(`--sparse ${sparse.join(' ')}: the same bytes as GNU tar extracts, and the holes stay holes`, async (t) => {
      const src = tempDir(t, 'layerpool-src-');
      const fd = openSync(join(src, 'disk.img'), 'w', 0o640);
      for (let i = 0; i < 40; i++) writeSync(fd, `region ${i} `.repeat(100 + i), i * (256 << 10) + 4096 * (i % 3));
      ftruncateSync(fd, 12 << 20);
      closeSync(fd);
      writeFileSync(join(src, 'plain'), 'after the sparse file');
      // Whole seconds: Node sets times through doubles, GNU tar with nanoseconds.
      for (const name of ['disk.img', 'plain', '.']) lutimesSync(join(src, name), MTIME, MTIME);
      const archive = join(tempDir(t), 'layer.tar');
      execFileSync('tar', ['--sparse', ...sparse, '--numeric-owner', '-C', src, '-cf', archive, '.']);
      const ours = tempDir(t);
      const blob = readFileSync(archive);
      const stats = await applyBuffer(blob, bind(ours), { expectedDiffID: sha256(blob) });
      assert.deepEqual(describeTree(ours), describeTree(gnuTarExtract(t, archive)));
      assert.deepEqual(readFileSync(join(ours, 'disk.img')), readFileSync(join(src, 'disk.img')));
      assert.equal(statSync(join(ours, 'disk.img')).size, 12 << 20);
      assert.ok(statSync(join(ours, 'disk.img')).blocks * 512 < 1 << 20, 'the 12 MiB file takes less than 1 MiB of disk');
      assert.equal(stats.files, 2);
    });
  }

  test('tar -cz output (gzip) applies with the diffID of the uncompressed tar', async (t) => {
    const src = sourceTree(t, { devices: false });
    const tgz = execFileSync('tar', ['--format=pax', '-C', src, '-cz', '.']);
    const ours = tempDir(t);
    const stats = await applyBuffer(tgz, bind(ours), { mediaType: MediaType.DockerLayerGzip });
    const plain = execFileSync('gzip', ['-dc'], { input: tgz });
    assert.equal(stats.diffID, sha256(plain));
    assert.equal(readFileSync(join(ours, 'usr/bin/su'), 'utf8'), 'su binary');
  });
});

describe("Python's tarfile", () => {
  const script = `
import sys, tarfile
fmt = tarfile.GNU_FORMAT if sys.argv[3] == 'gnu' else tarfile.PAX_FORMAT
with tarfile.open(sys.argv[1], 'w', format=fmt) as tar:
    tar.add(sys.argv[2], arcname='.')
`;
  for (const format of ['gnu', 'pax'] as const) {
    test(`${format.toUpperCase()}_FORMAT: what we apply equals what GNU tar extracts from it`, async (t) => {
      const src = sourceTree(t);
      const archive = join(tempDir(t), 'layer.tar');
      execFileSync('python3', ['-c', script, archive, src, format]);
      const ours = tempDir(t);
      await applyBuffer(gzip(readFileSync(archive)), bind(ours), { mediaType: MediaType.OCILayerGzip });
      const reference = describeTree(gnuTarExtract(t, archive));
      assert.deepEqual(describeTree(ours), reference);
      assert.equal(reference['data/big-owner']?.uid, 3_000_000, 'the big uid made it through the format');
    });
  }
});

describe("tar-stream's pack (the Node ecosystem's writer)", () => {
  test('what we apply equals what GNU tar extracts from it', async (t) => {
    const pack = tarStream.pack();
    const collected = (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of pack) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    })();
    const mtime = new Date(MTIME * 1000);
    pack.entry({ name: 'bin', type: 'directory', mode: 0o755, mtime });
    pack.entry({ name: 'bin/tool', mode: 0o4755, uid: 1000, gid: 1000, mtime }, 'tool');
    pack.entry({ name: 'bin/tool-link', type: 'link', linkname: 'bin/tool', mtime });
    pack.entry({ name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox', mtime });
    const [outer, inner] = LONG_DIR.split('/') as [string, string];
    pack.entry({ name: outer, type: 'directory', mode: 0o750, mtime });
    pack.entry({ name: `${outer}/${inner}`, type: 'directory', mode: 0o750, mtime });
    pack.entry({ name: `${LONG_DIR}/${'x'.repeat(150)}`, mode: 0o600, mtime }, 'long');
    pack.finalize();
    const archive = join(tempDir(t), 'layer.tar');
    writeFileSync(archive, await collected);
    const ours = tempDir(t);
    await applyBuffer(readFileSync(archive), bind(ours));
    const tree = describeTree(ours);
    assert.deepEqual(tree, describeTree(gnuTarExtract(t, archive)));
    assert.equal(tree['bin/tool']?.mode, 0o4755);
    assert.equal(tree['bin/tool-link']?.inode, 'bin/tool');
  });
});

describe('umoci (Go archive/tar in a real OCI layout)', () => {
  test('umoci repack: applying the layer reproduces bundle/rootfs, and the diffID matches the config', async (t) => {
    const work = tempDir(t, 'layerpool-umoci-');
    const layout = join(work, 'image');
    const bundle = join(work, 'bundle');
    const umoci = (...args: string[]): void => void execFileSync('umoci', args, { cwd: work });
    umoci('init', '--layout', layout);
    umoci('new', '--image', `${layout}:t`);
    umoci('unpack', '--image', `${layout}:t`, bundle);
    const rootfs = join(bundle, 'rootfs');
    const src = sourceTree(t);
    execFileSync('cp', ['-a', `${src}/.`, rootfs]);
    lutimesSync(rootfs, MTIME, MTIME);
    umoci('repack', '--image', `${layout}:t`, bundle);

    const blob = (digest: string): Buffer => readFileSync(join(layout, 'blobs', ...digest.split(':')));
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(blob(index.manifests[0]?.digest as string).toString()) as {
      config: { digest: string };
      layers: { digest: string; mediaType: string }[];
    };
    const config = JSON.parse(blob(manifest.config.digest).toString()) as { rootfs: { diff_ids: string[] } };
    const layer = manifest.layers.at(-1);
    assert.ok(layer);
    const ours = tempDir(t);
    const stats = await applyBuffer(blob(layer.digest), bind(ours), { mediaType: layer.mediaType, expectedDiffID: config.rootfs.diff_ids.at(-1) });
    assert.equal(stats.compression, 'gzip');
    assert.deepEqual(describeTree(ours), describeTree(rootfs));
  });
});
