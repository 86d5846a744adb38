/**
 * A resumable write into the content store. The bytes go to `ingest/<dir>/data`; its
 * length is the resume offset, which survives a process restart. Commit verifies size
 * and digest, then publishes the file with one atomic rename.
 */
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { Digester, digesterFor } from '../digest.js';
import {
  DigestMismatchError,
  FailedPreconditionError,
  InvalidArgumentError,
  ResourceExhaustedError,
  SizeMismatchError,
} from '../errors.js';
import { logger } from '../log.js';
import type { ContentInfo } from '../metadata/content.js';
import type { IngestRecord } from '../metadata/ingests.js';
import type { Labels } from '../metadata/labels.js';

const log = logger('content');

/** What an ingest is and how far it got. */
export interface IngestStatus {
  ref: string;
  /** Bytes written so far: where a resumed download continues. */
  offset: number;
  total?: number;
  expected?: string;
  startedAt: Date;
  updatedAt: Date;
}

export interface CommitOptions {
  /** Expected size; defaults to the writer's `total`. */
  size?: number;
  /** Expected digest; defaults to the writer's `expected`. Without either, whatever was written is committed. */
  expected?: string;
  labels?: Labels;
}

export interface ContentWriter {
  readonly ref: string;
  /** Bytes written so far. */
  readonly offset: number;
  /** Digest of the bytes written so far. */
  digest(): string;
  status(): IngestStatus;
  write(chunk: Uint8Array): Promise<void>;
  /** Cut the ingest back to `size` bytes (0 restarts it). */
  truncate(size: number): Promise<void>;
  /**
   * Verify and publish. Throws SizeMismatch (short: the writer stays usable; long:
   * per `onVerifyFailure`), DigestMismatch (per `onVerifyFailure`), or AlreadyExists
   * when the namespace already has the blob (the ingest is cleaned up: that is success).
   */
  commit(options?: CommitOptions): Promise<ContentInfo>;
  /** Stop writing but keep the ingest for a later resume. */
  close(): Promise<void>;
  /** A Writable that feeds `write`, for `pipeline(body, writer.stream())`. */
  stream(): Writable;
}

/** What a writer needs from its store to finish: publish verified bytes, or drop the ingest. */
export interface IngestPublisher {
  publishIngest(request: {
    record: IngestRecord;
    digest: string;
    size: number;
    labels: Labels;
    lease?: string;
  }): Promise<ContentInfo>;
  removeIngest(record: IngestRecord): Promise<void>;
}

export interface IngestWriterParams {
  publisher: IngestPublisher;
  record: IngestRecord;
  handle: FileHandle;
  digester: Digester;
  offset: number;
  lease?: string;
  onVerifyFailure: 'remove' | 'keep';
  /** Releases the ingest's lock; called exactly once when the writer is done. */
  release: () => void;
}

export class IngestWriter implements ContentWriter {
  readonly ref: string;
  private readonly publisher: IngestPublisher;
  private readonly record: IngestRecord;
  private handle: FileHandle | undefined;
  private digester: Digester;
  private written: number;
  private updatedAt = new Date();
  private busy = false;
  private finished = false;
  private readonly params: IngestWriterParams;

  constructor(params: IngestWriterParams) {
    this.params = params;
    this.publisher = params.publisher;
    this.record = params.record;
    this.ref = params.record.ref;
    this.handle = params.handle;
    this.digester = params.digester;
    this.written = params.offset;
  }

  get offset(): number {
    return this.written;
  }

  digest(): string {
    return this.digester.digest();
  }

  status(): IngestStatus {
    const status: IngestStatus = {
      ref: this.ref,
      offset: this.written,
      startedAt: this.record.createdAt,
      updatedAt: this.updatedAt,
    };
    if (this.record.total !== undefined) status.total = this.record.total;
    if (this.record.expected !== undefined) status.expected = this.record.expected;
    return status;
  }

