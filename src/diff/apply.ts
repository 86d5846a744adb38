/**
 * Layer apply: decompress, hash and unpack one layer into a prepared snapshot, in one
 * pass over the bytes, with bounded memory.
 *
 *   source ─▶ count ─▶ decompress ─▶ size limit ─▶ sha256 (diffID) ─▶ TarReader ─▶ LayerWriter ─▶ target dir
 *
 * The diffID is the sha256 of the whole decompressed stream, including the end-of-archive
 * blocks and anything after them: containerd reads the stream to EOF for the digest, so
 * `sha256sum` of the decompressed blob is what config.rootfs.diff_ids lists.
 *
 * On failure the error is typed, the source is released and nothing stays open; what was
 * written stays in the target, which the caller removes (it is a prepared snapshot).
 */
import { statSync, type Stats } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseDigest } from '../digest.js';
import {
  canceledFrom,
  DigestMismatchError,
  FailedPreconditionError,
  InvalidArgumentError,
  LayerpoolError,
  NotFoundError,
  ResourceExhaustedError,
  throwIfAborted,
  UnavailableError,
} from '../errors.js';
import { logger } from '../log.js';
import { native } from '../native.js';
import type { Mount } from '../snapshots/snapshotter.js';
import { onAbort } from '../sync/abort.js';
import { declaredCompression, decompress } from './decompress.js';
import { streamDigest } from './hasher.js';
import { applyTarget, lowerDirsOf } from './target.js';
import { TarReader } from './tar.js';
import type { Applier, ApplyOptions, ApplyStats } from './types.js';
import { LayerWriter } from './writer.js';

const log = logger('diff');

export const ApplyDefaults = {
  maxUncompressedBytes: 64 * 1024 ** 3,
  maxEntries: 5_000_000,
  syncFs: false,
} as const;

export type LayerSource = NodeJS.ReadableStream | AsyncIterable<Uint8Array>;

/** Apply a layer onto the mounts of a prepared snapshot (see the module comment). */
export async function applyLayer(source: LayerSource, mounts: Mount[], options: ApplyOptions): Promise<ApplyStats> {
  const started = performance.now();
  const { signal, expectedDiffID, onProgress } = options;
  throwIfAborted(signal);
  // Everything that can be refused without reading is refused before the source is touched.
  declaredCompression(options.mediaType);
  const maxUncompressedBytes = positiveLimit(options.maxUncompressedBytes ?? ApplyDefaults.maxUncompressedBytes, 'maxUncompressedBytes');
  const maxEntries = positiveLimit(options.maxEntries ?? ApplyDefaults.maxEntries, 'maxEntries');
  const algorithm = expectedDiffID === undefined ? 'sha256' : parseDigest(expectedDiffID).algorithm;
  const target = applyTarget(mounts, options.whiteoutMode);
  requireDirectory(target.root);

  const privileged = process.getuid?.() === 0;
  const writer = new LayerWriter({ target, sameOwner: options.sameOwner ?? privileged, privileged });
  const reader = new TarReader(writer, { maxEntries });
  // Last before the try: an open digest keeps its helper thread referenced until disposed.
  const digest = streamDigest(algorithm);
  let compressedBytes = 0;
  let uncompressedBytes = 0;
  let compression: ApplyStats['compression'];
  let diffID: string;
  try {
    const input = readSource(source as AsyncIterable<Uint8Array>, signal, (n) => (compressedBytes += n));
    const decompressed = await decompress(input, options.mediaType);
    compression = decompressed.compression;
    for await (const chunk of decompressed.chunks) {
      throwIfAborted(signal);
      uncompressedBytes += chunk.length;
      if (uncompressedBytes > maxUncompressedBytes) {
        throw new ResourceExhaustedError(`layer decompresses to more than ${maxUncompressedBytes} bytes (maxUncompressedBytes)`);
      }
      // Hashed on the helper thread while this one writes the chunk's entries.
      const hashing = digest.update(chunk);
      reader.write(chunk);
      if (hashing) await hashing;
      onProgress?.({ compressedBytes, uncompressedBytes, entries: reader.entries });
    }
    reader.end();
    writer.finish();
    diffID = await digest.digest();
  } catch (err) {
    digest.dispose();
    writer.abort();
    destroySource(source);
    if (err instanceof LayerpoolError) throw err;
    throw new UnavailableError(`reading the layer failed: ${(err as Error).message}`, { cause: err });
  }

  if (expectedDiffID !== undefined && diffID !== expectedDiffID) throw new DigestMismatchError(expectedDiffID, diffID, 'layer diffID');
  if (options.syncFs ?? ApplyDefaults.syncFs) {
    try {
      native().syncfs(target.root);
    } catch (err) {
      throw new UnavailableError(`syncfs ${target.root}: ${(err as Error).message}`, { cause: err });
    }
  }
  const stats: ApplyStats = {
    diffID,
    compressedBytes,
    uncompressedBytes,
    entries: reader.entries,
    ...writer.counts,
    ...(writer.impliedWithoutLowers.size > 0 ? { impliedDirPaths: [...writer.impliedWithoutLowers] } : {}),
    compression,
    durationMs: performance.now() - started,
  };
  log.debug({ root: target.root, mediaType: options.mediaType, ...stats }, 'layer applied');
  return stats;
}

