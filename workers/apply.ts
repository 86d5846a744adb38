/**
 * Piscina task: apply one layer. Runs in a worker thread: decompress + tar apply +
 * diffID (+ syncfs) for the layer whose compressed bytes are at `blobPath`, which may
 * still be growing (see src/unpack/feed.ts). Everything it needs is in the task; it
 * returns the apply stats (with the diffID) to the coordinator.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { MessagePort } from 'node:worker_threads';
import { applyLayer } from '../src/diff/apply.js';
import type { ApplyOptions, ApplyStats } from '../src/diff/types.js';
import { CanceledError, serializeError, type SerializedError } from '../src/errors.js';
import type { Mount } from '../src/snapshots/snapshotter.js';
import type { ApplyProgressMessage, FeedMessage } from '../src/unpack/feed.js';

export interface ApplyTask {
  /** The committed blob: read when there is no ingest, or when the ingest was committed before we opened it. */
  blobPath: string;
  /** The ingest file still being written (with `feed`). */
  ingestPath?: string;
  /** Bytes already in the file when the task was sent. */
  available: number;
  /** Final size when known to be complete already (a committed blob); else the feed ends it. */
  size?: number;
  /**
   * The coordinator's channel: how far a growing file may be read, and the request to
   * stop. Stopping is cooperative, not a worker termination: a terminated thread would
   * leave its file descriptors open (threads share the process's fd table), and with them
   * the space of the snapshot files the coordinator then deletes.
   */
  feed: MessagePort;
  mounts: Mount[];
  options: Omit<ApplyOptions, 'signal'>;
}

/**
 * Errors are returned, not thrown: a thrown error crosses the thread boundary as a plain
 * Error and loses its `code`, which callers branch on.
 */
export type ApplyTaskResult = { stats: ApplyStats } | { error: SerializedError };

const READ_CHUNK = 1 << 20;
const PROGRESS_EVERY_BYTES = 8 << 20;

/**
 * The ingest if it is still there, else the blob it became: a small layer can be fetched
 * and committed (renamed) before this task starts. An open fd survives the rename.
 */
function openLayerFile(task: ApplyTask): number {
  if (task.ingestPath !== undefined) {
    try {
      return openSync(task.ingestPath, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return openSync(task.blobPath, 'r');
}

/**
 * Reads a file that another thread may still be appending to, as far as the feed allows;
 * an abort on the feed ends the read and fires `stop`.
 */
async function* growingFile(task: ApplyTask, stop: AbortController): AsyncGenerator<Buffer> {
  const fd = openLayerFile(task);
  let available = task.available;
  let end = task.size;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const onMessage = (message: FeedMessage) => {
    if (message.type === 'available') available = Math.max(available, message.bytes);
    else if (message.type === 'end') end = available = message.size;
    else stop.abort(new CanceledError(`layer apply stopped: ${message.reason}`));
    wake?.();
  };
  // Also when the apply ended without us: a read waiting for bytes must not hold the fd.
  const onStop = () => {
    failure = stop.signal.reason as Error;
    wake?.();
  };
  task.feed.on('message', onMessage);
  stop.signal.addEventListener('abort', onStop, { once: true });
  try {
    let position = 0;
    for (;;) {
      if (failure) throw failure;
      if (end !== undefined && position >= end) return;
      if (position < available) {
        const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, available - position));
        const read = readSync(fd, buffer, 0, buffer.length, position);
        if (read === 0) throw new Error(`layer file ${task.ingestPath ?? task.blobPath} ended at ${position} bytes, ${available} expected`);
        position += read;
        yield read === buffer.length ? buffer : buffer.subarray(0, read);
        continue;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    task.feed.off('message', onMessage);
    stop.signal.removeEventListener('abort', onStop);
    closeSync(fd);
  }
}

export default async function applyTask(task: ApplyTask): Promise<ApplyTaskResult> {
  let reported = 0;
  const stop = new AbortController();
  try {
    const stats = await applyLayer(Readable.from(growingFile(task, stop), { objectMode: false }), task.mounts, {
      ...task.options,
      signal: stop.signal,
      onProgress: (progress) => {
        if (progress.uncompressedBytes - reported < PROGRESS_EVERY_BYTES) return;
        reported = progress.uncompressedBytes;
        const message: ApplyProgressMessage = { type: 'progress', ...progress };
        task.feed.postMessage(message);
      },
    });
    return { stats };
  } catch (err) {
    return { error: serializeError(err) };
  } finally {
    stop.abort(new CanceledError('layer apply ended'));
    task.feed.close();
  }
}
