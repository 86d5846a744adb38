/**
 * fetchBlob: a descriptor's bytes from a Fetcher into the content store, resumable and
 * verified (containerd's remotes.FetchHandler + content.OpenWriter):
 *
 *   writer(ref, expected digest + size) ── AlreadyExists ──▶ done (someone has it)
 *     loop: fetch from writer.offset (Range) ──▶ write ── cut? back off, resume from the new offset
 *   commit: size + digest verified, else DigestMismatch and the ingest is dropped
 *
 * Big blobs can be fetched as N ranges at once (containerd 2.1's multipart fetch): the
 * chunks arrive in any order but are written in order, so the ingest is always a prefix
 * of the blob and stays resumable; at most `concurrency` chunks are held in memory.
 * A source that ignores ranges is detected on the first chunk and read as one stream.
 */
import type { ContentStore } from '../content/index.js';
import { validateDescriptor, type Descriptor } from '../descriptor.js';
import { canceledFrom, InvalidArgumentError, isAlreadyExists, isCanceled, throwIfAborted, UnavailableError } from '../errors.js';
import { isIndexType, isLayerType, isManifestType, isConfigType } from '../images/mediatypes.js';
import { logger } from '../log.js';
import { onAbort } from '../sync/abort.js';
import type { ContentWriter } from '../content/index.js';
import type { Labels } from '../metadata/labels.js';
import { backoffDelay, isRetryable, retryPolicy, sleep, type RetryPolicy } from './retry.js';
import { isRangeFetcher, type Fetcher, type RangeFetcher } from './types.js';

const log = logger('remote');

export interface ParallelFetchOptions {
  /** Bytes per ranged request. */
  chunkSize: number;
  /** Ranged requests in flight (and chunks held in memory) at once. */
  concurrency: number;
  /** Smaller blobs are fetched as one stream. */
  minSize: number;
}

export const PARALLEL_FETCH_DEFAULTS: Readonly<ParallelFetchOptions> = {
  chunkSize: 8 << 20,
  concurrency: 4,
  minSize: 32 << 20,
};

export interface FetchBlobOptions {
  fetcher: Fetcher;
  content: ContentStore;
  desc: Descriptor;
  /** Ingest ref: the same ref resumes the same bytes. Default: `<kind>-<digest>`. */
  ref?: string;
  /** Lease that holds the ingest and then the blob. */
  lease?: string;
  labels?: Labels;
  signal?: AbortSignal;
  /** Called with the bytes held so far (resumed bytes included) and the total. */
  onProgress?: (bytes: number, total: number) => void;
  /** Fetch big blobs as parallel ranges (when the fetcher can). `true` uses the defaults. */
  parallel?: boolean | Partial<ParallelFetchOptions>;
  /** Tries in a row without progress before giving up, and their backoff. */
  retry?: Partial<RetryPolicy>;
}

export interface FetchBlobResult {
  descriptor: Descriptor;
  /** `exists`: the store had it (or another writer committed it); nothing was written. */
  status: 'exists' | 'fetched';
  /** Bytes written by this call (a resume writes fewer than the size). */
  bytesWritten: number;
}

/** containerd's MakeRefKey: the ingest ref for a descriptor. */
export function ingestRef(desc: Descriptor): string {
  const kind = isIndexType(desc.mediaType)
    ? 'index'
    : isManifestType(desc.mediaType)
      ? 'manifest'
      : isConfigType(desc.mediaType)
        ? 'config'
        : isLayerType(desc.mediaType)
          ? 'layer'
          : 'unknown';
  return `${kind}-${desc.digest}`;
}

function parallelOptions(value: FetchBlobOptions['parallel']): ParallelFetchOptions | undefined {
  if (value === undefined || value === false) return undefined;
  const options = { ...PARALLEL_FETCH_DEFAULTS, ...(value === true ? {} : value) };
  for (const key of ['chunkSize', 'concurrency', 'minSize'] as const) {
    if (!Number.isSafeInteger(options[key]) || options[key] < (key === 'minSize' ? 0 : 1)) {
      throw new InvalidArgumentError(`parallel.${key} must be a positive integer, got ${String(options[key])}`);
    }
  }
  return options;
}

/** Thrown by a chunk whose source ignored its range: fall back to one stream. */
class RangeIgnored extends Error {}