/**
 * After a parentless apply (overlay, all layers at once), give the directories the layer
 * implied the attributes its parents give them (see ApplyStats.impliedDirPaths). `mounts`
 * are the layer's own; `parentMounts` a view of its parent chain.
 */
export function inheritImpliedDirectories(mounts: Mount[], parentMounts: Mount[], paths: readonly string[], options: Pick<ApplyOptions, 'whiteoutMode' | 'sameOwner'>): void {
  const target = applyTarget(mounts, options.whiteoutMode);
  const writer = new LayerWriter({
    target: { ...target, lowerDirs: lowerDirsOf(parentMounts) },
    sameOwner: options.sameOwner ?? process.getuid?.() === 0,
    privileged: process.getuid?.() === 0,
  });
  for (const physical of paths) writer.adoptLowerDirectory(physical);
}

/** containerd's diff.Applier over applyLayer. */
export class TarApplier implements Applier {
  apply(source: LayerSource, mounts: Mount[], options: ApplyOptions): Promise<ApplyStats> {
    return applyLayer(source, mounts, options);
  }
}

/**
 * The source's chunks, counted, and cancellable while waiting for the next one (a
 * stalled download must not hold a cancelled apply).
 */
async function* readSource(source: AsyncIterable<Uint8Array>, signal: AbortSignal | undefined, count: (bytes: number) => void): AsyncGenerator<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  // One read's rejecter at a time. Not Promise.race with one promise that lives as long as
  // the apply: each race leaves a reaction on it that holds the chunk it resolved with, so
  // a layer's every chunk would stay in memory until the apply ends.
  let rejectRead: ((err: Error) => void) | undefined;
  const unsubscribe = signal ? onAbort(signal, () => rejectRead?.(canceledFrom(signal))) : undefined;
  let finished = false;
  try {
    for (;;) {
      throwIfAborted(signal);
      const pending = iterator.next();
      const next = signal
        ? await new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
            rejectRead = reject;
            // If the abort wins, the abandoned read may still fail later: not an unhandled rejection.
            pending.then(resolve, reject);
          })
        : await pending;
      rejectRead = undefined;
      if (next.done) {
        finished = true;
        return;
      }
      const chunk: unknown = next.value;
      if (!(chunk instanceof Uint8Array)) throw new InvalidArgumentError('layer source must yield bytes (a stream without an encoding set)');
      count(chunk.byteLength);
      yield chunk;
    }
  } finally {
    unsubscribe?.();
    // A stream's return() waits for its pending read; applyLayer destroys streams instead.
    if (!finished) void iterator.return?.()?.catch(() => undefined);
  }
}

/**
 * Release a source the apply gave up on. A stream is destroyed: its iterator's return()
 * would wait for the pending read, which a stalled download never completes.
 */
function destroySource(source: LayerSource): void {
  const { destroy } = source as { destroy?: unknown };
  if (typeof destroy === 'function') destroy.call(source);
}

function positiveLimit(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function requireDirectory(root: string): void {
  let stat: Stats | undefined;
  try {
    stat = statSync(root, { throwIfNoEntry: false });
  } catch (err) {
    throw new FailedPreconditionError(`apply target ${root}: ${(err as Error).message}`, { cause: err });
  }
  if (stat === undefined) throw new NotFoundError(`apply target ${root} does not exist`);
  if (!stat.isDirectory()) throw new InvalidArgumentError(`apply target ${root} is not a directory`);
}
