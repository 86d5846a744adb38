/**
 * What the overlay and native snapshotters share: snapshot rows in the metadata
 * database, one folder per row id, per-key locks, and the crash-safe order of
 * creating and removing the two.
 *
 * prepare/view, in this order:
 *   1. build the new tree in `new-<uuid>/` (empty dirs, or a copy of the parent);
 *   2. one transaction: insert the row (which hands out the id), rename `new-<uuid>` to
 *      `<id>`, commit.
 *   A crash during 1 leaves `new-*`; between the rename and the commit, an `<id>` folder
 *   without a row. Cleanup removes both, and no row ever points at a missing folder.
 *
 * remove: one transaction deletes the row (children forbid it), then `<id>` is renamed
 *   to `<id>-removing` and deleted. A crash leaves an `<id>` without a row or an
 *   `*-removing` folder: cleanup again.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AlreadyExistsError, FailedPreconditionError, isNotFound, isResourceExhausted } from '../errors.js';
import type { MetadataDB } from '../metadata/db.js';
import { validateLabels, type Labels } from '../metadata/labels.js';
import type { SnapshotMetadata, SnapshotRecord } from '../metadata/snapshots.js';
import type { Root } from '../root.js';
import { foldersOf, type SnapshotFolders, type SnapshotStorage } from './folders.js';
import type {
  CommitOptions,
  Mount,
  SnapshotInfo,
  Snapshotter,
  SnapshotterCapabilities,
  SnapshotOptions,
  Usage,
} from './snapshotter.js';
import { diskUsage } from './usage.js';

export interface SnapshotterOptions {
  /** An open Root (its `snapshots/` folder, database and locks), or the same parts. */
  root: Root | SnapshotStorage;
  /** The namespace this instance works in; it must exist. Folders are shared by all namespaces. */
  namespace: string;
}

function infoOf({ key, parent, kind, labels, createdAt, updatedAt }: SnapshotRecord): SnapshotInfo {
  return { name: key, ...(parent === undefined ? {} : { parent }), kind, labels, createdAt, updatedAt };
}

export abstract class FolderSnapshotter implements Snapshotter {
  abstract readonly capabilities: SnapshotterCapabilities;
  readonly namespace: string;
  protected readonly db: MetadataDB;
  protected readonly folders: SnapshotFolders;

  protected constructor(
    readonly name: string,
    options: SnapshotterOptions,
  ) {
    this.folders = foldersOf(options.root, name);
    this.db = this.folders.db;
    this.namespace = options.namespace;
    // Fails now, with InvalidArgument, for a namespace that does not exist.
    this.db.namespace(this.namespace);
  }

  /**
   * Finish opening: the first instance of this snapshotter on an opened root deletes
   * what a crash left (see SnapshotFolders.startupCleanup), as containerd does at start.
   */
  protected async started(): Promise<this> {
    await this.folders.startupCleanup();
    return this;
  }

  /**
   * Build the tree of a new snapshot in `staging` (a folder under the snapshotter's):
   * at least `staging/fs`. `parent` is committed; its folder is not locked, so a copy
   * of it is checked against the parent's row again when the row is created.
   */
  protected abstract populate(staging: string, kind: 'active' | 'view', parent: SnapshotRecord | undefined): Promise<void>;

  /** The mounts of an active snapshot or a view. */
  protected abstract mountsOf(record: SnapshotRecord): Mount[];

  async stat(key: string): Promise<SnapshotInfo> {
    return infoOf(this.records.get(this.name, key));
  }

  async update(info: { name: string; labels: Labels }, fieldpaths?: readonly string[]): Promise<SnapshotInfo> {
    return infoOf(this.records.update(this.name, info.name, info.labels, fieldpaths));
  }

  async usage(key: string): Promise<Usage> {
    // Under the key's lock so a concurrent remove cannot delete the tree mid-walk.
    return this.withKeyLock(key, async () => diskUsage(this.folders.fs(this.records.get(this.name, key).id)));
  }

  async mounts(key: string): Promise<Mount[]> {
    const record = this.records.get(this.name, key);
    if (record.kind === 'committed') {
      throw new FailedPreconditionError(`snapshot ${key} is committed and has no mounts; make a view of it`);
    }
    return this.mountsOf(record);
  }

  prepare(key: string, parent?: string, options?: SnapshotOptions): Promise<Mount[]> {
    return this.create('active', key, parent, options);
  }

  view(key: string, parent?: string, options?: SnapshotOptions): Promise<Mount[]> {
    return this.create('view', key, parent, options);
  }

