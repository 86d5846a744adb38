/**
 * The Snapshotter interface (containerd's nine methods, plus cleanup). Keys are plain
 * strings; a committed snapshot's name is its chain ID when the unpacker made it.
 *
 *   prepare(key, parent) ─▶ active ──apply──▶ commit(name, key) ─▶ committed ─▶ parent of the next
 *   view(key, parent)    ─▶ view (read-only)
 */
import type { Labels } from '../metadata/labels.js';
import type { SnapshotKind } from '../metadata/snapshots.js';

/** A mount as mount(2) takes it; `mount -t <type> -o <options> <source> <target>`. */
export interface Mount {
  type: string;
  source: string;
  options: string[];
}

export interface SnapshotInfo {
  /** Key of an active/view snapshot, or name of a committed one. */
  name: string;
  parent?: string;
  kind: SnapshotKind;
  labels: Labels;
  createdAt: Date;
  updatedAt: Date;
}

/** Disk use of one snapshot's own data (not its parents'). */
export interface Usage {
  size: number;
  inodes: number;
}

export interface SnapshotOptions {
  labels?: Labels;
}

export interface CommitOptions extends SnapshotOptions {
  /**
   * Commit onto a different parent than the one prepared with ("rebase"). Only
   * snapshotters whose layers are independent of their parents support it
   * (`capabilities.rebase`): it is what lets the overlay snapshotter apply every layer of
   * an image at once into parentless snapshots and chain them at commit.
   */
  parent?: string;
}

export interface SnapshotterCapabilities {
  /** commit({parent}) may name a parent other than the prepared one. */
  rebase: boolean;
  /**
   * How a layer's deletions must be written into an active snapshot of this
   * snapshotter: as overlay whiteouts (char 0/0 devices, opaque xattrs — `trusted.*`, or
   * `user.*` in userxattr mode) in a layer of its own, or as real deletions in a full copy.
   */
  whiteouts: 'overlay' | 'overlay-userxattr' | 'delete';
}

export interface Snapshotter {
  readonly name: string;
  readonly capabilities: SnapshotterCapabilities;
  stat(key: string): Promise<SnapshotInfo>;
  /** Update labels: field paths `labels` / `labels.<key>`; none replaces all. */
  update(info: { name: string; labels: Labels }, fieldpaths?: readonly string[]): Promise<SnapshotInfo>;
  usage(key: string): Promise<Usage>;
  mounts(key: string): Promise<Mount[]>;
  /** A new active (writable) snapshot on `parent` (which must be committed). */
  prepare(key: string, parent?: string, options?: SnapshotOptions): Promise<Mount[]>;
  /** A new read-only view on `parent`. */
  view(key: string, parent?: string, options?: SnapshotOptions): Promise<Mount[]>;
  commit(name: string, key: string, options?: CommitOptions): Promise<void>;
  /** Remove a snapshot without children: its row goes first, then `<id>` -> `<id>-removing` -> deleted. */
  remove(key: string): Promise<void>;
  walk(visit: (info: SnapshotInfo) => void | Promise<void>, ...filters: string[]): Promise<void>;
  /** Delete `*-removing` leftovers and folders the database does not know. */
  cleanup(): Promise<void>;
}
