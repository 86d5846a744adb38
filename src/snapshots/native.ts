/**
 * The native snapshotter: every active snapshot is a full copy of its parent, mounted
 * with a bind mount. Works on any filesystem (no overlayfs), at the cost of a copy per
 * prepare; on a filesystem with reflinks (btrfs, XFS) the copy shares the data blocks.
 *
 *   root/snapshots/native/<id>/fs      the whole tree
 *
 * The copy is GNU `cp -a --reflink=auto`: it keeps modes, owners, timestamps, xattrs,
 * symlinks, hard links within the tree, devices and FIFOs, and clones blocks where it
 * can. Measured on the CI machine for 20,000 small files in 200 folders: 0.42 s on
 * tmpfs against 0.55 s for a synchronous Node walk that copied less (no xattrs, no hard
 * links, no devices) and blocked the event loop; on ext4 both are dominated by the disk
 * (14-15 s against 15-19 s).
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UnavailableError } from '../errors.js';
import type { SnapshotRecord } from '../metadata/snapshots.js';
import { FolderSnapshotter, type SnapshotterOptions } from './base.js';
import { bindMount } from './mount.js';
import type { Mount, SnapshotterCapabilities } from './snapshotter.js';

const run = promisify(execFile);

/** Copy the tree `source` to `target` (which must not exist), keeping everything. */
async function copyTree(source: string, target: string): Promise<void> {
  try {
    await run('cp', ['-a', '--reflink=auto', '--no-target-directory', '--', source, target]);
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new UnavailableError(`copying snapshot tree ${source}: ${stderr || (err as Error).message}`, { cause: err });
  }
}

export class NativeSnapshotter extends FolderSnapshotter {
  /** A snapshot's tree is a copy of its parent's: committing it onto another would lie. */
  readonly capabilities: SnapshotterCapabilities = { rebase: false, whiteouts: 'delete' };

  private constructor(options: SnapshotterOptions) {
    super('native', options);
  }

  /** Open the native snapshotter of a root for one namespace (cleans leftovers on first open). */
  static async open(options: SnapshotterOptions): Promise<NativeSnapshotter> {
    return new NativeSnapshotter(options).started();
  }

  protected async populate(staging: string, kind: 'active' | 'view', parent: SnapshotRecord | undefined): Promise<void> {
    // A view mounts its parent's tree read-only: nothing to copy.
    if (kind === 'active' && parent !== undefined) await copyTree(this.folders.fs(parent.id), join(staging, 'fs'));
    else await mkdir(join(staging, 'fs'), { mode: 0o755 });
  }

  /** active: a read-write bind of its copy; view: a read-only bind of its parent's tree (or its own, empty). */
  protected mountsOf(record: SnapshotRecord): Mount[] {
    if (record.kind === 'view') {
      const parent = this.parentOf(record);
      return [bindMount(this.folders.fs((parent ?? record).id), { readOnly: true })];
    }
    return [bindMount(this.folders.fs(record.id), { readOnly: false })];
  }
}
