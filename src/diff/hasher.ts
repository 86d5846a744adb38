/**
 * The diffID hash, computed on a helper thread.
 *
 * sha256 runs at about 2 GB/s on one core (SHA-NI): on the applying thread it is a third
 * of the time of an uncompressed layer of big files and a tenth of one of small files,
 * while a second core often idles (the writes are one thread's syscalls). So the apply
 * thread copies each chunk into a ring of shared memory and tells one helper thread per
 * applying thread which bytes to hash; the helper hashes while the apply thread writes.
 * The copy goes to memory that stays mapped (a fresh buffer per chunk would cost as
 * much as the hash itself in page faults): about a twentieth of the hashing cost.
 *
 * - Bounded memory: one ring of `ringBytes` per stream; update() returns a promise when
 *   the ring is full, resolved once the helper has made room and the chunk is copied.
 * - The helper is started on first use, shared by the applies of its thread, and
 *   unreferenced while no digest is pending, so it never keeps a process alive.
 * - If the helper cannot start, the hash is computed inline (same result, slower).
 */
import { Worker } from 'node:worker_threads';
import { Digester, type DigestAlgorithm } from '../digest.js';
import { InternalError } from '../errors.js';
import { logger } from '../log.js';

const log = logger('diff');

export const HasherDefaults = {
  /** Shared memory per stream for bytes copied and not hashed yet. */
  ringBytes: 8 * 1024 * 1024,
} as const;

/** An incremental digest of a stream of chunks. */
export interface StreamDigest {
  /**
   * Feed a chunk. When a promise is returned, the chunk must stay unchanged until it
   * resolves, and it must be awaited before the next update or digest.
   */
  update(chunk: Uint8Array): Promise<void> | undefined;
  /** The digest of everything fed (`algorithm:hex`). */
  digest(): Promise<string>;
  /** Forget the stream (after a failure); safe to call more than once and after digest(). */
  dispose(): void;
}

/** A digest of `algorithm` computed on the helper thread, or inline if it cannot run. */
export function streamDigest(algorithm: DigestAlgorithm): StreamDigest {
  const helper = HelperThread.shared();
  return helper ? helper.open(algorithm) : new InlineDigest(algorithm);
}

class InlineDigest implements StreamDigest {
  private readonly digester: Digester;

  constructor(algorithm: DigestAlgorithm) {
    this.digester = new Digester(algorithm);
  }

  update(chunk: Uint8Array): undefined {
    this.digester.update(chunk);
    return undefined;
  }

  async digest(): Promise<string> {
    return this.digester.digest();
  }

  dispose(): void {}
}

