/**
 * Semaphore: a weighted counting semaphore with FIFO waiters.
 *
 * Modelled on golang.org/x/sync/semaphore. The pull path bounds concurrent downloads
 * (`maxConcurrentDownloads`) and other shared resources with it; weights let one
 * expensive job count for several cheap ones.
 */

import { canceledFrom, InternalError, InvalidArgumentError } from '../errors.js';
import { onAbort } from './abort.js';
import { WaitQueue } from './wait-queue.js';

interface Waiter {
  readonly weight: number;
  /** Hand the tokens (already counted as in use) to this waiter and wake it. */
  grant: () => void;
}

/** Options for `Semaphore.run`. */
export interface SemaphoreRunOptions {
  /** Tokens the job holds while it runs; defaults to 1. */
  weight?: number;
  /** Aborts the wait for tokens (not the job once it has started). */
  signal?: AbortSignal;
}

/**
 * A pool of `capacity` tokens, taken and returned in integer weights.
 *
 * Semantics:
 * - Requests are served strictly in arrival order: while a heavy request waits at the
 *   head, later light requests wait too even if enough tokens are free for them. This
 *   keeps heavy jobs from starving behind a stream of light ones.
 * - A waiter whose signal aborts leaves the queue and rejects with CanceledError; if it
 *   was at the head, the waiters now at the front are woken as far as tokens allow. If
 *   the signal aborts after the tokens were granted but before the caller resumed, the
 *   tokens are returned and the caller still gets the CanceledError, so a rejected
 *   `acquire` never holds tokens.
 * - An already-aborted signal rejects even when tokens are free.
 * - A weight that is not a positive integer, or that exceeds the capacity (it could
 *   never be satisfied and would block everyone behind it forever), is rejected with
 *   InvalidArgumentError instead of waiting.
 */
export class Semaphore {
  /** Total tokens. */
  readonly capacity: number;
  private used = 0;
  private readonly queue = new WaitQueue<Waiter>();

  /** `capacity` must be a positive integer; throws InvalidArgumentError otherwise. */
  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new InvalidArgumentError(`semaphore capacity must be a positive integer, got ${String(capacity)}`);
    }
    this.capacity = capacity;
  }

  /**
   * Tokens not held right now. Free tokens are not necessarily usable: while a larger
   * request waits at the head, new requests queue behind it.
   */
  get available(): number {
    return this.capacity - this.used;
  }

  /** Number of queued `acquire` calls. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Wait for `weight` tokens. Resolves once they are held (return them with `release`);
   * rejects with CanceledError, holding nothing, if `signal` aborts first.
   */
  async acquire(weight = 1, signal?: AbortSignal): Promise<void> {
    this.checkWeight(weight);
    if (signal?.aborted) throw canceledFrom(signal);
    if (this.queue.length === 0 && this.available >= weight) {
      this.used += weight;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      if (signal === undefined) {
        this.queue.push({ weight, grant: resolve });
        return;
      }
      const unsubscribe = onAbort(signal, () => {
        // Still queued (a grant detaches this listener first). Leaving may unblock
        // the waiters behind us if we were the head.
        this.queue.remove(node);
        reject(canceledFrom(signal));
        this.notify();
      });
      const node = this.queue.push({
        weight,
        grant: () => {
          unsubscribe();
          resolve();
        },
      });
    });
    // Tokens were granted; if the signal fired in the meantime, put them back.
    if (signal?.aborted) {
      this.release(weight);
      throw canceledFrom(signal);
    }
  }

  /**
   * Take `weight` tokens only if that needs no waiting and nobody is queued (it never
   * jumps the queue). Throws InvalidArgumentError for a weight `acquire` would reject.
   */
  tryAcquire(weight = 1): boolean {
    this.checkWeight(weight);
    if (this.queue.length > 0 || this.available < weight) return false;
    this.used += weight;
    return true;
  }

  /**
   * Return `weight` tokens and wake the waiters at the front that now fit. Releasing
   * more than is held is a bug upstream and throws InternalError.
   */
  release(weight = 1): void {
    if (!Number.isSafeInteger(weight) || weight < 1) {
      throw new InvalidArgumentError(`semaphore weight must be a positive integer, got ${String(weight)}`);
    }
    if (weight > this.used) {
      throw new InternalError(`semaphore: released ${weight} tokens but only ${this.used} are held`);
    }
    this.used -= weight;
    this.notify();
  }

  /**
   * Run `fn` holding `weight` tokens and return them however `fn` ends. If `signal`
   * aborts while waiting, `fn` is never called.
   */
  async run<T>(fn: () => Promise<T>, options: SemaphoreRunOptions = {}): Promise<T> {
    const weight = options.weight ?? 1;
    await this.acquire(weight, options.signal);
    try {
      return await fn();
    } finally {
      this.release(weight);
    }
  }

  /** Grant tokens to waiters in order, stopping at the first that does not fit. */
  private notify(): void {
    for (;;) {
      const head = this.queue.peek();
      if (head === undefined || this.available < head.weight) return;
      this.queue.shift();
      this.used += head.weight;
      head.grant();
    }
  }

  private checkWeight(weight: number): void {
    if (!Number.isSafeInteger(weight) || weight < 1) {
      throw new InvalidArgumentError(`semaphore weight must be a positive integer, got ${String(weight)}`);
    }
    if (weight > this.capacity) {
      throw new InvalidArgumentError(`semaphore weight ${weight} exceeds capacity ${this.capacity}`);
    }
  }
}
