import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { diffTrees, readTree, type ExpectedTree } from '../../bench/fixtures/index.js';
import type { SnapshotSummary } from '../../src/server/types.js';
import { tempDir } from '../helpers/tmp.js';
import { buildCli, pulledRoot, runCli, runJSON, runOk, type PublishedImage } from './helpers.js';

before(() => buildCli());

function expectedTree(published: PublishedImage): ExpectedTree {
  return JSON.parse(readFileSync(published.image.manifests[0]!.expectedTreePath, 'utf8')) as ExpectedTree;
}

/** The tree at `dir` is the image's merged filesystem: same entries, and every non-directory keeps the layer mtime. */
async function assertMergedTree(dir: string, published: PublishedImage): Promise<void> {
  const expected = expectedTree(published);
  assert.deepEqual(diffTrees(expected.entries, await readTree(dir)), []);
  for (const [path, entry] of Object.entries(expected.entries)) {
    if (entry.type === 'dir') continue;
    assert.equal(lstatSync(join(dir, path)).mtimeMs, expected.mtime * 1000, `${path} keeps its mtime`);
  }
}

describe('layerpool export', () => {
  test('to a directory: exactly the merged tree of the overlay layers, no whiteouts, owners and times kept', async (t) => {
    const { root, published } = await pulledRoot(t);
    const out = join(tempDir(t), 'rootfs');
    const result = await runJSON<{ output: string; snapshotter: string }>(t, ['--root', root, 'export', published.ref, out]);
    assert.equal(result.output, out);
    assert.equal(result.snapshotter, 'overlay');
    await assertMergedTree(out, published);
    const views = await runJSON<SnapshotSummary[]>(t, ['--root', root, 'snapshots', 'ls', '--filter', 'kind==view']);
    assert.deepEqual(views, [], 'the export view is removed');
  });

  test('with the native snapshotter: the same tree', async (t) => {
    const { root, published } = await pulledRoot(t, ['--snapshotter', 'native']);
    const out = join(tempDir(t), 'rootfs');
    await runOk(t, ['--root', root, 'export', '--snapshotter', 'native', published.ref, out]);
    await assertMergedTree(out, published);
  });

  test('to a .tar file: GNU tar extracts the same tree', async (t) => {
    const { root, published } = await pulledRoot(t);
    const work = tempDir(t);
    const file = join(work, 'rootfs.tar');
    await runOk(t, ['--root', root, 'export', published.ref, file]);
    const extracted = join(work, 'extracted');
    mkdirSync(extracted);
    execFileSync('tar', ['--extract', '--file', file, '--directory', extracted, '--same-permissions', '--same-owner', '--numeric-owner', '--xattrs', '--xattrs-include=*']);
    await assertMergedTree(extracted, published);
  });

  test('into a directory that is not empty fails with exit 8 and leaves it alone', async (t) => {
    const { root, published } = await pulledRoot(t);
    const out = tempDir(t);
    writeFileSync(join(out, 'keep-me'), 'x');
    const result = await runCli(t, ['--root', root, 'export', published.ref, out]);
    assert.equal(result.code, 8);
    assert.match(result.stderr, /is not empty/);
    assert.deepEqual(await readTree(out), { 'keep-me': (await readTree(out))['keep-me'] });
  });

  test('of an image pulled with --no-unpack fails with exit 8: nothing to export yet', async (t) => {
    const { root, published } = await pulledRoot(t, ['--no-unpack']);
    const result = await runCli(t, ['--root', root, 'export', published.ref, join(tempDir(t), 'out')]);
    assert.equal(result.code, 8);
    assert.match(result.stderr, /is not unpacked/);
  });
});

describe('layerpool mount and unmount', () => {
  test('mount shows the merged tree read-only; unmount removes the mount and its view', async (t) => {
    const { root, published } = await pulledRoot(t);
    const target = join(tempDir(t), 'mnt');
    await runOk(t, ['--root', root, 'mount', published.ref, target]);
    try {
      await assertMergedTree(target, published);
      assert.throws(() => writeFileSync(join(target, 'new-file'), 'x'), { code: 'EROFS' });
      const views = await runJSON<SnapshotSummary[]>(t, ['--root', root, 'snapshots', 'ls', '--filter', 'kind==view']);
      assert.equal(views.length, 1);
      assert.match(views[0]!.key, /^mount-[0-9a-f]{16}$/);
      assert.ok(views[0]!.labels['containerd.io/gc.root'], 'GC keeps a mounted view');
    } finally {
      await runOk(t, ['--root', root, 'unmount', target]);
    }
    assert.deepEqual(await readTree(target), {}, 'nothing mounted any more');
    assert.deepEqual(await runJSON(t, ['--root', root, 'snapshots', 'ls', '--filter', 'kind==view']), []);
    const again = await runCli(t, ['--root', root, 'unmount', target]);
    assert.equal(again.code, 3, 'unmounting twice: nothing mounted there');
  });
});