// Plain JavaScript, run with no loader: the helper must not pay for tsx or the app's imports.
const HELPER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const streams = new Map();
parentPort.on('message', (m) => {
  if (m.type === 'open') {
    streams.set(m.id, { hash: createHash(m.algorithm), ring: new Uint8Array(m.ring) });
  } else if (m.type === 'update') {
    const stream = streams.get(m.id);
    if (stream === undefined) return;
    stream.hash.update(stream.ring.subarray(m.offset, m.offset + m.length));
    parentPort.postMessage({ type: 'ack', id: m.id, length: m.length });
  } else if (m.type === 'digest') {
    const stream = streams.get(m.id);
    streams.delete(m.id);
    if (stream !== undefined) parentPort.postMessage({ type: 'digest', id: m.id, hex: stream.hash.digest('hex') });
  } else if (m.type === 'drop') {
    streams.delete(m.id);
  }
});
`;

type HelperReply = { type: 'ack'; id: number; length: number } | { type: 'digest'; id: number; hex: string };

class HelperThread {
  private static current: HelperThread | undefined;
  private static unavailable = false;
  private readonly worker: Worker;
  private readonly streams = new Map<number, RingDigest>();
  /**
   * Rings of finished streams, reused by the next ones: a SharedArrayBuffer is freed only
   * once both threads have collected it, and the helper, which allocates next to nothing,
   * rarely collects — a fresh ring per stream grew the process by gigabytes over many
   * small layers. A ring's stale bytes can only reach a stream that was dropped.
   */
  private readonly spareRings: SharedArrayBuffer[] = [];
  private nextId = 1;

  static shared(): HelperThread | undefined {
    if (HelperThread.current === undefined && !HelperThread.unavailable) {
      try {
        HelperThread.current = new HelperThread();
      } catch (err) {
        HelperThread.unavailable = true;
        log.warn({ err }, 'diffID hashing helper thread could not start: hashing on the applying thread');
      }
    }
    return HelperThread.current;
  }

  private constructor() {
    this.worker = new Worker(HELPER_SOURCE, { eval: true, execArgv: [], stdout: false, stderr: false });
    this.worker.unref();
    this.worker.on('message', (reply: HelperReply) => this.streams.get(reply.id)?.receive(reply));
    const fail = (err: Error): void => {
      if (HelperThread.current === this) HelperThread.current = undefined;
      for (const stream of this.streams.values()) stream.fail(new InternalError(`diffID hashing thread failed: ${err.message}`, { cause: err }));
      this.streams.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
  }

  open(algorithm: DigestAlgorithm): RingDigest {
    const id = this.nextId++;
    const ring = this.spareRings.pop() ?? new SharedArrayBuffer(HasherDefaults.ringBytes);
    const stream = new RingDigest(this, id, algorithm, ring);
    if (this.streams.size === 0) this.worker.ref();
    this.streams.set(id, stream);
    this.post({ type: 'open', id, algorithm, ring });
    return stream;
  }

  post(message: object): void {
    this.worker.postMessage(message);
  }

  /** Stop routing replies to stream `id`; `drop` tells the helper to discard its state too. */
  close(id: number, drop: boolean): void {
    const stream = this.streams.get(id);
    if (stream === undefined) return;
    this.streams.delete(id);
    this.spareRings.push(stream.sharedRing);
    if (drop) this.post({ type: 'drop', id });
    if (this.streams.size === 0) this.worker.unref();
  }
}

class RingDigest implements StreamDigest {
  readonly sharedRing: SharedArrayBuffer;
  private readonly ring: Uint8Array;
  /** Where the next byte goes, and how many bytes the helper has not acknowledged yet. */
  private head = 0;
  private inFlight = 0;
  private waiting: { rest: Uint8Array; resolve: () => void; reject: (err: Error) => void } | undefined;
  private result: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;
  private closed = false;

  constructor(
    private readonly helper: HelperThread,
    private readonly id: number,
    private readonly algorithm: DigestAlgorithm,
    ring: SharedArrayBuffer,
  ) {
    this.sharedRing = ring;
    this.ring = new Uint8Array(ring);
  }

  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    const rest = this.copyIn(chunk);
    if (rest.length === 0) return undefined;
    return new Promise((resolve, reject) => (this.waiting = { rest, resolve, reject }));
  }

  digest(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.result = { resolve, reject };
      this.helper.post({ type: 'digest', id: this.id });
    });
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    this.helper.close(this.id, true);
  }

  receive(reply: HelperReply): void {
    if (reply.type === 'ack') {
      this.inFlight -= reply.length;
      if (this.waiting) {
        this.waiting.rest = this.copyIn(this.waiting.rest);
        if (this.waiting.rest.length === 0) {
          this.waiting.resolve();
          this.waiting = undefined;
        }
      }
      return;
    }
    this.result?.resolve(`${this.algorithm}:${reply.hex}`);
    this.result = undefined;
    // The helper forgot the stream when it sent the digest.
    this.closed = true;
    this.helper.close(this.id, false);
  }

  fail(err: Error): void {
    this.failure = err;
    this.closed = true;
    this.waiting?.reject(err);
    this.result?.reject(err);
    this.waiting = this.result = undefined;
  }

  /** Copy as much of `data` as the ring has room for (in order, wrapping); return the rest. */
  private copyIn(data: Uint8Array): Uint8Array {
    const size = this.ring.length;
    while (data.length > 0 && this.inFlight < size) {
      const length = Math.min(data.length, size - this.inFlight, size - this.head);
      this.ring.set(data.subarray(0, length), this.head);
      this.helper.post({ type: 'update', id: this.id, offset: this.head, length });
      this.head = (this.head + length) % size;
      this.inFlight += length;
      data = data.subarray(length);
    }
    return data;
  }
}
