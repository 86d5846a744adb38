/**
 * SingleFlight: collapse concurrent calls for the same key into one execution.
 *
 * Modelled on golang.org/x/sync/singleflight. Concurrent pulls of the same blob or
 * manifest should cause one download, not one per puller; the others wait for it and
 * get its result.
 */

/** Result of `SingleFlight.do`. */
export interface SingleFlightResult<T> {
  /** What the shared execution resolved to. */
  value: T;
  /**
   * Whether the value was given to more than one caller (Go's `shared`): always true
   * for callers that joined a running execution, and true for the caller that started
   * it if anyone joined.
   */
  shared: boolean;
}

interface Call<T> {
  readonly promise: Promise<T>;
  joiners: number;
}

/**
 * Deduplicates in-flight async work by key.
 *
 * Semantics:
 * - The first `do(key, fn)` runs `fn`; calls with the same key made before it settles
 *   do not run their own `fn` and get the same value or the same error object.
 * - Only in-flight work is shared, nothing is cached: the key is forgotten as soon as
 *   the execution settles (before any caller resumes), so a later call runs again and
 *   sees fresh state.
 * - There is no cancellation: one caller giving up must not cancel the work the others
 *   wait for. Callers that need to stop waiting race the returned promise themselves.
 */
export class SingleFlight<T> {
  private readonly calls = new Map<string, Call<T>>();

  /** Number of keys with an execution in flight. */
  get size(): number {
    return this.calls.size;
  }

  /** Whether an execution for `key` is running (a `do` now would join it). */
  inFlight(key: string): boolean {
    return this.calls.has(key);
  }

  /**
   * Run `fn` for `key`, or join the execution already running for it. A synchronous
   * throw from `fn` is treated like a rejection and shared the same way.
   */
  do(key: string, fn: () => Promise<T>): Promise<SingleFlightResult<T>> {
    const running = this.calls.get(key);
    if (running !== undefined) {
      running.joiners++;
      return running.promise.then((value) => ({ value, shared: true }));
    }

    let resolve!: (value: T) => void;
    let reject!: (reason: unknown) => void;
    const call: Call<T> = {
      promise: new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      }),
      joiners: 0,
    };
    // Registered before fn runs so inFlight(key) is already true inside fn. (As in Go,
    // fn awaiting do(key) for its own key would wait on itself forever.)
    this.calls.set(key, call);
    const settle = (): void => {
      if (this.calls.get(key) === call) this.calls.delete(key);
    };
    try {
      fn().then(
        (value) => {
          settle();
          resolve(value);
        },
        (err: unknown) => {
          settle();
          reject(err);
        },
      );
    } catch (err: unknown) {
      settle();
      reject(err);
    }
    return call.promise.then((value) => ({ value, shared: call.joiners > 0 }));
  }
}
