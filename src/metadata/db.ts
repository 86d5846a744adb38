/**
 * The metadata database: one SQLite file (WAL, synchronous=FULL, foreign keys on) that
 * records what exists in a root, per namespace. Every mutation is one transaction, so a
 * crash leaves the old state or the new one, never half of each.
 */
import { closeSync, existsSync, openSync, unlinkSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, ResourceExhaustedError, UnavailableError } from '../errors.js';
import { logger } from '../log.js';
import { ContentMetadata } from './content.js';
import { ImageStore } from './images.js';
import { IngestMetadata } from './ingests.js';
import { LeaseStore } from './leases.js';
import { NamespaceStore } from './namespaces.js';
import { MIGRATIONS } from './schema.js';
import { SnapshotMetadata } from './snapshots.js';

const log = logger('metadata');

export type SqliteDatabase = Database.Database;

export interface MetadataOptions {
  /** Path of the database file (`root/metadata.db`), or ':memory:' for tests. */
  path: string;
  /** How long a statement waits for a lock held by another connection (ms). Default 5000. */
  busyTimeoutMs?: number;
  readonly?: boolean;
  /**
   * A file kept filled (RESERVE_BYTES) beside the database and deleted when the disk is
   * full, so the transactions that clean up after a failure (removing a prepared
   * snapshot, releasing a lease) still get the WAL space they need: on a full disk SQLite
   * refuses even deletions.
   */
  reservePath?: string;
}

/** Room for a few hundred page writes: every cleanup of a failed pull, with margin. */
export const RESERVE_BYTES = 1 << 20;

/** All metadata of one namespace. Obtain it with `MetadataDB.namespace(name)`. */
export interface NamespacedMetadata {
  readonly namespace: string;
  readonly images: ImageStore;
  readonly content: ContentMetadata;
  readonly snapshots: SnapshotMetadata;
  readonly leases: LeaseStore;
  readonly ingests: IngestMetadata;
}

export class MetadataDB {
  readonly sqlite: SqliteDatabase;
  readonly namespaces: NamespaceStore;
  private readonly views = new Map<string, NamespacedMetadata>();
  private readonly reservePath: string | undefined;

  private constructor(sqlite: SqliteDatabase, reservePath: string | undefined) {
    this.sqlite = sqlite;
    this.reservePath = reservePath;
    this.namespaces = new NamespaceStore(this);
  }

