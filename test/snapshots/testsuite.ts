/**
 * The conformance suite every Snapshotter runs (like containerd's snapshots/testsuite):
 * lifecycles, metadata, real mounts (as root), deletions and opaque directories, read-only
 * views, namespaces, cleanup and crash leftovers.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, linkSync, symlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { Root } from '../../src/root.js';
import { snapshotFolderRemover } from '../../src/snapshots/index.js';
import type { SnapshotInfo, Snapshotter } from '../../src/snapshots/snapshotter.js';
import {
  assertNoLeakedMounts,
  commitLayer,
  layerOf,
  setupSnapshots,
  snapshotId,
  writeFiles,
  type LayerWhiteouts,
  type SnapshotEnv,
} from './helpers.js';

export interface SnapshotterFixture extends LayerWhiteouts {
  /** Open the snapshotter under test on `root` for `namespace` (as a user would: with its startup cleanup). */
  open(root: Root, namespace: string): Promise<Snapshotter>;
}

const code = (expected: string) => (err: unknown) => {
  assert.equal((err as { code?: unknown }).code, expected, String(err));
  return true;
};
const notFound = code(ErrorCode.NotFound);
const alreadyExists = code(ErrorCode.AlreadyExists);
const precondition = code(ErrorCode.FailedPrecondition);

async function collect(sn: Snapshotter, ...filters: string[]): Promise<SnapshotInfo[]> {
  const seen: SnapshotInfo[] = [];
  await sn.walk((info) => {
    seen.push(info);
  }, ...filters);
  return seen;
}

/** Folders of the snapshotter other than snapshots' own `<id>` (leftovers, staging). */
function strayFolders(env: SnapshotEnv): string[] {
  return readdirSync(env.dir).filter((name) => !/^[0-9]+$/.test(name));
}

