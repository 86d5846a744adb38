/**
 * Snapshotters: the interface first, then the overlay and native implementations, the
 * mount helpers, and `createSnapshotter` to pick one by name.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Root } from '../root.js';
import type { SnapshotterOptions } from './base.js';
import { foldersOf, type SnapshotStorage } from './folders.js';
import { NativeSnapshotter } from './native.js';
import { OverlaySnapshotter, type OverlaySnapshotterOptions } from './overlay.js';
import type { Snapshotter } from './snapshotter.js';

export type {
  CommitOptions,
  Mount,
  SnapshotInfo,
  SnapshotOptions,
  Snapshotter,
  SnapshotterCapabilities,
  Usage,
} from './snapshotter.js';
export type { SnapshotterOptions } from './base.js';
export type { SnapshotStorage } from './folders.js';
export { OverlaySnapshotter, type OverlaySnapshotterOptions } from './overlay.js';
export { NativeSnapshotter } from './native.js';
export { bindMount, formatMountCommand, mountAll, unmount, MAX_MOUNT_DATA, MAX_OVERLAY_LAYERS } from './mount.js';

export const SNAPSHOTTER_NAMES = ['overlay', 'native'] as const;
export type SnapshotterName = (typeof SNAPSHOTTER_NAMES)[number];

/**
 * Open the snapshotter `name` of a root for one namespace. The first one opened on a
 * root in this process deletes the folders a crash left behind (see SnapshotFolders).
 * `userxattr` only means something to overlay.
 */
export async function createSnapshotter(name: SnapshotterName, options: SnapshotterOptions & OverlaySnapshotterOptions): Promise<Snapshotter> {
  switch (name) {
    case 'overlay':
      return OverlaySnapshotter.open(options);
    case 'native':
      return NativeSnapshotter.open(options);
    default:
      throw new InvalidArgumentError(`unknown snapshotter ${JSON.stringify(String(name))}: one of ${SNAPSHOTTER_NAMES.join(', ')}`);
  }
}

/**
 * What GC needs after it deleted snapshot rows (src/gc's SnapshotFolderRemover): each
 * `<id>` folder goes the way of a remove, through `<id>-removing`, and a concurrent
 * cleanup in this process knows to leave it alone.
 */
export function snapshotFolderRemover(root: Root | SnapshotStorage): { removeSnapshotFolders(snapshotter: string, ids: number[]): Promise<void> } {
  return {
    async removeSnapshotFolders(snapshotter, ids) {
      const folders = foldersOf(root, snapshotter);
      for (const id of ids) await folders.discard(String(id));
    },
  };
}