  async write(chunk: Uint8Array): Promise<void> {
    const handle = this.open();
    const total = this.record.total;
    // Refuse bytes past the announced size at once: a hostile or broken server must not
    // be able to fill the disk before the digest check at commit.
    if (total !== undefined && this.written + chunk.byteLength > total) {
      throw new SizeMismatchError(total, this.written + chunk.byteLength, `ingest ${this.ref}`);
    }
    this.exclusive();
    try {
      let done = 0;
      while (done < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done, this.written + done).catch((err: unknown) => {
          const code = (err as { code?: unknown }).code;
          if (code === 'ENOSPC' || code === 'EDQUOT') throw new ResourceExhaustedError(`ingest ${this.ref}: no space left on device (${code})`, { cause: err });
          throw err;
        });
        done += bytesWritten;
      }
      this.digester.update(chunk);
      this.written += chunk.byteLength;
      this.updatedAt = new Date();
    } finally {
      this.busy = false;
    }
  }

  async truncate(size: number): Promise<void> {
    const handle = this.open();
    if (!Number.isSafeInteger(size) || size < 0 || size > this.written) {
      throw new InvalidArgumentError(`cannot truncate ingest ${this.ref} to ${size} bytes (it has ${this.written})`);
    }
    this.exclusive();
    try {
      await handle.truncate(size);
      this.digester = await hashFile(handle, size, this.digester.algorithm);
      this.written = size;
      this.updatedAt = new Date();
    } finally {
      this.busy = false;
    }
  }

  async commit(options: CommitOptions = {}): Promise<ContentInfo> {
    const handle = this.open();
    this.exclusive();
    const size = options.size ?? this.record.total;
    const expected = options.expected ?? this.record.expected;
    const what = `ingest ${this.ref}`;
    try {
      // Short: more bytes may still come (a resumed download); the writer stays usable.
      if (size !== undefined && this.written < size) throw new SizeMismatchError(size, this.written, what);
      if (size !== undefined && this.written !== size) {
        await this.failVerification(new SizeMismatchError(size, this.written, what));
      }
      let actual = this.digester.digest();
      if (expected !== undefined && !expected.startsWith(`${this.digester.algorithm}:`)) {
        actual = (await hashFile(handle, this.written, digesterFor(expected).algorithm)).digest();
      }
      if (expected !== undefined && actual !== expected) {
        await this.failVerification(new DigestMismatchError(expected, actual, what));
      }
      await handle.sync();
      await handle.close();
      this.handle = undefined;
      try {
        return await this.publisher.publishIngest({
          record: this.record,
          digest: actual,
          size: this.written,
          labels: options.labels ?? this.record.labels,
          ...(this.params.lease === undefined ? {} : { lease: this.params.lease }),
        });
      } finally {
        this.finish();
      }
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<void> {
    if (this.handle === undefined) return;
    const handle = this.handle;
    this.handle = undefined;
    try {
      await handle.close();
    } finally {
      this.finish();
    }
  }

  stream(): Writable {
    return new Writable({
      highWaterMark: 1 << 20,
      write: (chunk: Buffer, _encoding, callback) => {
        this.write(chunk).then(() => callback(), callback);
      },
    });
  }

  /** Close the writer after bad bytes; the ingest is removed or kept per `onVerifyFailure`. */
  private async failVerification(error: SizeMismatchError | DigestMismatchError): Promise<never> {
    const handle = this.handle;
    this.handle = undefined;
    try {
      await handle?.close();
      if (this.params.onVerifyFailure === 'remove') {
        await this.publisher.removeIngest(this.record);
        log.debug({ ref: this.ref, err: error.message }, 'ingest failed verification and was removed');
      }
    } finally {
      this.finish();
    }
    throw error;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.params.release();
  }

  private open(): FileHandle {
    if (this.handle === undefined) throw new FailedPreconditionError(`writer for ingest ${this.ref} is closed`);
    return this.handle;
  }

  private exclusive(): void {
    if (this.busy) throw new FailedPreconditionError(`writer for ingest ${this.ref} is busy: await each call`);
    this.busy = true;
  }
}

/** Rebuild the hash state of the first `size` bytes of a file (resume, truncate). */
export async function hashFile(handle: FileHandle, size: number, algorithm: Digester['algorithm']): Promise<Digester> {
  const digester = new Digester(algorithm);
  const buffer = Buffer.allocUnsafe(Math.min(Math.max(size, 1), 1 << 20));
  let position = 0;
  while (position < size) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - position), position);
    if (bytesRead === 0) throw new SizeMismatchError(size, position, 'ingest data');
    digester.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return digester;
}
