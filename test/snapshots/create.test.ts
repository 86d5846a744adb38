import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { createSnapshotter, NativeSnapshotter, OverlaySnapshotter, type SnapshotterName } from '../../src/snapshots/index.js';
import { openTestRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';

describe('createSnapshotter', () => {
  test('opens the snapshotter of the given name, bound to the namespace', async (t) => {
    const root = await openTestRoot(t);
    const overlay = await createSnapshotter('overlay', { root, namespace: 'default', userxattr: true });
    assert.ok(overlay instanceof OverlaySnapshotter);
    assert.equal(overlay.userxattr, true);
    assert.deepEqual(overlay.capabilities, { rebase: true, whiteouts: 'overlay-userxattr' });
    const native = await createSnapshotter('native', { root, namespace: 'other' });
    assert.ok(native instanceof NativeSnapshotter);
    assert.equal(native.namespace, 'other');
    assert.deepEqual(native.capabilities, { rebase: false, whiteouts: 'delete' });
  });

  test('an unknown name fails with InvalidArgument', async (t) => {
    const root = await openTestRoot(t);
    await assert.rejects(createSnapshotter('zfs' as SnapshotterName, { root, namespace: 'default' }), {
      code: ErrorCode.InvalidArgument,
      message: /unknown snapshotter "zfs": one of overlay, native/,
    });
  });

  test('works from the parts of a root (folder, database, locks) as well as from a Root', async (t) => {
    const root = await openTestRoot(t);
    const dir = tempDir(t);
    const sn = await createSnapshotter('native', { root: { dir, db: root.db }, namespace: 'default' });
    const [mount] = await sn.prepare('a', undefined);
    assert.equal(mount?.source, join(dir, 'native', '1', 'fs'));
  });
});
