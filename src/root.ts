/**
 * A root directory (default /var/lib/layerpool) and its single owner. Two processes
 * writing one SQLite database and one set of snapshot folders would each think the
 * other's half-done work is garbage, so `Root.open` takes an exclusive flock on
 * `root/lock` and a second process gets "root in use by pid N".
 *
 *   root/lock          flock + owner pid
 *   root/metadata.db   SQLite (src/metadata)
 *   root/metadata.reserve  space the database falls back on when the disk is full
 *   root/content/      blobs and ingests (src/content)
 *   root/snapshots/    one folder per snapshotter (src/snapshots)
 */
import { closeSync, mkdirSync, openSync, readFileSync, ftruncateSync, writeSync, fsyncSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LocalContent } from './content/store.js';
import { UnavailableError } from './errors.js';
import { logger } from './log.js';
import { MetadataDB } from './metadata/db.js';
import { native } from './native.js';
import { KeyedMutex } from './sync/index.js';

const log = logger('root');

export const DEFAULT_ROOT = '/var/lib/layerpool';

export interface RootOptions {
  /** Root directory; default `LAYERPOOL_ROOT` or /var/lib/layerpool. */
  path?: string;
  /** Namespaces created at open if missing (a Client ensures its own). */
  namespaces?: string[];
}

export class Root {
  readonly path: string;
  readonly db: MetadataDB;
  readonly content: LocalContent;
  /** One lock table for the whole root: content, snapshots, GC and pulls agree on keys. */
  readonly locks: KeyedMutex;
  private lockFd: number | undefined;

  private constructor(path: string, lockFd: number, db: MetadataDB, content: LocalContent, locks: KeyedMutex) {
    this.path = path;
    this.lockFd = lockFd;
    this.db = db;
    this.content = content;
    this.locks = locks;
  }

  static async open(options: RootOptions = {}): Promise<Root> {
    const path = resolve(options.path ?? process.env['LAYERPOOL_ROOT'] ?? DEFAULT_ROOT);
    try {
      mkdirSync(path, { recursive: true, mode: 0o711 });
    } catch (err) {
      throw new UnavailableError(`cannot create root ${path}: ${(err as Error).message}`, { cause: err });
    }
    const lockFd = acquireRootLock(path);
    let db: MetadataDB | undefined;
    try {
      db = MetadataDB.open({ path: join(path, 'metadata.db'), reservePath: join(path, 'metadata.reserve') });
      for (const namespace of options.namespaces ?? []) db.namespaces.ensure(namespace);
      const locks = new KeyedMutex();
      const content = await LocalContent.open({ dir: join(path, 'content'), db, locks });
      log.debug({ path }, 'root opened');
      return new Root(path, lockFd, db, content, locks);
    } catch (err) {
      db?.close();
      releaseRootLock(lockFd);
      throw err;
    }
  }

  get closed(): boolean {
    return this.lockFd === undefined;
  }

  /** Close the database and release the root for another process. */
  close(): void {
    if (this.lockFd === undefined) return;
    this.db.close();
    releaseRootLock(this.lockFd);
    this.lockFd = undefined;
  }
}

function acquireRootLock(root: string): number {
  const lockPath = join(root, 'lock');
  const fd = openSync(lockPath, 'a+', 0o600);
  let locked: boolean;
  try {
    locked = native().flock(fd, 'ex', true);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  if (!locked) {
    const owner = readFileSync(lockPath, 'utf8').trim();
    closeSync(fd);
    throw new UnavailableError(
      `root ${root} is in use by pid ${owner || 'unknown'}; stop that process or talk to its service (layerpool serve)`,
    );
  }
  // The pid is only for the message above; the flock is what excludes.
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  fsyncSync(fd);
  return fd;
}

function releaseRootLock(fd: number): void {
  try {
    ftruncateSync(fd, 0);
    native().flock(fd, 'un', false);
  } finally {
    closeSync(fd);
  }
}
