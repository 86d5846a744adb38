/**
 * Test helpers for the sync primitives: observe whether a promise has settled without
 * timing assumptions, and a seeded PRNG so randomised schedules are reproducible.
 */

/**
 * Let every pending promise continuation run. setImmediate fires only after the
 * microtask queue is drained, so anything that can settle without a macrotask has.
 */
export function flush(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

export type State = 'pending' | 'fulfilled' | 'rejected';

export interface Tracked<T> {
  readonly state: State;
  readonly value: T | undefined;
  readonly error: unknown;
  readonly promise: Promise<T>;
}

/** Watch a promise's state; handlers are attached at once, so no unhandled rejections. */
export function track<T>(promise: Promise<T>): Tracked<T> {
  const t: { state: State; value: T | undefined; error: unknown; promise: Promise<T> } = {
    state: 'pending',
    value: undefined,
    error: undefined,
    promise,
  };
  promise.then(
    (v) => {
      t.state = 'fulfilled';
      t.value = v;
    },
    (e: unknown) => {
      t.state = 'rejected';
      t.error = e;
    },
  );
  return t;
}

/** mulberry32: small deterministic PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
