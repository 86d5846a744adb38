/**
 * KeyedMutex: one mutex per string key, created on demand and dropped when unused.
 *
 * Modelled on containerd's pkg/kmutex. The pull path uses it to serialise work on the
 * same object (`blob://<digest>`, `sn://<snapshotter>/<chainID>`) while letting work on
 * different objects run in parallel, without keeping a lock object alive for every key
 * ever seen.
 */

import { canceledFrom, InternalError } from '../errors.js';
import { onAbort } from './abort.js';
import { WaitQueue } from './wait-queue.js';

interface Waiter {
  /** Hand the lock to this waiter: detach its abort listener and wake it. */
  grant: () => void;
}

/**
 * A map of independent mutexes keyed by string.
 *
 * Semantics:
 * - Waiters on one key are served strictly FIFO. `unlock` hands the lock directly to
 *   the next waiter (the key never becomes free in between), so a late `tryLock` or
 *   `lock` cannot barge ahead of the queue and only one waiter is woken per unlock.
 * - `lock` is cancellable through an AbortSignal. A waiter whose signal aborts leaves
 *   the queue and rejects with a CanceledError. If the signal aborts after the lock was
 *   handed over but before the caller resumed, the lock is passed on to the next waiter
 *   and the caller still gets the CanceledError, so a rejected `lock` never holds the
 *   key and a resolved one always does (like golang.org/x/sync/semaphore, which "puts
 *   the tokens back" in the same race).
 * - An already-aborted signal rejects even if the key is free: the abort "happened
 *   before" the call.
 * - Locks are not owned by a task: any code may `unlock` a held key, as with Go's
 *   sync.Mutex. Unlocking a key that is not held is a bug and throws InternalError.
 * - A key's entry exists only while the key is held, so `size` returns to 0 once all
 *   work is done; tests use this to detect leaks.
 */
export class KeyedMutex {
  /** Present iff the key is held; the queue holds its waiters (possibly none). */
  private readonly locks = new Map<string, WaitQueue<Waiter>>();

  /** Number of keys currently held (a key with waiters is always held). */
  get size(): number {
    return this.locks.size;
  }

  /** Whether someone holds `key` right now (or it has been handed to a waiter that has not resumed yet). */
  isLocked(key: string): boolean {
    return this.locks.has(key);
  }

  /**
   * Take the lock without waiting. Fails if the key is held, including when it is being
   * handed to a queued waiter, so it never jumps the queue.
   */
  tryLock(key: string): boolean {
    if (this.locks.has(key)) return false;
    this.locks.set(key, new WaitQueue());
    return true;
  }

  /**
   * Wait until `key` is ours. Resolves once the caller holds the lock, which it must
   * then release with `unlock`; rejects with CanceledError (and without holding the
   * lock) if `signal` aborts first.
   */
  async lock(key: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw canceledFrom(signal);
    const queue = this.locks.get(key);
    if (queue === undefined) {
      this.locks.set(key, new WaitQueue());
      return;
    }
    await new Promise<void>((resolve, reject) => {
      if (signal === undefined) {
        queue.push({ grant: resolve });
        return;
      }
      const unsubscribe = onAbort(signal, () => {
        // Still queued (a grant detaches this listener first), so the key stays with
        // its current holder; just leave the line.
        queue.remove(node);
        reject(canceledFrom(signal));
      });
      const node = queue.push({
        grant: () => {
          unsubscribe();
          resolve();
        },
      });
    });
    // The lock was handed to us; if the signal fired in the meantime, pass it on.
    if (signal?.aborted) {
      this.unlock(key);
      throw canceledFrom(signal);
    }
  }

  /**
   * Release `key`: hand it to the oldest waiter, or forget the key if nobody waits.
   * Throws InternalError if the key is not held (a double unlock is a bug upstream).
   */
  unlock(key: string): void {
    const queue = this.locks.get(key);
    if (queue === undefined) {
      throw new InternalError(`kmutex: unlock of unlocked key ${JSON.stringify(key)}`);
    }
    const next = queue.shift();
    if (next === undefined) {
      this.locks.delete(key);
      return;
    }
    next.grant();
  }

  /**
   * Run `fn` while holding `key` and release it however `fn` ends. If `signal` aborts
   * while waiting, `fn` is never called and the CanceledError propagates; once `fn`
   * has started, cancelling it is `fn`'s business.
   */
  async withLock<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.lock(key, signal);
    try {
      return await fn();
    } finally {
      this.unlock(key);
    }
  }
}
