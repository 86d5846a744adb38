/**
 * The folders of one snapshotter in one root, `root/snapshots/<snapshotter>/`, shared
 * by every namespace (snapshot ids are global, so two namespaces never share a folder):
 *
 *   new-<uuid>/       a snapshot being built by prepare/view; no row yet
 *   <id>/fs/          a snapshot; live exactly while a row has that id
 *   <id>-removing/    being deleted, or what a crash left of a deletion
 *
 * Anything else in the folder (a `lost+found`, a note) is not ours and is left alone.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, renameSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { logger } from '../log.js';
import type { MetadataDB } from '../metadata/db.js';
import { snapshotIdsInUse, validateSnapshotterName } from '../metadata/snapshots.js';
import type { Root } from '../root.js';
import { KeyedMutex } from '../sync/index.js';

const log = logger('snapshots');

const ID_FOLDER = /^[1-9][0-9]*$/;
const STAGING_PREFIX = 'new-';
const REMOVING_SUFFIX = '-removing';

export class SnapshotFolders {
  /** Folders this process is building or deleting right now: cleanup must not touch them. */
  private readonly busy = new Set<string>();
  private startup: Promise<void> | undefined;

  constructor(
    /** `root/snapshots/<snapshotter>`. */
    readonly dir: string,
    readonly db: MetadataDB,
    private readonly snapshotter: string,
    /** Per-key locks of the whole root (Root.locks), so every instance agrees. */
    readonly locks: KeyedMutex,
  ) {}

  /** The folder of snapshot `id`. */
  path(id: number): string {
    return join(this.dir, String(id));
  }

  /** The snapshot's tree: an overlay layer (its own diff only) or a native full copy. */
  fs(id: number): string {
    return join(this.path(id), 'fs');
  }

  /**
   * A fresh staging folder for a snapshot being built. Marked busy before it exists, so a
   * cleanup that lists the folder while it is being created cannot delete it.
   */
  async stage(): Promise<string> {
    const name = `${STAGING_PREFIX}${randomUUID()}`;
    this.busy.add(name);
    try {
      await mkdir(join(this.dir, name), { recursive: true, mode: 0o700 });
    } catch (err) {
      this.busy.delete(name);
      throw err;
    }
    return name;
  }

  /**
   * Move a staged folder to `<id>`. Called inside the transaction that creates the row,
   * so the folder appears exactly when the row commits (or is an orphan cleanup removes,
   * if the process dies before the commit). A folder already named `<id>` is such an
   * orphan: SQLite hands out the id of a rolled-back row again. It is moved aside and
   * its new name returned, for `deleteRemoving` once the transaction is over.
   */
  placeSync(staged: string, id: number): string | undefined {
    const leftover = existsSync(this.path(id)) ? this.moveAsideSync(String(id)) : undefined;
    try {
      renameSync(join(this.dir, staged), this.path(id));
    } catch (err) {
      // Not busy any more: the next cleanup deletes it.
      if (leftover !== undefined) this.busy.delete(leftover);
      throw err;
    }
    this.busy.delete(staged);
    return leftover;
  }

  /** Delete a staged folder that will not become a snapshot. */
  async unstage(staged: string): Promise<void> {
    try {
      await rm(join(this.dir, staged), { recursive: true, force: true });
    } finally {
      this.busy.delete(staged);
    }
  }

  /**
   * Rename `name` to `name-removing` (from then on it is no snapshot, even after a crash)
   * and delete it. A failed delete is left for cleanup, with a warning: the snapshot is
   * gone from the caller's point of view as soon as its row is.
   */
  async discard(name: string): Promise<void> {
    let removing: string;
    try {
      removing = this.moveAsideSync(name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await this.deleteRemoving(removing);
  }

  /**
   * Delete every folder that is no live snapshot: `*-removing` and `new-*` leftovers, and
   * `<id>` folders whose id no row of this snapshotter has, in any namespace (the moby
   * orphan-layer fix). Nothing else is touched.
   */
  async cleanup(): Promise<void> {
    // List first, then read the ids: a folder in the listing was placed by a transaction
    // that committed before the ids are read, or it is an orphan. Reading the ids first
    // would race with a prepare committing in between and delete its new folder.
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const inUse = snapshotIdsInUse(this.db, this.snapshotter);
    const garbage = names.filter((name) => !this.busy.has(name) && isGarbage(name, inUse));
    for (const name of garbage) {
      log.info({ snapshotter: this.snapshotter, folder: name }, 'removing leftover snapshot folder');
      if (ID_FOLDER.test(name)) await this.discard(name);
      else await this.deleteRemoving(name);
    }
  }

  /**
   * Run cleanup once per opened root: a crash can only have left garbage before this
   * process opened the root (it holds the root lock), so later instances (other
   * namespaces) need not scan again. A failure is logged, not thrown: leftovers cost
   * disk space, not correctness, and `cleanup()` can be called again.
   */
  startupCleanup(): Promise<void> {
    this.startup ??= this.cleanup().catch((err: unknown) => {
      log.warn({ err, dir: this.dir }, 'snapshot folder cleanup failed; leftovers stay until the next cleanup');
    });
    return this.startup;
  }

  private moveAsideSync(name: string): string {
    // A second deletion of the same name (a reused id's orphan) gets a name of its own.
    let removing = `${name}${REMOVING_SUFFIX}`;
    if (existsSync(join(this.dir, removing))) removing = `${name}-${randomUUID()}${REMOVING_SUFFIX}`;
    this.busy.add(removing);
    try {
      renameSync(join(this.dir, name), join(this.dir, removing));
    } catch (err) {
      this.busy.delete(removing);
      throw err;
    }
    return removing;
  }

  /** Delete a folder that is no snapshot any more (moved aside, or a leftover). */
  async deleteRemoving(name: string): Promise<void> {
    this.busy.add(name);
    try {
      await rm(join(this.dir, name), { recursive: true, force: true });
    } catch (err) {
      log.warn({ err, folder: join(this.dir, name) }, 'cannot delete snapshot folder; cleanup will retry');
    } finally {
      this.busy.delete(name);
    }
  }
}

function isGarbage(name: string, inUse: ReadonlySet<number>): boolean {
  if (ID_FOLDER.test(name)) return !inUse.has(Number(name));
  return name.endsWith(REMOVING_SUFFIX) || name.startsWith(STAGING_PREFIX);
}

/** Where snapshots live when there is no Root object (tests, tools). */
export interface SnapshotStorage {
  /** The folder holding one folder per snapshotter: `root/snapshots`. */
  dir: string;
  db: MetadataDB;
  /** Lock table shared with the rest of the root; default: one per storage. */
  locks?: KeyedMutex;
}

const registry = new WeakMap<MetadataDB, Map<string, SnapshotFolders>>();

/**
 * The one SnapshotFolders of a snapshotter in an open root: instances bound to
 * different namespaces share its busy set, its locks and its startup cleanup.
 */
export function foldersOf(root: Root | SnapshotStorage, snapshotter: string): SnapshotFolders {
  validateSnapshotterName(snapshotter);
  const storage = 'dir' in root ? root : { dir: join(root.path, 'snapshots'), db: root.db, locks: root.locks };
  let byDir = registry.get(storage.db);
  if (!byDir) {
    byDir = new Map();
    registry.set(storage.db, byDir);
  }
  const dir = join(storage.dir, snapshotter);
  let folders = byDir.get(dir);
  if (!folders) {
    folders = new SnapshotFolders(dir, storage.db, snapshotter, storage.locks ?? new KeyedMutex());
    byDir.set(dir, folders);
  }
  return folders;
}