export function runSnapshotterTestsuite(name: string, fixture: SnapshotterFixture): void {
  async function setup(t: TestContext): Promise<SnapshotEnv & { sn: Snapshotter }> {
    const env = await setupSnapshots(t, name);
    return { ...env, sn: await fixture.open(env.root, 'default') };
  }

  describe(`Snapshotter testsuite: ${name}`, () => {
    after(assertNoLeakedMounts);

    describe('lifecycle and metadata', () => {
      test('prepare makes an active snapshot whose stat has its key, kind and labels', async (t) => {
        const { sn } = await setup(t);
        const mounts = await sn.prepare('a', undefined, { labels: { x: '1' } });
        assert.equal(mounts.length, 1);
        const info = await sn.stat('a');
        assert.equal(info.name, 'a');
        assert.equal(info.kind, 'active');
        assert.equal(info.parent, undefined);
        assert.deepEqual(info.labels, { x: '1' });
        assert.ok(info.createdAt instanceof Date && info.updatedAt instanceof Date);
        assert.deepEqual(await sn.mounts('a'), mounts);
      });

      test('commit makes a committed snapshot under the new name and the active key disappears', async (t) => {
        const { sn } = await setup(t);
        await sn.prepare('a', undefined, { labels: { x: '1' } });
        await sn.commit('base', 'a', { labels: { 'containerd.io/snapshot.ref': 'base' } });
        const info = await sn.stat('base');
        assert.equal(info.kind, 'committed');
        assert.deepEqual(info.labels, { 'containerd.io/snapshot.ref': 'base' });
        await assert.rejects(sn.stat('a'), notFound);
      });

      test('commit without labels keeps the labels of the active snapshot', async (t) => {
        const { sn } = await setup(t);
        await sn.prepare('a', undefined, { labels: { x: '1' } });
        await sn.commit('base', 'a');
        assert.deepEqual((await sn.stat('base')).labels, { x: '1' });
      });

      test('a snapshot prepared or viewed on a committed parent records that parent', async (t) => {
        const { sn } = await setup(t);
        await commitLayer(sn, 'base', undefined, {});
        await sn.prepare('child', 'base');
        await sn.view('view', 'base');
        assert.equal((await sn.stat('child')).parent, 'base');
        const view = await sn.stat('view');
        assert.equal(view.parent, 'base');
        assert.equal(view.kind, 'view');
      });

      test('a parent that is active or a view fails with FailedPrecondition, a missing one with NotFound', async (t) => {
        const env = await setup(t);
        const { sn } = env;
        await sn.prepare('active', undefined);
        await sn.view('view', undefined);
        await assert.rejects(sn.prepare('c1', 'active'), precondition);
        await assert.rejects(sn.view('c2', 'view'), precondition);
        await assert.rejects(sn.prepare('c3', 'missing'), notFound);
        assert.deepEqual((await collect(sn)).map((i) => i.name), ['active', 'view']);
        assert.deepEqual(strayFolders(env), []);
      });

      test('a key that exists fails with AlreadyExists for prepare, view and commit', async (t) => {
        const { sn } = await setup(t);
        await commitLayer(sn, 'base', undefined, {});
        await sn.prepare('a', undefined);
        await assert.rejects(sn.prepare('a', undefined), alreadyExists);
        await assert.rejects(sn.view('a', 'base'), alreadyExists);
        await assert.rejects(sn.prepare('base', undefined), alreadyExists);
        await assert.rejects(sn.commit('base', 'a'), alreadyExists);
        assert.equal((await sn.stat('a')).kind, 'active');
      });

      test('concurrent prepares of one key: one succeeds, the others fail with AlreadyExists and leave nothing', async (t) => {
        const env = await setup(t);
        const results = await Promise.allSettled([0, 1, 2].map(() => env.sn.prepare('same', undefined)));
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        for (const r of results) if (r.status === 'rejected') alreadyExists(r.reason);
        assert.deepEqual(strayFolders(env), []);
        assert.equal(readdirSync(env.dir).length, 1);
      });

      test('only an active snapshot can be committed: a view or a committed one fails with FailedPrecondition', async (t) => {
        const { sn } = await setup(t);
        await commitLayer(sn, 'base', undefined, {});
        await sn.view('view', 'base');
        await assert.rejects(sn.commit('name', 'view'), precondition);
        await assert.rejects(sn.commit('name', 'base'), precondition);
        await assert.rejects(sn.commit('name', 'missing'), notFound);
      });

      test('a committed snapshot has no mounts: FailedPrecondition', async (t) => {
        const { sn } = await setup(t);
        await commitLayer(sn, 'base', undefined, {});
        await assert.rejects(sn.mounts('base'), precondition);
        await assert.rejects(sn.mounts('missing'), notFound);
      });

      test('update sets and deletes labels by field path; without field paths it replaces them all', async (t) => {
        const { sn } = await setup(t);
        await sn.prepare('a', undefined, { labels: { keep: '1', change: '1', drop: '1' } });
        const updated = await sn.update({ name: 'a', labels: { change: '2', add: '3' } }, ['labels.change', 'labels.add', 'labels.drop']);
        assert.deepEqual(updated.labels, { keep: '1', change: '2', add: '3' });
        assert.deepEqual((await sn.stat('a')).labels, updated.labels);
        const replaced = await sn.update({ name: 'a', labels: { only: 'x' } });
        assert.deepEqual(replaced.labels, { only: 'x' });
        await assert.rejects(sn.update({ name: 'a', labels: {} }, ['parent']), code(ErrorCode.InvalidArgument));
        await assert.rejects(sn.update({ name: 'missing', labels: {} }), notFound);
      });

      test('walk visits the snapshots matching any of the filters, all without filters', async (t) => {
        const { sn } = await setup(t);
        await commitLayer(sn, 'base', undefined, {});
        await sn.prepare('a', 'base', { labels: { role: 'worker' } });
        await sn.view('v', 'base', { labels: { role: 'reader' } });
        const names = async (...filters: string[]) => (await collect(sn, ...filters)).map((i) => i.name);
        assert.deepEqual(await names(), ['base', 'a', 'v']);
        assert.deepEqual(await names('kind==committed'), ['base']);
        assert.deepEqual(await names('parent==base'), ['a', 'v']);
        assert.deepEqual(await names('labels.role==worker', 'kind==view'), ['a', 'v']);
        assert.deepEqual(await names('labels.role~=^read,kind==view'), ['v']);
        assert.deepEqual(await names('labels.role==nobody'), []);
      });

      test('remove of a snapshot with children fails with FailedPrecondition and keeps it', async (t) => {
        const { sn } = await setup(t);
        await commitLayer(sn, 'base', undefined, { f: 'x' });
        await sn.view('v', 'base');
        await assert.rejects(sn.remove('base'), precondition);
        assert.equal((await sn.stat('base')).kind, 'committed');
        await sn.remove('v');
        await sn.remove('base');
        await assert.rejects(sn.stat('base'), notFound);
      });

      test('remove deletes the row and the folder, and the key can be prepared again', async (t) => {
        const env = await setup(t);
        const { sn } = env;
        await sn.prepare('a', undefined);
        const id = snapshotId(env.root, name, 'a');
        assert.ok(existsSync(join(env.dir, String(id))));
        await sn.remove('a');
        await assert.rejects(sn.stat('a'), notFound);
        assert.deepEqual(readdirSync(env.dir), []);
        await sn.prepare('a', undefined);
        await assert.rejects(sn.remove('missing'), notFound);
      });

      test('ids are not reused after a remove', async (t) => {
        const env = await setup(t);
        await env.sn.prepare('a', undefined);
        const first = snapshotId(env.root, name, 'a');
        await env.sn.remove('a');
        await env.sn.prepare('b', undefined);
        assert.ok(snapshotId(env.root, name, 'b') > first);
      });

      test('usage counts bytes of regular files once per inode, and every inode', async (t) => {
        const { sn } = await setup(t);
        const layer = layerOf(await sn.prepare('a', undefined));
        writeFiles(layer, { a: 'x'.repeat(100), 'd/b': 'y'.repeat(50) });
        linkSync(join(layer, 'a'), join(layer, 'd/hardlink'));
        symlinkSync('a', join(layer, 'symlink'));
        // Inodes: the root, a (= d/hardlink), d, d/b, symlink.
        assert.deepEqual(await sn.usage('a'), { size: 150, inodes: 5 });
        await sn.commit('base', 'a');
        assert.deepEqual(await sn.usage('base'), { size: 150, inodes: 5 });
        await assert.rejects(sn.usage('missing'), notFound);
      });
    });

    describe('mounted contents', () => {
      test('files written through the mount of a prepared snapshot appear in the mount of its child', async (t) => {
        const env = await setup(t);
        const { sn } = env;
        const first = await env.mount(await sn.prepare('a', undefined));
        writeFiles(first, { 'etc/hello': 'hello\n', 'bin/tool': '#!/bin/sh\n' });
        await env.unmount(first);
        await sn.commit('base', 'a');

        const child = await env.mount(await sn.prepare('child', 'base'));
        assert.equal(readFileSync(join(child, 'etc/hello'), 'utf8'), 'hello\n');
        assert.deepEqual(readdirSync(child).sort(), ['bin', 'etc']);
        writeFileSync(join(child, 'etc/hello'), 'changed\n');
        writeFileSync(join(child, 'new'), 'new\n');
        await env.unmount(child);

        // The child's writes are its own: the parent is unchanged.
        const parent = await env.mount(await sn.view('v', 'base'));
        assert.equal(readFileSync(join(parent, 'etc/hello'), 'utf8'), 'hello\n');
        assert.equal(existsSync(join(parent, 'new')), false);
      });

      test('a deletion recorded in a child hides the file in the child but not in its parent', async (t) => {
        const env = await setup(t);
        const { sn } = env;
        await commitLayer(sn, 'base', undefined, { keep: 'k', gone: 'g', 'dir/gone': 'g' });
        const layer = layerOf(await sn.prepare('extract-child', 'base'));
        fixture.whiteout(layer, 'gone');
        fixture.whiteout(layer, 'dir/gone');
        await sn.commit('child', 'extract-child');

        const child = await env.mount(await sn.view('v-child', 'child'));
        assert.deepEqual(readdirSync(child).sort(), ['dir', 'keep']);
        assert.deepEqual(readdirSync(join(child, 'dir')), []);
        const parent = await env.mount(await sn.view('v-base', 'base'));
        assert.deepEqual(readdirSync(parent).sort(), ['dir', 'gone', 'keep']);
      });

      test('an opaque directory in a child hides what its parent has in that directory', async (t) => {
        const env = await setup(t);
        const { sn } = env;
        await commitLayer(sn, 'base', undefined, { 'd/old': 'o', 'd/sub/deep': 'x', other: 'y' });
        const layer = layerOf(await sn.prepare('extract-child', 'base'));
        fixture.opaque(layer, 'd');
        writeFiles(layer, { 'd/new': 'n' });
        await sn.commit('child', 'extract-child');

        const child = await env.mount(await sn.prepare('work', 'child'));
        assert.deepEqual(readdirSync(join(child, 'd')), ['new']);
        assert.equal(readFileSync(join(child, 'other'), 'utf8'), 'y');
        const parent = await env.mount(await sn.view('v-base', 'base'));
        assert.deepEqual(readdirSync(join(parent, 'd')).sort(), ['old', 'sub']);
      });

      test('a mounted view is read-only: writes fail with EROFS, whatever its number of parents', async (t) => {
        const env = await setup(t);
        const { sn } = env;
        await commitLayer(sn, 'one', undefined, { a: '1' });
        await commitLayer(sn, 'two', 'one', { b: '2' });
        for (const [key, parent] of [['v0', undefined], ['v1', 'one'], ['v2', 'two']] as const) {
          const target = await env.mount(await sn.view(key, parent));
          await assert.rejects(writeFile(join(target, 'x'), 'x'), { code: 'EROFS' }, `view ${key}`);
        }
        const two = await env.mount(await sn.mounts('v2'));
        assert.deepEqual(readdirSync(two).sort(), ['a', 'b']);
      });

      test('the same key in two namespaces is two snapshots with their own folders', async (t) => {
        const env = await setup(t);
        const other = await fixture.open(env.root, 'other');
        const mine = layerOf(await env.sn.prepare('k', undefined, { labels: { ns: 'default' } }));
        const theirs = layerOf(await other.prepare('k', undefined, { labels: { ns: 'other' } }));
        assert.notEqual(mine, theirs);
        assert.notEqual(snapshotId(env.root, name, 'k'), snapshotId(env.root, name, 'k', 'other'));
        writeFiles(mine, { f: 'default' });
        assert.equal(existsSync(join(theirs, 'f')), false);
        await env.sn.commit('c', 'k');
        await assert.rejects(other.stat('c'), notFound);
        await env.sn.remove('c');
        assert.deepEqual((await other.stat('k')).labels, { ns: 'other' });
        assert.ok(existsSync(theirs));
      });

      test(`commit onto another parent than the prepared one follows capabilities.rebase`, async (t) => {
        const env = await setup(t);
        const { sn } = env;
        await commitLayer(sn, 'one', undefined, { one: '1' });
        writeFiles(layerOf(await sn.prepare('extract-two', undefined)), { two: '2' });
        if (sn.capabilities.rebase) {
          await sn.commit('two', 'extract-two', { parent: 'one' });
          assert.equal((await sn.stat('two')).parent, 'one');
          const merged = await env.mount(await sn.view('v', 'two'));
          assert.deepEqual(readdirSync(merged).sort(), ['one', 'two']);
        } else {
          await assert.rejects(sn.commit('two', 'extract-two', { parent: 'one' }), precondition);
          assert.equal((await sn.stat('extract-two')).kind, 'active');
        }
        // Naming the parent it was prepared on is no rebase.
        await sn.prepare('extract-three', 'one');
        await sn.commit('three', 'extract-three', { parent: 'one' });
        assert.equal((await sn.stat('three')).parent, 'one');
        await sn.prepare('extract-four', undefined);
        await assert.rejects(sn.commit('four', 'extract-four', { parent: 'missing' }), notFound);
      });
    });

    describe('cleanup and crashes', () => {
      test('cleanup removes orphan folders and leftovers of removals and prepares, and nothing else', async (t) => {
        const env = await setup(t);
        const { sn } = env;
        await commitLayer(sn, 'base', undefined, { f: 'x' });
        await sn.prepare('active', 'base');
        const kept = readdirSync(env.dir).sort();
        writeFiles(env.dir, { '999999/fs/orphan': 'o', '77-removing/fs/f': 'r', 'new-0123/fs/f': 'n', 'notes.txt': 'mine' });
        mkdirSync(join(env.dir, 'lost+found'));
        await sn.cleanup();
        assert.deepEqual(readdirSync(env.dir).sort(), [...kept, 'lost+found', 'notes.txt'].sort());
        const view = await env.mount(await sn.view('v', 'base'));
        assert.equal(readFileSync(join(view, 'f'), 'utf8'), 'x');
        assert.equal((await sn.stat('active')).kind, 'active');
      });

      test('a folder with no row, as a crash between folder and row leaves it, is removed by cleanup', async (t) => {
        const env = await setup(t);
        await env.sn.prepare('a', undefined);
        const next = snapshotId(env.root, name, 'a') + 1;
        writeFiles(env.dir, { [`${next}/fs/half-written`]: 'x' });
        await env.sn.cleanup();
        assert.deepEqual(readdirSync(env.dir), [String(next - 1)]);
      });

      test('a prepare whose new id names a crash leftover gets a fresh, empty folder', async (t) => {
        const env = await setup(t);
        await env.sn.prepare('a', undefined);
        // A rolled-back transaction gives its id out again, and its folder may be there.
        const next = snapshotId(env.root, name, 'a') + 1;
        writeFiles(env.dir, { [`${next}/fs/stale`]: 'x' });
        const layer = layerOf(await env.sn.prepare('b', undefined));
        assert.equal(snapshotId(env.root, name, 'b'), next);
        assert.deepEqual(readdirSync(layer), []);
        assert.deepEqual(strayFolders(env), []);
      });

      test('the folders of rows GC deleted are removed through snapshotFolderRemover, and only those', async (t) => {
        const env = await setup(t);
        await commitLayer(env.sn, 'doomed', undefined, { f: 'x' });
        await commitLayer(env.sn, 'kept', undefined, { f: 'y' });
        const doomed = snapshotId(env.root, name, 'doomed');
        env.root.db.sqlite.prepare('DELETE FROM snapshots WHERE id = ?').run(doomed);
        await snapshotFolderRemover(env.root).removeSnapshotFolders(name, [doomed]);
        assert.deepEqual(readdirSync(env.dir), [String(snapshotId(env.root, name, 'kept'))]);
      });

      test('opening a reopened root removes what a crash left, before the first operation', async (t) => {
        const env = await setup(t);
        await commitLayer(env.sn, 'base', undefined, { f: 'x' });
        const kept = readdirSync(env.dir);
        writeFiles(env.dir, { '424242/fs/orphan': 'o', '5-removing/f': 'r', 'new-crashed/fs/f': 'n' });
        const path = env.root.path;
        env.root.close();
        const reopened = await Root.open({ path });
        t.after(() => reopened.close());
        const sn = await fixture.open(reopened, 'other');
        assert.deepEqual(readdirSync(env.dir), kept);
        assert.deepEqual(await collect(sn), []);
        assert.equal((await (await fixture.open(reopened, 'default')).stat('base')).kind, 'committed');
      });
    });
  });
}