export async function fetchBlob(options: FetchBlobOptions): Promise<FetchBlobResult> {
  const { fetcher, content, signal } = options;
  const desc = validateDescriptor(options.desc);
  const policy = retryPolicy(options.retry);
  const parallel = parallelOptions(options.parallel);
  throwIfAborted(signal);

  let writer: ContentWriter;
  try {
    writer = await content.writer({
      ref: options.ref ?? ingestRef(desc),
      expected: desc.digest,
      total: desc.size,
      ...(options.lease === undefined ? {} : { lease: options.lease }),
      ...(options.labels === undefined ? {} : { labels: options.labels }),
      ...(signal === undefined ? {} : { signal }),
    });
  } catch (err) {
    if (isAlreadyExists(err)) return { descriptor: desc, status: 'exists', bytesWritten: 0 };
    throw err;
  }

  const startOffset = writer.offset;
  const progress = (): void => options.onProgress?.(writer.offset, desc.size);
  let committed = false;
  try {
    progress();
    if (startOffset > 0) log.debug({ digest: desc.digest, offset: startOffset }, 'resuming download');
    const download: Download = { writer, desc, policy, progress, signal };
    let sequential = true;
    if (parallel !== undefined && isRangeFetcher(fetcher) && desc.size - writer.offset >= parallel.minSize) {
      try {
        await fetchRanges(fetcher, download, parallel);
        sequential = false;
      } catch (err) {
        if (!(err instanceof RangeIgnored)) throw err;
        log.debug({ digest: desc.digest }, 'source ignores Range; fetching as one stream');
      }
    }
    if (sequential) await fetchSequential(fetcher, download);
    try {
      await writer.commit();
    } catch (err) {
      // Another writer of the same digest under another ref got there first: success.
      if (!isAlreadyExists(err)) throw err;
    }
    committed = true;
    return { descriptor: desc, status: 'fetched', bytesWritten: desc.size - startOffset };
  } finally {
    // Keeps the ingest (and its bytes) for a later resume; a no-op after commit.
    if (!committed) await writer.close().catch(() => undefined);
  }
}

/** One download in progress: where the bytes go and how it reports and retries. */
interface Download {
  writer: ContentWriter;
  desc: Descriptor;
  policy: RetryPolicy;
  progress: () => void;
  signal: AbortSignal | undefined;
}

/**
 * Run `attempt` until the writer holds the whole blob. A retryable failure backs off
 * and goes again from the writer's offset; only tries in a row that added no byte count
 * against the policy's attempts.
 */
async function withResume(download: Download, attempt: () => Promise<void>): Promise<void> {
  const { writer, desc, policy, signal } = download;
  let failures = 0;
  while (writer.offset < desc.size) {
    const before = writer.offset;
    try {
      await attempt();
      if (writer.offset < desc.size) throw new UnavailableError(`source ended after ${writer.offset} of ${desc.size} bytes`);
    } catch (err) {
      if (signal?.aborted) throw canceledFrom(signal);
      if (isCanceled(err) || !isRetryable(err)) throw err;
      failures = writer.offset > before ? 1 : failures + 1;
      if (failures >= policy.attempts) throw err;
      const wait = backoffDelay(policy, failures);
      log.debug({ ref: writer.ref, offset: writer.offset, failures, wait, err: (err as Error).message }, 'download interrupted; resuming');
      await sleep(wait, signal);
    }
  }
}

async function fetchSequential(fetcher: Fetcher, download: Download): Promise<void> {
  const { writer, desc, progress, signal } = download;
  await withResume(download, async () => {
    const body = await fetcher.fetch(desc, { offset: writer.offset, ...(signal === undefined ? {} : { signal }) });
    for await (const chunk of body) {
      await writer.write(chunk as Buffer);
      progress();
    }
  });
}

/** One chunk, buffered whole. A failure is retried by the caller from the written prefix. */
async function fetchChunk(fetcher: RangeFetcher, desc: Descriptor, start: number, end: number, signal: AbortSignal): Promise<Buffer> {
  const { body, partial } = await fetcher.fetchRange(desc, { start, end, signal });
  if (!partial) {
    body.destroy();
    throw new RangeIgnored();
  }
  const parts: Buffer[] = [];
  let received = 0;
  for await (const chunk of body) {
    parts.push(chunk as Buffer);
    received += (chunk as Buffer).length;
  }
  if (start + received !== end) throw new UnavailableError(`range ${start}-${end - 1} of ${desc.digest} ended after ${received} bytes`);
  return Buffer.concat(parts, received);
}

async function fetchRanges(fetcher: RangeFetcher, download: Download, options: ParallelFetchOptions): Promise<void> {
  const { writer, desc, progress, signal } = download;
  await withResume(download, async () => {
    // Per try: one chunk failing stops the others before the next try starts.
    const controller = new AbortController();
    if (signal?.aborted) controller.abort(signal.reason);
    const unlink = signal === undefined || signal.aborted ? () => undefined : onAbort(signal, () => controller.abort(signal.reason));
    const window = new Map<number, Promise<Buffer>>();
    const from = writer.offset;
    const count = Math.ceil((desc.size - from) / options.chunkSize);
    const start = (i: number): void => {
      const chunk = fetchChunk(fetcher, desc, from + i * options.chunkSize, Math.min(desc.size, from + (i + 1) * options.chunkSize), controller.signal);
      chunk.catch(() => undefined); // awaited in its turn; never an unhandled rejection
      window.set(i, chunk);
    };
    try {
      // The first chunk goes alone: it tells whether the source honours ranges.
      start(0);
      let next = 1;
      for (let i = 0; i < count; i++) {
        // Chunks i .. i+concurrency-1 in flight or buffered: memory stays bounded.
        if (i > 0) while (next < count && next < i + options.concurrency) start(next++);
        const data = await (window.get(i) as Promise<Buffer>);
        window.delete(i);
        await writer.write(data);
        progress();
      }
    } finally {
      unlink();
      controller.abort();
      await Promise.allSettled(window.values());
    }
  });
}
