/**
 * The content store: blobs by digest, written through resumable ingests, seen per
 * namespace through the metadata database (a blob in two namespaces is one file).
 *
 *   writer(ref) ──write──▶ ingest/<dir>/data ──commit: verify, fsync, rename──▶ blobs/<algo>/<hex>
 *                                                   └─ one transaction: content row + ingest row gone
 */
import { mkdir, open, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { validateDigest } from '../digest.js';
import {
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
} from '../errors.js';
import { logger } from '../log.js';
import { digestsInUse, isDigestInUse, type ContentInfo } from '../metadata/content.js';
import type { MetadataDB, NamespacedMetadata } from '../metadata/db.js';
import { allIngests, validateIngestRef, type IngestRecord } from '../metadata/ingests.js';
import type { Labels } from '../metadata/labels.js';
import { KeyedMutex } from '../sync/index.js';
import { BlobFiles } from './blobs.js';
import { hashFile, IngestWriter, type ContentWriter, type IngestPublisher, type IngestStatus } from './writer.js';

const log = logger('content');

/** Random access to a committed blob. */
export interface ReaderAt {
  readonly size: number;
  /** Read into `buffer` from `position`; returns the bytes read (0 at the end). */
  readAt(buffer: Uint8Array, position: number): Promise<number>;
  close(): Promise<void>;
}

export interface WriterOptions {
  /** Names the ingest: the same ref resumes the same bytes. A second writer on it waits. */
  ref: string;
  /** What the bytes must hash to; if the namespace has it already, AlreadyExists at once. */
  expected?: string;
  /** How many bytes there will be; more are refused as they arrive. */
  total?: number;
  /** Labels the committed content gets (commit may override). */
  labels?: Labels;
  /** Lease that holds the ingest now and the content once committed. */
  lease?: string;
  /** After a digest (or over-long size) mismatch: drop the bytes (default) or keep them. */
  onVerifyFailure?: 'remove' | 'keep';
  /** Ingest expiry: after it GC may remove an unfinished ingest not held by a lease. */
  expiresAt?: Date;
  /** Cancels waiting for another writer of the same ref. */
  signal?: AbortSignal;
}

export interface ReadOptions {
  /** First byte (inclusive). */
  start?: number;
  /** Last byte (inclusive), as in fs.createReadStream. */
  end?: number;
}

/** containerd's content.Store, per namespace: Manager + Provider + IngestManager + Ingester. */
export interface ContentStore {
  readonly namespace: string;
  info(digest: string): Promise<ContentInfo>;
  /** Update labels: field paths `labels` or `labels.<key>` (empty value deletes); none replaces all. */
  update(info: { digest: string; labels?: Labels }, fieldpaths?: readonly string[]): Promise<ContentInfo>;
  /** Visit every blob matching any of the filters (fields: digest, size, labels.<key>). */
  walk(visit: (info: ContentInfo) => void | Promise<void>, ...filters: string[]): Promise<void>;
  delete(digest: string): Promise<void>;
  readerAt(digest: string): Promise<ReaderAt>;
  readStream(digest: string, options?: ReadOptions): Promise<Readable>;
  /** A whole small blob (a manifest, a config); larger than `maxSize` is ResourceExhausted. */
  readBlob(digest: string, options?: { maxSize?: number }): Promise<Buffer>;
  writer(options: WriterOptions): Promise<ContentWriter>;
  status(ref: string): Promise<IngestStatus>;
  listStatuses(...filters: string[]): Promise<IngestStatus[]>;
  /** Remove an ingest (waits for its writer). */
  abort(ref: string, signal?: AbortSignal): Promise<void>;
}

export interface LocalContentOptions {
  /** The content folder, `root/content`. */
  dir: string;
  db: MetadataDB;
  /** Shared with the rest of the root so that content and GC locks agree. */
  locks?: KeyedMutex;
}

const DEFAULT_MAX_BLOB_READ = 4 << 20;

/**
 * The content files of a root and the namespaced stores over them. One per root; open
 * it with `LocalContent.open`, which first repairs whatever a crash left behind.
 */
export class LocalContent {
  readonly files: BlobFiles;
  readonly db: MetadataDB;
  readonly locks: KeyedMutex;
  private readonly stores = new Map<string, NamespacedContentStore>();

  private constructor(options: LocalContentOptions) {
    this.files = new BlobFiles(options.dir);
    this.db = options.db;
    this.locks = options.locks ?? new KeyedMutex();
  }

  static async open(options: LocalContentOptions): Promise<LocalContent> {
    const content = new LocalContent(options);
    await content.files.init();
    await content.recover();
    return content;
  }

  /** The content store of one namespace (which must exist). */
  namespace(name: string): ContentStore {
    const meta = this.db.namespace(name);
    let store = this.stores.get(name);
    if (!store) {
      store = new NamespacedContentStore(this, meta);
      this.stores.set(name, store);
    }
    return store;
  }

  /**
   * Where the bytes of a namespace's ingest are written: the unpacker's workers read a
   * layer there while it downloads.
   */
  ingestDataPath(namespace: string, ref: string): string {
    return this.files.ingestDataPath(BlobFiles.ingestDirName(namespace, ref));
  }

  /**
   * Delete the blob file unless some namespace still records it. Under the file lock,
   * so a concurrent commit of the same digest in another namespace cannot lose its file.
   */
  async removeBlobIfUnused(digest: string): Promise<boolean> {
    return this.locks.withLock(fileLock(digest), async () => {
      if (isDigestInUse(this.db, digest)) return false;
      await this.files.removeBlob(digest);
      return true;
    });
  }

  /**
   * Repair after a crash, before anything else runs (the root lock is held):
   * - an ingest row whose folder or data file is gone is dropped (a commit that died
   *   between renaming the data into place and the database leaves the folder empty);
   *   a folder with no row is deleted;
   * - a blob file no namespace records (a commit that died between rename and the
   *   database) is deleted: the write never happened;
   * - a content row whose file is gone (the disk lost it) is dropped, with a warning.
   */
  private async recover(): Promise<void> {
    const dirs = new Set(await this.files.listIngestDirs());
    const known = new Set<string>();
    for (const ingest of allIngests(this.db)) {
      if (dirs.has(ingest.dir) && (await this.files.ingestHasData(ingest.dir))) {
        known.add(ingest.dir);
        continue;
      }
      this.db.namespace(ingest.namespace).ingests.delete(ingest.ref);
      log.warn({ namespace: ingest.namespace, ref: ingest.ref }, 'dropped ingest record without data');
    }
    for (const dir of dirs) {
      if (known.has(dir)) continue;
      await this.files.removeIngest(dir);
      log.info({ dir }, 'removed orphan ingest folder');
    }

    const recorded = digestsInUse(this.db);
    const onDisk = new Set(await this.files.listBlobs());
    for (const digest of onDisk) {
      if (recorded.has(digest)) continue;
      await this.files.removeBlob(digest);
      log.info({ digest }, 'removed orphan blob');
    }
    for (const digest of recorded) {
      if (onDisk.has(digest)) continue;
      const rows = this.db.sqlite.prepare('SELECT namespace FROM content WHERE digest = ?').all(digest) as { namespace: string }[];
      this.db.transaction(() => {
        for (const { namespace } of rows) this.db.namespace(namespace).content.delete(digest);
      });
      log.warn({ digest }, 'content record without its blob file was dropped');
    }
  }
}

const fileLock = (digest: string): string => `content-file://${digest}`;
const ingestLock = (namespace: string, ref: string): string => `ingest://${namespace}/${ref}`;

class NamespacedContentStore implements ContentStore, IngestPublisher {
  readonly namespace: string;

  constructor(
    private readonly local: LocalContent,
    private readonly meta: NamespacedMetadata,
  ) {
    this.namespace = meta.namespace;
  }

  async info(digest: string): Promise<ContentInfo> {
    return this.meta.content.info(digest);
  }

  async update(info: { digest: string; labels?: Labels }, fieldpaths?: readonly string[]): Promise<ContentInfo> {
    return this.meta.content.update(info, fieldpaths);
  }

  async walk(visit: (info: ContentInfo) => void | Promise<void>, ...filters: string[]): Promise<void> {
    for (const info of this.meta.content.list(...filters)) await visit(info);
  }

  async delete(digest: string): Promise<void> {
    validateDigest(digest);
    await this.local.locks.withLock(fileLock(digest), async () => {
      this.meta.content.delete(digest);
      if (!isDigestInUse(this.local.db, digest)) await this.local.files.removeBlob(digest);
    });
  }

  async readerAt(digest: string): Promise<ReaderAt> {
    const info = this.meta.content.info(digest);
    const handle = await this.openBlob(digest);
    return {
      size: info.size,
      readAt: async (buffer, position) => (await handle.read(buffer, 0, buffer.byteLength, position)).bytesRead,
      close: () => handle.close(),
    };
  }

  async readStream(digest: string, options: ReadOptions = {}): Promise<Readable> {
    this.meta.content.info(digest);
    const handle = await this.openBlob(digest);
    return createReadStream('', { fd: handle, highWaterMark: 1 << 20, ...options });
  }

  async readBlob(digest: string, options: { maxSize?: number } = {}): Promise<Buffer> {
    const info = this.meta.content.info(digest);
    const maxSize = options.maxSize ?? DEFAULT_MAX_BLOB_READ;
    if (info.size > maxSize) {
      throw new ResourceExhaustedError(`blob ${digest} is ${info.size} bytes, more than the ${maxSize} allowed here`);
    }
    const handle = await this.openBlob(digest);
    try {
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  }

  async writer(options: WriterOptions): Promise<ContentWriter> {
    validateIngestRef(options.ref);
    if (options.expected !== undefined) validateDigest(options.expected);
    if (options.total !== undefined && (!Number.isSafeInteger(options.total) || options.total < 0)) {
      throw new InvalidArgumentError(`invalid total ${String(options.total)} for ingest ${options.ref}`);
    }
    if (options.expected !== undefined) await this.shareExisting(options.expected, options.total, options);

    const key = ingestLock(this.namespace, options.ref);
    await this.local.locks.lock(key, options.signal);
    try {
      // Whoever held the ref before us may have committed exactly what we want.
      if (options.expected !== undefined) await this.shareExisting(options.expected, options.total, options);
      return await this.openIngest(options, () => this.local.locks.unlock(key));
    } catch (err) {
      this.local.locks.unlock(key);
      throw err;
    }
  }

  async status(ref: string): Promise<IngestStatus> {
    return this.statusOf(this.meta.ingests.get(ref));
  }

  async listStatuses(...filters: string[]): Promise<IngestStatus[]> {
    return Promise.all(this.meta.ingests.list(...filters).map((record) => this.statusOf(record)));
  }

  async abort(ref: string, signal?: AbortSignal): Promise<void> {
    const key = ingestLock(this.namespace, ref);
    await this.local.locks.withLock(
      key,
      async () => {
        await this.removeIngest(this.meta.ingests.get(ref));
      },
      signal,
    );
  }

  /** IngestPublisher: called by a writer whose bytes verified, its file synced and closed. */
  async publishIngest(request: {
    record: IngestRecord;
    digest: string;
    size: number;
    labels: Labels;
    lease?: string;
  }): Promise<ContentInfo> {
    const { record, digest, size, labels, lease } = request;
    const { files, db, locks } = this.local;
    const dataPath = files.ingestDataPath(record.dir);
    let alreadyExists = false;
    await locks.withLock(fileLock(digest), async () => {
      // A blob already on disk (another namespace, or a racing ref) has the same bytes:
      // keep it and drop ours, so readers of the existing file never see it change.
      if ((await files.blobSize(digest)) === undefined) await files.publish(dataPath, digest);
      db.transaction(() => {
        alreadyExists = this.meta.content.has(digest);
        if (!alreadyExists) this.meta.content.add({ digest, size, labels });
        this.meta.ingests.delete(record.ref);
        if (lease !== undefined) {
          this.meta.leases.addResource(lease, { type: 'content', id: digest });
          this.meta.leases.deleteResource(lease, { type: 'ingests', id: record.ref });
        }
      });
    });
    await files.removeIngest(record.dir);
    if (alreadyExists) throw new AlreadyExistsError(`content ${digest} already exists`);
    return this.meta.content.info(digest);
  }

  /** IngestPublisher: drop an ingest's row first, then its folder (a crash in between leaves an orphan folder that start-up removes). */
  async removeIngest(record: IngestRecord): Promise<void> {
    this.local.db.transaction(() => {
      this.meta.ingests.delete(record.ref);
      this.local.db.sqlite
        .prepare(`DELETE FROM lease_resources WHERE namespace = ? AND type = 'ingests' AND id = ?`)
        .run(this.namespace, record.ref);
    });
    await this.local.files.removeIngest(record.dir);
  }

  /**
   * containerd's rule: asking to write a blob the namespace has is AlreadyExists; a blob
   * another namespace has (same size) is added to this one without copying, and is
   * AlreadyExists too. Either way the caller has what it wanted.
   */
  private async shareExisting(expected: string, total: number | undefined, options: WriterOptions): Promise<void> {
    if (this.meta.content.has(expected)) {
      if (options.lease !== undefined) this.meta.leases.addResource(options.lease, { type: 'content', id: expected });
      throw new AlreadyExistsError(`content ${expected} already exists`);
    }
    await this.local.locks.withLock(fileLock(expected), async () => {
      const size = await this.local.files.blobSize(expected);
      if (size === undefined || !isDigestInUse(this.local.db, expected)) return;
      if (total !== undefined && size !== total) return;
      this.local.db.transaction(() => {
        if (!this.meta.content.has(expected)) this.meta.content.add({ digest: expected, size, labels: options.labels ?? {} });
        if (options.lease !== undefined) this.meta.leases.addResource(options.lease, { type: 'content', id: expected });
      });
      throw new AlreadyExistsError(`content ${expected} already exists`);
    });
  }

  private async openIngest(options: WriterOptions, release: () => void): Promise<ContentWriter> {
    const { files, db } = this.local;
    let record = this.meta.ingests.find(options.ref);
    if (record !== undefined && (record.expected !== options.expected || record.total !== options.total)) {
      // Same ref, different target: what was written belongs to something else.
      if (record.expected !== undefined && options.expected !== undefined && record.expected !== options.expected) {
        await this.removeIngest(record);
        record = undefined;
      } else {
        record = this.meta.ingests.setExpectation(options.ref, options.expected ?? record.expected, options.total ?? record.total);
      }
    }
    if (record === undefined) {
      const dir = BlobFiles.ingestDirName(this.namespace, options.ref);
      await files.removeIngest(dir);
      await mkdir(files.ingestPath(dir), { recursive: true });
      await (await open(files.ingestDataPath(dir), 'w')).close();
      record = db.transaction(() => {
        const created = this.meta.ingests.create({
          ref: options.ref,
          dir,
          ...(options.expected === undefined ? {} : { expected: options.expected }),
          ...(options.total === undefined ? {} : { total: options.total }),
          ...(options.labels === undefined ? {} : { labels: options.labels }),
          ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }),
        });
        if (options.lease !== undefined) this.meta.leases.addResource(options.lease, { type: 'ingests', id: options.ref });
        return created;
      });
    } else if (options.lease !== undefined) {
      this.meta.leases.addResource(options.lease, { type: 'ingests', id: options.ref });
    }

    const handle = await open(files.ingestDataPath(record.dir), 'r+');
    try {
      let offset = (await handle.stat()).size;
      if (record.total !== undefined && offset > record.total) {
        await handle.truncate(0);
        offset = 0;
      }
      const algorithm = record.expected?.startsWith('sha512:') ? 'sha512' : 'sha256';
      const digester = await hashFile(handle, offset, algorithm);
      return new IngestWriter({
        publisher: this,
        record,
        handle,
        digester,
        offset,
        onVerifyFailure: options.onVerifyFailure ?? 'remove',
        release,
        ...(options.lease === undefined ? {} : { lease: options.lease }),
      });
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  private async statusOf(record: IngestRecord): Promise<IngestStatus> {
    let offset = 0;
    let updatedAt = record.updatedAt;
    try {
      const st = await stat(this.local.files.ingestDataPath(record.dir));
      offset = st.size;
      updatedAt = st.mtime;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const status: IngestStatus = { ref: record.ref, offset, startedAt: record.createdAt, updatedAt };
    if (record.total !== undefined) status.total = record.total;
    if (record.expected !== undefined) status.expected = record.expected;
    return status;
  }

  private async openBlob(digest: string) {
    try {
      return await open(this.local.files.blobPath(digest), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new NotFoundError(`content ${digest} is recorded but its blob file is missing`, { cause: err });
      }
      throw err;
    }
  }
}