  static open(options: MetadataOptions): MetadataDB {
    let sqlite: SqliteDatabase;
    try {
      sqlite = new Database(options.path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
    } catch (err) {
      throw new UnavailableError(`cannot open metadata database ${options.path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      sqlite.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
      if (!options.readonly) {
        sqlite.pragma('journal_mode = WAL');
        // FULL: a committed transaction survives a power cut, not only a process crash.
        sqlite.pragma('synchronous = FULL');
      }
      sqlite.pragma('foreign_keys = ON');
      const db = new MetadataDB(sqlite, options.readonly ? undefined : options.reservePath);
      if (!options.readonly) db.migrate();
      db.restoreReserve();
      return db;
    } catch (err) {
      sqlite.close();
      throw err;
    }
  }

  /** The schema version this database is at. */
  get schemaVersion(): number {
    return this.sqlite.pragma('user_version', { simple: true }) as number;
  }

  private migrate(): void {
    const current = this.schemaVersion;
    const latest = MIGRATIONS.at(-1)?.version ?? 0;
    if (current > latest) {
      throw new FailedPreconditionError(
        `metadata database schema version ${current} is newer than this layerpool supports (${latest}); upgrade layerpool`,
      );
    }
    for (const migration of MIGRATIONS) {
      if (migration.version <= current) continue;
      this.sqlite.transaction(() => {
        this.sqlite.exec(migration.sql);
        this.sqlite.pragma(`user_version = ${migration.version}`);
      }).immediate();
      log.info({ version: migration.version, description: migration.description }, 'metadata schema migrated');
    }
  }

  /**
   * Run `fn` in one IMMEDIATE transaction (nested calls become savepoints): all of its
   * writes land together or not at all.
   */
  transaction<T>(fn: () => T): T {
    if (this.sqlite.inTransaction) return this.sqlite.transaction(fn)();
    try {
      return this.sqlite.transaction(fn).immediate();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      if (this.releaseReserve()) {
        try {
          return this.sqlite.transaction(fn).immediate();
        } catch (retryErr) {
          if (!isDiskFull(retryErr)) throw retryErr;
          err = retryErr;
        }
      }
      // Callers branch on the kind (a removal that can free space first, then retry).
      throw new ResourceExhaustedError(`metadata database: no space left on device (${(err as Error).message})`, { cause: err });
    }
  }

  /**
   * Refill the reserve if a full disk used it (see MetadataOptions.reservePath). Called
   * at open and where space may have come back (before a pull, after a collection); on a
   * disk still full it leaves what it could not write to the transactions.
   */
  restoreReserve(): void {
    // One stat when it is there (before every pull), not a thrown EEXIST.
    if (this.reservePath === undefined || existsSync(this.reservePath)) return;
    let fd: number;
    try {
      fd = openSync(this.reservePath, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') log.warn({ err, path: this.reservePath }, 'cannot create the metadata space reserve');
      return;
    }
    try {
      const zeros = Buffer.alloc(64 << 10);
      for (let written = 0; written < RESERVE_BYTES; ) written += writeSync(fd, zeros, 0, Math.min(zeros.length, RESERVE_BYTES - written));
    } catch (err) {
      // No room yet: a partial reserve would only make the next full-disk moment worse.
      closeSync(fd);
      unlinkSync(this.reservePath);
      log.debug({ err }, 'no room for the metadata space reserve yet');
      return;
    }
    closeSync(fd);
  }

  /** Delete the reserve; true if there was one to free. */
  private releaseReserve(): boolean {
    if (this.reservePath === undefined) return false;
    try {
      unlinkSync(this.reservePath);
    } catch {
      return false;
    }
    log.warn({ path: this.reservePath }, 'disk full: released the metadata space reserve to finish a transaction');
    return true;
  }

  /**
   * Run `fn` against one consistent snapshot of the database (a read transaction): what
   * GC marks from cannot change underneath it.
   */
  readSnapshot<T>(fn: () => T): T {
    if (this.sqlite.inTransaction) return fn();
    return this.sqlite.transaction(fn).deferred();
  }

  /**
   * The stores of one namespace. The namespace must exist (see `namespaces.create`):
   * a misspelt namespace is an InvalidArgument error, not a silently empty world.
   */
  namespace(name: string): NamespacedMetadata {
    const cached = this.views.get(name);
    if (cached && this.namespaces.exists(name)) return cached;
    if (!this.namespaces.exists(name)) {
      NamespaceStore.validateName(name);
      throw new InvalidArgumentError(`namespace ${JSON.stringify(name)} does not exist (create it first)`);
    }
    const view: NamespacedMetadata = {
      namespace: name,
      images: new ImageStore(this, name),
      content: new ContentMetadata(this, name),
      snapshots: new SnapshotMetadata(this, name),
      leases: new LeaseStore(this, name),
      ingests: new IngestMetadata(this, name),
    };
    this.views.set(name, view);
    return view;
  }

  close(): void {
    if (this.sqlite.open) this.sqlite.close();
  }
}

/** Decode a labels column. */
export function decodeLabels(text: string): Record<string, string> {
  return JSON.parse(text) as Record<string, string>;
}

/** Throw NotFound unless a statement changed a row. */
export function requireChanged(result: Database.RunResult, what: string): void {
  if (result.changes === 0) throw new NotFoundError(`${what} not found`);
}

/** True for SQLite's primary-key / unique-constraint violation. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** True for a foreign key violation (a parent that does not exist, a row still referenced). */
export function isForeignKeyViolation(err: unknown): boolean {
  return (err as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

function isDiskFull(err: unknown): boolean {
  return (err as { code?: unknown }).code === 'SQLITE_FULL';
}