  async commit(name: string, key: string, options: CommitOptions = {}): Promise<void> {
    await this.withKeyLock(key, async () => {
      const rebase = options.parent !== undefined ? { parent: options.parent } : {};
      if (options.parent !== undefined && !this.capabilities.rebase) {
        const active = this.records.get(this.name, key);
        if (active.parent !== options.parent) {
          this.records.get(this.name, options.parent); // NotFound comes first
          throw new FailedPreconditionError(
            `the ${this.name} snapshotter cannot commit ${key} onto ${options.parent}: its tree is a copy of ` +
              `${active.parent === undefined ? 'no parent' : active.parent} (no rebase)`,
          );
        }
      }
      this.records.commit(this.name, key, name, options.labels, rebase);
    });
  }

  async remove(key: string): Promise<void> {
    await this.withKeyLock(key, async () => {
      let record: SnapshotRecord;
      try {
        record = this.records.remove(this.name, key);
      } catch (err) {
        // On a full disk SQLite cannot even delete the row (its journal must grow), which
        // would leave the prepared snapshots of a pull that failed for lack of space. An
        // active snapshot's files are nobody's yet: free them, then delete the row.
        const active = isResourceExhausted(err) ? this.find(key) : undefined;
        if (active?.kind !== 'active') throw err;
        const fs = this.folders.fs(active.id);
        for (const child of await readdir(fs)) await rm(join(fs, child), { recursive: true, force: true });
        record = this.records.remove(this.name, key);
      }
      await this.folders.discard(String(record.id));
    });
  }

  async walk(visit: (info: SnapshotInfo) => void | Promise<void>, ...filters: string[]): Promise<void> {
    for (const record of this.records.list(this.name, ...filters)) await visit(infoOf(record));
  }

  cleanup(): Promise<void> {
    return this.folders.cleanup();
  }

  /** The snapshot's parent (a committed snapshot), if it has one. */
  protected parentOf(record: SnapshotRecord): SnapshotRecord | undefined {
    return record.parent === undefined ? undefined : this.records.get(this.name, record.parent);
  }

  /** The snapshot's parents, nearest first. */
  protected parentsOf(record: SnapshotRecord): SnapshotRecord[] {
    const parents: SnapshotRecord[] = [];
    for (let parent = this.parentOf(record); parent !== undefined; parent = this.parentOf(parent)) parents.push(parent);
    return parents;
  }

  private get records(): SnapshotMetadata {
    return this.db.namespace(this.namespace).snapshots;
  }

  private withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    // Not `sn://<snapshotter>/<key>`: the unpacker holds that one around its commit calls.
    return this.folders.locks.withLock(`snapshot-key://${this.name}/${this.namespace}/${key}`, fn);
  }

  private async create(kind: 'active' | 'view', key: string, parent: string | undefined, options: SnapshotOptions = {}): Promise<Mount[]> {
    return this.withKeyLock(key, async () => {
      // Fail before copying anything: bad labels, the key taken, the parent missing or not committed.
      validateLabels(options.labels);
      if (this.find(key) !== undefined) throw new AlreadyExistsError(`snapshot ${key} already exists`);
      const parentRecord = parent === undefined ? undefined : this.records.get(this.name, parent);
      if (parentRecord !== undefined && parentRecord.kind !== 'committed') {
        throw new FailedPreconditionError(`parent ${parent} of snapshot ${key} is not committed`);
      }
      const staged = await this.folders.stage();
      let placed: number | undefined;
      try {
        await this.populate(join(this.folders.dir, staged), kind, parentRecord);
        let leftover: string | undefined;
        const record = this.db.transaction(() => {
          const created = this.records.create({
            snapshotter: this.name,
            key,
            kind,
            ...(parent === undefined ? {} : { parent }),
            ...(options.labels === undefined ? {} : { labels: options.labels }),
          });
          // The parent may have been removed and made again under the same key while we
          // copied it: then the copy is of other data.
          if (parentRecord !== undefined && this.records.get(this.name, parentRecord.key).id !== parentRecord.id) {
            throw new FailedPreconditionError(`parent ${parent} of snapshot ${key} was replaced while it was prepared`);
          }
          leftover = this.folders.placeSync(staged, created.id);
          placed = created.id;
          return created;
        });
        if (leftover !== undefined) await this.folders.deleteRemoving(leftover);
        return this.mountsOf(record);
      } catch (err) {
        // Placed but the transaction did not commit: the folder has no row.
        if (placed !== undefined && this.find(key)?.id !== placed) await this.folders.discard(String(placed));
        else if (placed === undefined) await this.folders.unstage(staged);
        throw err;
      }
    });
  }

  private find(key: string): SnapshotRecord | undefined {
    try {
      return this.records.get(this.name, key);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}
