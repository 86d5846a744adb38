/**
 * Fixtures for the snapshotter tests: a root in a fresh folder, real mounts that are
 * always unmounted after the test (before its folder is removed), and a check that no
 * mount of this process's tests is left at the end of a suite.
 */
import assert from 'node:assert/strict';
import { constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { isNotFound } from '../../src/errors.js';
import { native } from '../../src/native.js';
import type { Root } from '../../src/root.js';
import { mountAll, unmount } from '../../src/snapshots/mount.js';
import type { Mount, Snapshotter } from '../../src/snapshots/snapshotter.js';
import { openTestRoot } from '../helpers/root.js';

/** Every folder of this process's snapshot tests starts with this: mounts under it are ours. */
const PREFIX = join(tmpdir(), `layerpool-sn-${process.pid}-`);

export interface SnapshotEnv {
  root: Root;
  /** `root/snapshots/<snapshotter>`. */
  dir: string;
  /** Mount `mounts` on a new folder; unmounted after the test whatever happens. */
  mount(mounts: Mount[]): Promise<string>;
  /** Unmount a folder `mount` returned, before the end of the test. */
  unmount(target: string): Promise<void>;
}

/**
 * A root for one test. One after-hook unmounts (newest first) and then removes the
 * folder: removing it with a mount still on it would fail or, worse, delete through it.
 */
export async function setupSnapshots(t: TestContext, snapshotter: string): Promise<SnapshotEnv> {
  const base = mkdtempSync(PREFIX);
  const mounted: string[] = [];
  t.after(async () => {
    for (const target of mounted.reverse()) {
      try {
        await unmount(target);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    rmSync(base, { recursive: true, force: true });
  });
  const root = await openTestRoot(t, join(base, 'root'));
  let next = 0;
  return {
    root,
    dir: join(root.path, 'snapshots', snapshotter),
    async mount(mounts) {
      const target = join(base, `mnt-${next++}`);
      mkdirSync(target);
      mounted.push(target);
      await mountAll(mounts, target);
      return target;
    },
    async unmount(target) {
      await unmount(target);
      mounted.splice(mounted.indexOf(target), 1);
    },
  };
}

/** Mount points of this process's tests still in the mount table (none, after a suite). */
export function leakedMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mountPoint) => mountPoint.startsWith(PREFIX));
}

/** Fail the suite if a test left a mount behind. */
export function assertNoLeakedMounts(): void {
  assert.deepEqual(leakedMounts(), [], 'mounts left behind by the tests');
}

/**
 * A snapshot's own tree, where a layer is applied: the overlay upperdir, or the source
 * of a read-write bind (a parentless overlay snapshot, or a native copy).
 */
export function layerOf(mounts: readonly Mount[]): string {
  assert.equal(mounts.length, 1);
  const [mount] = mounts as [Mount];
  if (mount.type === 'overlay') {
    const upper = mount.options.find((o) => o.startsWith('upperdir='));
    assert.ok(upper, `overlay mount without upperdir: ${mount.options.join(',')}`);
    return upper.slice('upperdir='.length);
  }
  assert.ok(mount.options.includes('rw'), `not a writable mount: ${JSON.stringify(mount)}`);
  return mount.source;
}

/** Write files (path -> content) below `dir`, making their folders. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
}

/** Prepare `key` on `parent`, write `files` into its layer and commit it as `name`. */
export async function commitLayer(
  sn: Snapshotter,
  name: string,
  parent: string | undefined,
  files: Record<string, string>,
): Promise<void> {
  const key = `extract-${name}`;
  writeFiles(layerOf(await sn.prepare(key, parent)), files);
  await sn.commit(name, key);
}

/** The id (folder name) of a snapshot, from the metadata database. */
export function snapshotId(root: Root, snapshotter: string, key: string, namespace = 'default'): number {
  return root.db.namespace(namespace).snapshots.get(snapshotter, key).id;
}

/** How deletions are written into a layer's own tree, per snapshotter (what the applier does). */
export interface LayerWhiteouts {
  /** `.wh.<name>`: `path` is deleted. */
  whiteout(layer: string, path: string): void;
  /** `.wh..wh..opq`: directory `path` hides what lower layers have in it. */
  opaque(layer: string, path: string): void;
}

/** Overlay layers: a char 0/0 device for a deletion, the opaque xattr on a directory. */
export function overlayWhiteouts(opaqueXattr = 'trusted.overlay.opaque'): LayerWhiteouts {
  return {
    whiteout(layer, path) {
      mkdirSync(dirname(join(layer, path)), { recursive: true });
      native().mknod(join(layer, path), constants.S_IFCHR, 0);
    },
    opaque(layer, path) {
      mkdirSync(join(layer, path), { recursive: true });
      native().lsetxattr(join(layer, path), opaqueXattr, Buffer.from('y'));
    },
  };
}

/** Native snapshots are full copies: a deletion deletes, an opaque directory is emptied. */
export const nativeWhiteouts: LayerWhiteouts = {
  whiteout: (layer, path) => rmSync(join(layer, path), { recursive: true }),
  opaque: (layer, path) => {
    rmSync(join(layer, path), { recursive: true, force: true });
    mkdirSync(join(layer, path));
  },
};
