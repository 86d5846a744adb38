/**
 * Retry policy shared by registry requests and blob downloads: a bounded number of
 * attempts with exponential backoff and jitter, or the server's Retry-After.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { canceledFrom, isUnavailable, throwIfAborted } from '../errors.js';

export interface RetryPolicy {
  /** Tries in all, the first included. For downloads: tries in a row that made no progress. */
  attempts: number;
  /** Backoff before the second try; doubled each time, with jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A longer Retry-After is cut to this. */
  maxRetryAfterMs: number;
}

export const RETRY_DEFAULTS: Readonly<RetryPolicy> = {
  attempts: 5,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
};

export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...RETRY_DEFAULTS, ...overrides };
  if (!Number.isSafeInteger(policy.attempts) || policy.attempts < 1) policy.attempts = 1;
  return policy;
}

/**
 * Delay before try number `attempt + 1` (attempt counts from 1): exponential, with
 * "equal jitter" (half fixed, half random) so that many clients cut off together do
 * not come back together.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return exponential / 2 + Math.random() * (exponential / 2);
}

/** Retry-After (RFC 9110): delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | undefined, policy: RetryPolicy): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  let ms: number;
  if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    const date = Date.parse(trimmed);
    if (Number.isNaN(date)) return undefined;
    ms = date - Date.now();
  }
  return Math.min(Math.max(0, ms), policy.maxRetryAfterMs);
}

/** Sleep, failing with CanceledError when the signal fires. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal);
  try {
    await delay(ms, undefined, signal === undefined ? {} : { signal });
  } catch (err) {
    if (signal?.aborted) throw canceledFrom(signal);
    throw err;
  }
}

/** Errors worth another try: the registry or the network was unavailable. */
export function isRetryable(err: unknown): boolean {
  return isUnavailable(err);
}
