/**
 * Concurrency primitives for the pull path: per-key locks (kmutex), a weighted FIFO
 * semaphore and singleflight call deduplication. All waits take an AbortSignal where
 * waiting is involved and fail with CanceledError when it fires.
 */

export { KeyedMutex } from './keyed-mutex.js';
export { Semaphore } from './semaphore.js';
export type { SemaphoreRunOptions } from './semaphore.js';
export { SingleFlight } from './singleflight.js';
export type { SingleFlightResult } from './singleflight.js';
