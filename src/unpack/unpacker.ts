/**
 * The unpack coordinator: turns one manifest's layers into committed snapshots, keyed
 * by chain ID. It reads as DESIGN.md's pull path, steps 3 to 5:
 *
 *   for every layer, at once:                         then, in chain order:
 *     lock sn://<snapshotter>/<chainID>                  wait for the layer's apply
 *     exists? -> done (nothing fetched)                  commit(chainID, extract key, parent)
 *     prepare extract-<id>-<chainID>                     label blob with its diffID
 *     fetch (semaphore) ──bytes──▶ worker: apply         unlock
 *
 * With a snapshotter that can rebase (overlay), every layer is applied into its own
 * parentless snapshot as soon as its bytes arrive and the chain is formed at commit.
 * Otherwise (native) a layer is prepared on its committed parent, so applies run in
 * order while downloads still run ahead. Any failure removes every snapshot this unpack
 * prepared and did not commit; committed ones stay valid for the next attempt.
 */
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { chainIDs } from '../digest.js';
import type { Descriptor } from '../descriptor.js';
import type { ApplyOptions, ApplyStats } from '../diff/types.js';
import { canceledFrom, InvalidArgumentError, isAlreadyExists, isCanceled, isNotFound, throwIfAborted } from '../errors.js';
import type { ImageConfig, Manifest } from '../images/manifest.js';
import { layerCompression } from '../images/mediatypes.js';
import { logger } from '../log.js';
import { Label, type Labels } from '../metadata/labels.js';
import type { ContentStore } from '../content/store.js';
import type { Mount, Snapshotter } from '../snapshots/snapshotter.js';
import type { ApplyTask } from '../../workers/apply.js';
import type { KeyedMutex, Semaphore } from '../sync/index.js';
import { BlobFeed } from './feed.js';
import type { ApplyPool } from './pool.js';
import type { ProgressCallback } from './progress.js';

const log = logger('unpack');

/** Where a layer's compressed bytes are, once the fetch has opened or found them. */
export interface LayerBytes {
  /** The ingest being written; absent when the blob was complete already. */
  ingestPath?: string;
  /** Where the blob is once committed (a small ingest may be committed before the worker opens it). */
  blobPath: string;
  /** Bytes already there. */
  available: number;
}

/**
 * How the coordinator gets a layer into the content store. `onOpen` fires once the
 * bytes have a file (before any arrive, or at once for a blob already present);
 * `onProgress` after each write; the promise settles when the blob is committed and
 * verified (AlreadyExists counts as success).
 */
export type LayerFetch = (request: {
  desc: Descriptor;
  lease: string;
  signal: AbortSignal;
  onOpen: (bytes: LayerBytes) => void;
  onProgress: (fetched: number, total: number) => void;
}) => Promise<void>;

export interface UnpackOptions {
  /** syncfs(2) each layer's filesystem before its commit, so commits survive a power cut. */
  syncFs?: boolean;
  /** Passed to every apply (limits, ownership). */
  applyOpts?: Pick<ApplyOptions, 'maxUncompressedBytes' | 'maxEntries' | 'sameOwner'>;
  /** Labels added to every committed snapshot. */
  snapshotLabels?: Labels;
}

export interface UnpackRequest {
  manifest: Manifest;
  config: ImageConfig;
  content: ContentStore;
  snapshotter: Snapshotter;
  /** The pull's lease: holds prepared and committed snapshots until the image record does. */
  lease: string;
  addLeaseResource: (resource: { type: string; id: string }) => void;
  fetchLayer: LayerFetch;
  /** Bounds the layers downloading at once (`maxConcurrentDownloads`). */
  downloads: Semaphore;
  signal?: AbortSignal;
  progress?: ProgressCallback;
  options?: UnpackOptions;
}

export interface UnpackResult {
  /** Chain ID of the top layer: the image's root filesystem snapshot. */
  chainID: string;
  chainIDs: string[];
  layersApplied: number;
  bytesFetched: number;
  bytesApplied: number;
  /** Per applied layer: worker stats and timings (for the bench timeline). */
  layers: { index: number; digest: string; stats: ApplyStats; startedAt: number; appliedAt: number; committedAt: number }[];
}

