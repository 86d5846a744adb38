import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { Root } from '../../src/root.js';
import { formatMountCommand, MAX_MOUNT_DATA } from '../../src/snapshots/mount.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay.js';
import { assertTreesEqual, readTree } from '../helpers/tree.js';
import { assertNoLeakedMounts, commitLayer, layerOf, overlayWhiteouts, setupSnapshots, snapshotId, writeFiles } from './helpers.js';
import { runSnapshotterTestsuite } from './testsuite.js';

const { whiteout, opaque } = overlayWhiteouts();

runSnapshotterTestsuite('overlay', {
  open: (root, namespace) => OverlaySnapshotter.open({ root, namespace }),
  whiteout,
  opaque,
});

describe('OverlaySnapshotter', () => {
  after(assertNoLeakedMounts);

  async function setup(t: TestContext, userxattr = false) {
    const env = await setupSnapshots(t, 'overlay');
    const sn = await OverlaySnapshotter.open({ root: env.root, namespace: 'default', userxattr });
    const folder = (key: string) => join(env.dir, String(snapshotId(env.root, 'overlay', key)));
    const fs = (key: string) => join(folder(key), 'fs');
    return { ...env, sn, folder, fs };
  }

  test('an active snapshot is a bind of its layer without parents, an overlay of its parents nearest first with them', async (t) => {
    const { sn, fs, folder } = await setup(t);
    const alone = await sn.prepare('a', undefined);
    assert.deepEqual(alone, [{ type: 'bind', source: fs('a'), options: ['rbind', 'rw'] }]);
    await sn.commit('one', 'a');
    await commitLayer(sn, 'two', 'one', {});
    const mounts = await sn.prepare('b', 'two');
    assert.deepEqual(mounts, [
      {
        type: 'overlay',
        source: 'overlay',
        options: ['index=off', `workdir=${join(folder('b'), 'work')}`, `upperdir=${fs('b')}`, `lowerdir=${fs('two')}:${fs('one')}`],
      },
    ]);
  });

  test('a view is a read-only bind of its one layer, or an overlay of lowerdirs only with more', async (t) => {
    const { sn, fs } = await setup(t);
    await commitLayer(sn, 'one', undefined, {});
    await commitLayer(sn, 'two', 'one', {});
    assert.deepEqual(await sn.view('v0', undefined), [{ type: 'bind', source: fs('v0'), options: ['rbind', 'ro'] }]);
    assert.deepEqual(await sn.view('v1', 'one'), [{ type: 'bind', source: fs('one'), options: ['rbind', 'ro'] }]);
    assert.deepEqual(await sn.view('v2', 'two'), [
      { type: 'overlay', source: 'overlay', options: ['ro', 'index=off', `lowerdir=${fs('two')}:${fs('one')}`] },
    ]);
  });

  test('a child layer takes the owner and mode of its parent layer root, which the merged root shows', async (t) => {
    const env = await setup(t);
    const { sn, fs } = env;
    const base = layerOf(await sn.prepare('a', undefined));
    chownSync(base, 1234, 5678);
    chmodSync(base, 0o750);
    await sn.commit('one', 'a');
    const child = await env.mount(await sn.prepare('b', 'one'));
    for (const path of [fs('b'), child]) {
      const st = statSync(path);
      assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1234, 5678, 0o750], path);
    }
  });

  test('layers prepared without parents and written at once chain at commit (rebase)', async (t) => {
    const env = await setup(t);
    const { sn } = env;
    // Every layer is applied into its own parentless snapshot, as the unpacker does in parallel.
    const layers = await Promise.all([0, 1, 2].map(async (i) => layerOf(await sn.prepare(`extract-${i}`, undefined))));
    writeFiles(layers[0] as string, { 'etc/os-release': 'v1', 'etc/motd': 'hi', 'bin/sh': 'sh' });
    writeFiles(layers[1] as string, { 'etc/os-release': 'v2' });
    whiteout(layers[1] as string, 'etc/motd');
    opaque(layers[2] as string, 'bin');
    writeFiles(layers[2] as string, { 'bin/bash': 'bash' });
    let parent: string | undefined;
    for (const i of [0, 1, 2]) {
      await sn.commit(`chain-${i}`, `extract-${i}`, parent === undefined ? {} : { parent });
      parent = `chain-${i}`;
    }
    assert.equal((await sn.stat('chain-2')).parent, 'chain-1');
    const merged = await env.mount(await sn.view('rootfs', 'chain-2'));
    const expected = mkdtempSync(join(tmpdir(), 'layerpool-expected-'));
    t.after(() => rmSync(expected, { recursive: true, force: true }));
    writeFiles(expected, { 'etc/os-release': 'v2', 'bin/bash': 'bash' });
    assertTreesEqual(readTree(merged), readTree(expected), { ignore: (path) => path === '.' || !/^(etc|bin)\/./.test(path), mtime: 'ignore' });
    assert.deepEqual(readdirSync(merged).sort(), ['bin', 'etc']);
  });

  test('a chain of 120 layers mounts although its lowerdirs are longer than a page, and shows every layer', async (t) => {
    const env = await setup(t);
    const { sn } = env;
    const depth = 120;
    let parent: string | undefined;
    for (let i = 0; i < depth; i++) {
      await commitLayer(sn, `layer-${i}`, parent, { [`file-${i}`]: String(i), shared: `from ${i}` });
      parent = `layer-${i}`;
    }
    const mounts = await sn.prepare('top', parent);
    const [overlay] = mounts;
    assert.ok(overlay !== undefined && Buffer.byteLength(overlay.options.join(',')) > MAX_MOUNT_DATA + 1);
    assert.match(formatMountCommand(mounts, '/mnt/rootfs'), new RegExp(`^\\(cd ${env.dir} && mount -t overlay overlay -o index=off,workdir=`));

    const top = await env.mount(mounts);
    assert.equal(readdirSync(top).length, depth + 1);
    assert.equal(readFileSync(join(top, 'shared'), 'utf8'), `from ${depth - 1}`);
    assert.equal(readFileSync(join(top, 'file-0'), 'utf8'), '0');
    writeFiles(top, { written: 'through the overlay' });
    assert.equal(readFileSync(join(layerOf(mounts), 'written'), 'utf8'), 'through the overlay');

    const view = await env.mount(await sn.view('view', parent));
    assert.equal(readdirSync(view).length, depth + 1);
  });

  test('userxattr mode mounts with the userxattr option and honours user.overlay.opaque', async (t) => {
    const env = await setup(t, true);
    const { sn } = env;
    assert.equal(sn.userxattr, true);
    await commitLayer(sn, 'one', undefined, { 'd/old': 'o' });
    const layer = layerOf(await sn.prepare('extract-two', 'one'));
    overlayWhiteouts('user.overlay.opaque').opaque(layer, 'd');
    writeFiles(layer, { 'd/new': 'n' });
    await sn.commit('two', 'extract-two');
    const mounts = await sn.prepare('top', 'two');
    assert.ok(mounts[0]?.options.includes('userxattr'));
    assert.ok((await sn.view('v', 'two'))[0]?.options.includes('userxattr'));
    const top = await env.mount(mounts);
    assert.deepEqual(readdirSync(join(top, 'd')), ['new']);
  });

  test('without userxattr, user.overlay.opaque is plain data and hides nothing', async (t) => {
    const env = await setup(t);
    const { sn } = env;
    await commitLayer(sn, 'one', undefined, { 'd/old': 'o' });
    const layer = layerOf(await sn.prepare('extract-two', 'one'));
    overlayWhiteouts('user.overlay.opaque').opaque(layer, 'd');
    await sn.commit('two', 'extract-two');
    const mounts = await sn.prepare('top', 'two');
    assert.equal(mounts[0]?.options.includes('userxattr'), false);
    assert.deepEqual(readdirSync(join(await env.mount(mounts), 'd')), ['old']);
  });

  test('a root whose snapshots folder has a comma or a colon is refused with InvalidArgument', async (t) => {
    const base = mkdtempSync(join(tmpdir(), 'layerpool-odd-'));
    t.after(() => rmSync(base, { recursive: true, force: true }));
    const root = await Root.open({ path: join(base, 'a,b:c'), namespaces: ['default'] });
    t.after(() => root.close());
    await assert.rejects(OverlaySnapshotter.open({ root, namespace: 'default' }), { code: ErrorCode.InvalidArgument, message: /must not contain/ });
  });

  test('a namespace that does not exist is refused with InvalidArgument', async (t) => {
    const env = await setupSnapshots(t, 'overlay');
    await assert.rejects(OverlaySnapshotter.open({ root: env.root, namespace: 'nope' }), { code: ErrorCode.InvalidArgument });
  });
});
