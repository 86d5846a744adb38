/**
 * The overlay snapshotter: every snapshot folder holds only its own layer, and a
 * snapshot with parents is an overlayfs mount of the parents' layers under its own.
 *
 *   root/snapshots/overlay/<id>/fs     this snapshot's layer (the overlay upperdir)
 *   root/snapshots/overlay/<id>/work   overlayfs scratch space (active snapshots only)
 *
 * A layer folder does not depend on its parent, so a snapshot may be committed onto
 * another parent than the one it was prepared on (`capabilities.rebase`): the unpacker
 * applies every layer of an image at once into parentless snapshots and chains them
 * at commit.
 */
import { chmod, chown, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import type { SnapshotRecord } from '../metadata/snapshots.js';
import { FolderSnapshotter, type SnapshotterOptions } from './base.js';
import { bindMount } from './mount.js';
import type { Mount, SnapshotterCapabilities } from './snapshotter.js';

export interface OverlaySnapshotterOptions extends SnapshotterOptions {
  /**
   * Mount with overlayfs's `userxattr` option (Linux >= 5.11): overlayfs then reads its
   * markers from `user.overlay.*` xattrs instead of `trusted.overlay.*`. That is what an
   * overlay mounted inside a user namespace needs (its root may not write `trusted.*`);
   * layers must then carry opaque directories as `user.overlay.opaque=y` (the applier's
   * `overlay-userxattr` whiteout mode). Whiteouts stay char 0/0 devices either way.
   */
  userxattr?: boolean;
}

const OVERLAY_DEFAULTS = {
  userxattr: false,
} as const satisfies Omit<Required<OverlaySnapshotterOptions>, keyof SnapshotterOptions>;

export class OverlaySnapshotter extends FolderSnapshotter {
  readonly capabilities: SnapshotterCapabilities;
  readonly userxattr: boolean;

  private constructor(options: OverlaySnapshotterOptions) {
    super('overlay', options);
    this.userxattr = options.userxattr ?? OVERLAY_DEFAULTS.userxattr;
    this.capabilities = { rebase: true, whiteouts: this.userxattr ? 'overlay-userxattr' : 'overlay' };
    // `:` separates lowerdirs and `,` mount options; such a path cannot be mounted.
    if (/[,:]/.test(this.folders.dir)) {
      throw new InvalidArgumentError(`overlay snapshots folder ${this.folders.dir} must not contain ',' or ':'`);
    }
  }

  /** Open the overlay snapshotter of a root for one namespace (cleans leftovers on first open). */
  static async open(options: OverlaySnapshotterOptions): Promise<OverlaySnapshotter> {
    return new OverlaySnapshotter(options).started();
  }

  protected async populate(staging: string, kind: 'active' | 'view', parent: SnapshotRecord | undefined): Promise<void> {
    const fs = join(staging, 'fs');
    await mkdir(fs, { mode: 0o755 });
    if (kind === 'active') await mkdir(join(staging, 'work'), { mode: 0o711 });
    if (parent !== undefined) {
      // The merged root takes its owner and mode from the upperdir: keep the image's.
      const root = await stat(this.folders.fs(parent.id));
      await chown(fs, root.uid, root.gid);
      await chmod(fs, root.mode & 0o7777);
    }
  }

  /**
   * active, no parent: a read-write bind of its layer; active with parents: overlay of
   * the parents (nearest first) under its layer. view: a read-only bind of its only
   * layer (its own, empty, or its parent's), or an overlay of lowerdirs only, which
   * overlayfs mounts read-only.
   */
  protected mountsOf(record: SnapshotRecord): Mount[] {
    const lowerdirs = this.parentsOf(record).map((parent) => this.folders.fs(parent.id));
    // index=off: with the inodes index on, overlayfs ties a lower layer to the upper it
    // was first mounted with and refuses other pairings, but layers are shared by many.
    const common = ['index=off', ...(this.userxattr ? ['userxattr'] : [])];
    if (record.kind === 'view') {
      const [only] = lowerdirs;
      if (lowerdirs.length <= 1) return [bindMount(only ?? this.folders.fs(record.id), { readOnly: true })];
      return [{ type: 'overlay', source: 'overlay', options: ['ro', ...common, `lowerdir=${lowerdirs.join(':')}`] }];
    }
    if (lowerdirs.length === 0) return [bindMount(this.folders.fs(record.id), { readOnly: false })];
    const options = [
      ...common,
      `workdir=${join(this.folders.path(record.id), 'work')}`,
      `upperdir=${this.folders.fs(record.id)}`,
      `lowerdir=${lowerdirs.join(':')}`,
    ];
    return [{ type: 'overlay', source: 'overlay', options }];
  }
}
