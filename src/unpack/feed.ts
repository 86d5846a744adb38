/**
 * The link between a download and the worker that applies it while it downloads.
 *
 * The fetcher writes the compressed bytes into the ingest file; the worker reads the
 * same file behind it (page cache, no copy through the main thread) and is told through
 * a MessagePort how far it may read and when the bytes are final. The compressed digest
 * is verified by the content store's commit, and the coordinator only commits the
 * snapshot after both that and the worker's diffID check passed.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';

/** Main thread -> worker. */
export type FeedMessage =
  | { type: 'available'; bytes: number }
  | { type: 'end'; size: number }
  | { type: 'abort'; reason: string };

/** Worker -> main thread. */
export interface ApplyProgressMessage {
  type: 'progress';
  uncompressedBytes: number;
  entries: number;
}

/** The main thread's end of a feed. */
export class BlobFeed {
  /** Transfer this one to the worker with the task. */
  readonly workerPort: MessagePort;
  private readonly port: MessagePort;
  private closed = false;

  constructor(onProgress?: (progress: ApplyProgressMessage) => void) {
    const channel = new MessageChannel();
    this.port = channel.port1;
    this.workerPort = channel.port2;
    if (onProgress) {
      this.port.on('message', (message: ApplyProgressMessage) => {
        if (message.type === 'progress') onProgress(message);
      });
    }
    // A feed must never keep the process alive on its own.
    this.port.unref();
  }

  /** The first `bytes` of the file are written and may be read. */
  available(bytes: number): void {
    this.send({ type: 'available', bytes });
  }

  /** The file is complete at `size` bytes. */
  end(size: number): void {
    this.send({ type: 'end', size });
  }

  /** The bytes will not come (download failed), or the apply must stop (cancelled): the worker ends the apply with Canceled and closes its files. */
  abort(reason: string): void {
    this.send({ type: 'abort', reason });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.port.close();
  }

  private send(message: FeedMessage): void {
    if (!this.closed) this.port.postMessage(message);
  }
}
