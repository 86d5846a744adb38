/**
 * Internal: subscribe to an AbortSignal's abort with one real listener per signal.
 *
 * One pull's signal is typically passed to dozens of concurrent lock and semaphore
 * waits. Adding a listener per wait trips Node's MaxListenersExceededWarning (limit 10
 * per EventTarget), and raising the limit on a caller's signal is not ours to do, so
 * the waits on one signal share a single listener. Not part of the public API.
 */

interface Subscription {
  readonly listener: () => void;
  readonly callbacks: Set<() => void>;
}

const subscriptions = new WeakMap<AbortSignal, Subscription>();

/**
 * Call `callback` once when `signal` aborts. Returns an unsubscribe function that is
 * safe to call more than once and after the abort. The signal must not be aborted yet
 * (an aborted signal never fires again).
 */
export function onAbort(signal: AbortSignal, callback: () => void): () => void {
  let sub = subscriptions.get(signal);
  if (sub === undefined) {
    const callbacks = new Set<() => void>();
    const listener = (): void => {
      subscriptions.delete(signal);
      // Callbacks unsubscribed during this loop are skipped, as they should be.
      for (const cb of callbacks) cb();
      callbacks.clear();
    };
    sub = { listener, callbacks };
    subscriptions.set(signal, sub);
    signal.addEventListener('abort', listener, { once: true });
  }
  // Wrapped so the same function subscribed twice gets two independent entries.
  const entry = (): void => callback();
  const current = sub;
  current.callbacks.add(entry);
  return () => {
    if (!current.callbacks.delete(entry)) return;
    if (current.callbacks.size === 0 && subscriptions.get(signal) === current) {
      subscriptions.delete(signal);
      signal.removeEventListener('abort', current.listener);
    }
  };
}