export interface UnpackerDeps {
  /** The worker pool, created on first use: a pull with every layer present never starts one. */
  pool: () => Promise<ApplyPool>;
  /** Chain-ID locks shared by every unpack of a root (containerd's duplication suppressor). */
  locks: KeyedMutex;
}

type LayerOutcome =
  | { kind: 'exists' }
  | { kind: 'applied'; key: string; mounts: Mount[]; stats: ApplyStats; startedAt: number; appliedAt: number; bytesFetched: number };

export class Unpacker {
  constructor(private readonly deps: UnpackerDeps) {}

  async unpack(request: UnpackRequest): Promise<UnpackResult> {
    const { manifest, config, snapshotter } = request;
    const diffIDs = config.rootfs.diff_ids;
    if (diffIDs.length !== manifest.layers.length) {
      throw new InvalidArgumentError(
        `image config lists ${diffIDs.length} diff IDs for ${manifest.layers.length} layers; the image is malformed`,
      );
    }
    for (const layer of manifest.layers) {
      if (layerCompression(layer.mediaType) === undefined) {
        throw new InvalidArgumentError(`layer ${layer.digest} has media type ${layer.mediaType}, which is not a layer layerpool can apply`);
      }
    }
    const chain = chainIDs(diffIDs);
    if (chain.length === 0) throw new InvalidArgumentError('image has no layers to unpack');

    // One controller for this unpack: the caller's signal, or the first failure, stops every layer.
    const controller = new AbortController();
    // Every layer's lock wait, download and apply listen on it: many listeners are expected.
    setMaxListeners(0, controller.signal);
    const onAbort = () => controller.abort(request.signal?.reason);
    request.signal?.addEventListener('abort', onAbort, { once: true });
    if (request.signal?.aborted) onAbort();

    const held = new Set<string>();
    const prepared = new Set<string>();
    const committed = chain.map(() => deferred<void>());
    committed.forEach((d) => d.promise.catch(() => undefined));
    const lockKey = (chainID: string) => `sn://${snapshotter.name}/${chainID}`;

    const layerTasks = manifest.layers.map((desc, index) =>
      this.layer({ request, desc, index, chain, committed, controller, held, prepared, lockKey }),
    );
    // The first failure is the one to report: the layers it cancels fail with CanceledError after it.
    let firstError: unknown;
    layerTasks.forEach((t) =>
      t.catch((err: unknown) => {
        firstError ??= err;
        controller.abort(err);
      }),
    );

    const result: UnpackResult = {
      chainID: chain.at(-1) as string,
      chainIDs: chain,
      layersApplied: 0,
      bytesFetched: 0,
      bytesApplied: 0,
      layers: [],
    };
    try {
      for (let index = 0; index < chain.length; index++) {
        const outcome = await (layerTasks[index] as Promise<LayerOutcome>);
        const chainID = chain[index] as string;
        const desc = manifest.layers[index] as Descriptor;
        if (outcome.kind === 'applied') {
          await this.commit({ request, chainID, parent: chain[index - 1], outcome, diffID: diffIDs[index] as string, desc });
          prepared.delete(outcome.key);
          result.layersApplied += 1;
          result.bytesFetched += outcome.bytesFetched;
          result.bytesApplied += outcome.stats.uncompressedBytes;
          result.layers.push({
            index,
            digest: desc.digest,
            stats: outcome.stats,
            startedAt: outcome.startedAt,
            appliedAt: outcome.appliedAt,
            committedAt: performance.now(),
          });
          request.progress?.({ type: 'committed', chainID, digest: desc.digest, index });
        }
        request.addLeaseResource({ type: `snapshots/${snapshotter.name}`, id: chainID });
        committed[index]?.resolve();
        if (held.delete(lockKey(chainID))) this.deps.locks.unlock(lockKey(chainID));
        request.progress?.({
          type: 'layer',
          digest: desc.digest,
          index,
          status: outcome.kind === 'exists' ? 'exists' : 'done',
          fetched: outcome.kind === 'exists' ? 0 : desc.size,
          total: desc.size,
        });
      }
      return result;
    } catch (err) {
      controller.abort(err);
      committed.forEach((d) => d.reject(err));
      await Promise.allSettled(layerTasks);
      for (const key of prepared) {
        await snapshotter.remove(key).catch((removeErr: unknown) => {
          if (!isNotFound(removeErr)) log.error({ key, err: removeErr }, 'could not remove a prepared snapshot after a failed unpack');
        });
      }
      throw request.signal?.aborted ? canceledFrom(request.signal) : (firstError ?? err);
    } finally {
      for (const key of held) this.deps.locks.unlock(key);
      request.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** One layer: lock its chain ID, then skip it, or fetch and apply it into a prepared snapshot. */
  private async layer(args: {
    request: UnpackRequest;
    desc: Descriptor;
    index: number;
    chain: string[];
    committed: Deferred<void>[];
    controller: AbortController;
    held: Set<string>;
    prepared: Set<string>;
    lockKey: (chainID: string) => string;
  }): Promise<LayerOutcome> {
    const { request, desc, index, chain, committed, controller, held, prepared, lockKey } = args;
    const { snapshotter } = request;
    const signal = controller.signal;
    const chainID = chain[index] as string;
    const key = lockKey(chainID);
    const report = (status: 'waiting' | 'downloading' | 'extracting' | 'verifying', fetched: number, applied?: number) =>
      request.progress?.({ type: 'layer', digest: desc.digest, index, status, fetched, total: desc.size, ...(applied === undefined ? {} : { applied }) });

    report('waiting', 0);
    await this.deps.locks.lock(key, signal);
    held.add(key);
    if (await exists(snapshotter, chainID)) return { kind: 'exists' };

    // Without rebase the parent must be committed before this layer can be prepared on it.
    let parent: string | undefined;
    if (index > 0 && !snapshotter.capabilities.rebase) {
      await committed[index - 1]?.promise;
      parent = chain[index - 1];
    }
    throwIfAborted(signal);

    const prepare = async (on: string | undefined): Promise<{ key: string; mounts: Mount[] }> => {
      const extractKey = `extract-${randomBytes(6).toString('hex')}-${chainID}`;
      request.addLeaseResource({ type: `snapshots/${snapshotter.name}`, id: extractKey });
      const mounts = await snapshotter.prepare(extractKey, on, {
        labels: { [Label.snapshotRef]: chainID, ...(request.options?.snapshotLabels ?? {}) },
      });
      prepared.add(extractKey);
      return { key: extractKey, mounts };
    };
    const applyOptions: ApplyTask['options'] = {
      mediaType: desc.mediaType,
      whiteoutMode: snapshotter.capabilities.whiteouts,
      expectedDiffID: request.config.rootfs.diff_ids[index] as string,
      ...(request.options?.applyOpts ?? {}),
      ...(request.options?.syncFs ? { syncFs: true } : {}),
    };
    const extract = await prepare(parent);

    const startedAt = performance.now();
    let fetched = 0;
    let applied = 0;
    const feed = new BlobFeed((p) => {
      applied = p.uncompressedBytes;
      report('extracting', fetched, applied);
    });
    const opened = deferred<LayerBytes>();
    const fetchDone = request.downloads
      .run(
        () =>
          request.fetchLayer({
            desc,
            lease: request.lease,
            signal,
            onOpen: (bytes) => opened.resolve(bytes),
            onProgress: (bytes) => {
              fetched = bytes;
              feed.available(bytes);
              report('downloading', fetched, applied);
            },
          }),
        { signal },
      )
      .then(
        () => feed.end(desc.size),
        (err: unknown) => {
          feed.abort((err as Error).message);
          opened.reject(err);
          throw err;
        },
      );
    fetchDone.catch(() => undefined);

    try {
      const bytes = await opened.promise;
      const stats = await this.applyOrFetchError(fetchDone, controller, async () => (await this.deps.pool()).apply(
        {
          blobPath: bytes.blobPath,
          available: bytes.available,
          ...(bytes.ingestPath === undefined ? { size: desc.size } : { ingestPath: bytes.ingestPath }),
          feed: feed.workerPort,
          mounts: extract.mounts,
          options: applyOptions,
        },
        { signal, stop: (reason) => feed.abort(reason) },
      ));
      // The diffID was checked by the worker; the compressed digest by the content store.
      await fetchDone;
      report('verifying', desc.size, stats.uncompressedBytes);
      return { kind: 'applied', key: extract.key, mounts: extract.mounts, stats, startedAt, appliedAt: performance.now(), bytesFetched: bytes.ingestPath === undefined ? 0 : desc.size };
    } finally {
      feed.close();
    }
  }

  /**
   * An apply fails when its download fails (the feed is cut): report the download's
   * error (a digest mismatch, a registry error), which says what really went wrong.
   */
  private async applyOrFetchError<T>(fetchDone: Promise<void>, controller: AbortController, apply: () => Promise<T>): Promise<T> {
    try {
      return await apply();
    } catch (err) {
      // Stop the download (the whole unpack is failing anyway), then see why it ended.
      controller.abort(err);
      const fetchError = await fetchDone.then(
        () => undefined,
        (e: unknown) => e,
      );
      throw fetchError !== undefined && !isCanceled(fetchError) ? fetchError : err;
    }
  }

  /**
   * Applied without its parents, a layer that writes into a lower layer's directory
   * without listing it gave that directory 0755 and the applier's owner, which would hide
   * the lower one's mode, owner and xattrs in the merged view. Once the parent chain is
   * committed, copy them from it, as containerd's sequential apply (mkparent) does. Docker
   * and BuildKit list every parent directory, so real images rarely need this.
   */
  private async inheritImpliedDirectories(request: UnpackRequest, parent: string, mounts: Mount[], paths: string[]): Promise<void> {
    const viewKey = `implied-${randomBytes(6).toString('hex')}-${parent}`;
    // The apply code (tar, decompressors) otherwise loads only in workers.
    const { inheritImpliedDirectories } = await import('../diff/apply.js');
    const parentMounts = await request.snapshotter.view(viewKey, parent);
    try {
      inheritImpliedDirectories(mounts, parentMounts, paths, {
        whiteoutMode: request.snapshotter.capabilities.whiteouts,
        ...(request.options?.applyOpts?.sameOwner === undefined ? {} : { sameOwner: request.options.applyOpts.sameOwner }),
      });
    } finally {
      await request.snapshotter.remove(viewKey);
    }
  }

  private async commit(args: {
    request: UnpackRequest;
    chainID: string;
    parent: string | undefined;
    outcome: Extract<LayerOutcome, { kind: 'applied' }>;
    diffID: string;
    desc: Descriptor;
  }): Promise<void> {
    const { request, chainID, parent, outcome, diffID, desc } = args;
    const { key } = outcome;
    const implied = outcome.stats.impliedDirPaths;
    if (parent !== undefined && implied !== undefined && request.snapshotter.capabilities.rebase) {
      await this.inheritImpliedDirectories(request, parent, outcome.mounts, implied);
    }
    const labels: Labels = { [Label.snapshotRef]: chainID, ...(request.options?.snapshotLabels ?? {}) };
    try {
      await request.snapshotter.commit(chainID, key, { labels, ...(parent === undefined ? {} : { parent }) });
    } catch (err) {
      // Someone committed the same chain ID between our stat and now: theirs is as good.
      if (!isAlreadyExists(err)) throw err;
      await request.snapshotter.remove(key);
    }
    await request.content
      .update({ digest: desc.digest, labels: { [Label.uncompressed]: diffID } }, [`labels.${Label.uncompressed}`])
      .catch((err: unknown) => {
        // A layer whose blob was discarded earlier has no content row to label.
        if (!isNotFound(err)) throw err;
      });
  }
}

async function exists(snapshotter: Snapshotter, key: string): Promise<boolean> {
  try {
    await snapshotter.stat(key);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
