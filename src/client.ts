/**
 * Client: opens a root and wires the services (content, metadata, snapshotters, worker
 * pool, leases, GC, image sources) into `pull`, `push` and the image API.
 *
 *   pull(ref) = resolve ─▶ lease ─▶ walk documents (index ▶ manifest ▶ config)
 *               ─▶ unpack layers (src/unpack) ─▶ image record ─▶ lease released
 */
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Descriptor } from './descriptor.js';
import { FailedPreconditionError, throwIfAborted } from './errors.js';
import { Collector, type GCStats } from './gc/collector.js';
import { GCScheduler, type SchedulerOptions } from './gc/scheduler.js';
import { walkImage, type ImageManifest } from './images/graph.js';
import { Image, type ImageContext } from './images/image.js';
import { configPlatform } from './images/manifest.js';
import { LeaseManager, withLease } from './leases/manager.js';
import { logger } from './log.js';
import { Label, type Labels } from './metadata/labels.js';
import * as platforms from './platform.js';
import { fetchBlob, ingestRef } from './remote/fetch.js';
import type { Fetcher } from './remote/types.js';
import { Root } from './root.js';
import { createSnapshotter, snapshotFolderRemover, type SnapshotterName } from './snapshots/index.js';
import type { Snapshotter } from './snapshots/snapshotter.js';
import { KeyedMutex, Semaphore } from './sync/index.js';
import type { ApplyPool } from './unpack/pool.js';
import type { ProgressCallback, PullProgressEvent } from './unpack/progress.js';
import { Unpacker, type UnpackOptions, type UnpackResult } from './unpack/unpacker.js';
import { ImageSources, LAYOUT_SCHEME, type ImageSourceOptions } from './images/sources.js';
import { isValidDigest } from './digest.js';
import type { ApplyOptions } from './diff/types.js';
import type { ContentStore } from './content/store.js';

const log = logger('client');

export interface ClientOptions extends ImageSourceOptions {
  /** Root directory; default `LAYERPOOL_ROOT` or /var/lib/layerpool. */
  root?: string;
  /** Namespace of every operation of this client. Default `default`. */
  namespace?: string;
  /** Default snapshotter. Default `overlay` when running as root, else `native`. */
  snapshotter?: SnapshotterName;
  /** Worker threads for layer apply. Default: the number of cores. */
  workers?: number;
  /** Mount overlay snapshots with `userxattr` (user namespaces). */
  overlayUserxattr?: boolean;
  /** Garbage collection scheduling; `false` collects only on demand. */
  gc?: SchedulerOptions | false;
}

export const kClientDefaults = {
  namespace: 'default',
  maxConcurrentDownloads: 3,
} as const;

export interface PullOptions {
  /** Unpack layers into snapshots (default true); false only fetches content. */
  unpack?: boolean;
  snapshotter?: SnapshotterName;
  /** `os/arch[/variant]`; default the host. */
  platform?: string;
  /** Fetch every platform of an index (unpack still only the requested platform). */
  allPlatforms?: boolean;
  /** Layers downloading at once. Default 3. */
  maxConcurrentDownloads?: number;
  /** After unpacking, let GC free the layer blobs (the snapshots stay). */
  discardContent?: boolean;
  /** syncfs(2) before each commit: committed snapshots survive a power cut. */
  syncFs?: boolean;
  /** Refuse to unpack an image whose config platform the host cannot run. */
  checkPlatformSupported?: boolean;
  /** Chain-ID locks shared across clients of one root (containerd's duplication suppressor). */
  duplicationSuppressor?: KeyedMutex;
  applyOpts?: Pick<ApplyOptions, 'maxUncompressedBytes' | 'maxEntries' | 'sameOwner'>;
  /** Labels for every snapshot the pull commits. */
  snapshotOpts?: { labels?: Labels };
  /** Labels of the image record. */
  labels?: Labels;
  /** Fetch big layers as parallel ranges (default false: it pays on high-latency registries, not on a local one, and holds chunks in memory). */
  parallelFetch?: boolean;
  signal?: AbortSignal;
  progress?: ProgressCallback;
}

export interface PullResult {
  image: Image;
  /** One per unpacked platform. */
  unpacked: UnpackResult[];
  durationMs: number;
}

export class Client implements ImageContext {
  readonly root: Root;
  readonly namespace: string;
  readonly leases: LeaseManager;
  readonly gcScheduler: GCScheduler;
  readonly defaultSnapshotter: SnapshotterName;
  private readonly options: ClientOptions;
  private readonly sources: ImageSources;
  private readonly snapshotters = new Map<string, Promise<Snapshotter>>();
  private readonly unpacker: Unpacker;
  private pool: ApplyPool | undefined;
  /** Pulls in progress: close() cancels them and waits for their cleanup. */
  private readonly running = new Map<AbortController, Promise<unknown>>();
  private closing = false;
  /** The client that opened the root, for a namespace view; undefined for that client itself. */
  private readonly owner: Client | undefined;
  private readonly views = new Map<string, Client>();

  private constructor(root: Root, options: ClientOptions, owner?: Client) {
    this.root = root;
    this.options = options;
    this.namespace = options.namespace ?? kClientDefaults.namespace;
    this.defaultSnapshotter = options.snapshotter ?? (process.getuid?.() === 0 ? 'overlay' : 'native');
    this.owner = owner;
    if (owner) {
      // One root, one process: the collector, the registry connections, the chain-ID locks
      // and the worker pool serve every namespace.
      this.gcScheduler = owner.gcScheduler;
      this.sources = owner.sources;
      this.unpacker = owner.unpacker;
    } else {
      const collector = new Collector({ root, snapshots: snapshotFolderRemover(root) });
      this.gcScheduler = new GCScheduler(collector, options.gc === false ? { mutationThreshold: 0, startupDelayMs: -1 } : (options.gc ?? {}));
      this.sources = new ImageSources(options);
      this.unpacker = new Unpacker({ pool: () => this.applyPool(), locks: root.locks });
    }
    this.leases = new LeaseManager({ db: root.db, namespace: this.namespace, gc: this.gcScheduler });
  }

  /** Open (and lock) a root. A root in use by another process is UnavailableError naming its pid. */
  static async open(options: ClientOptions = {}): Promise<Client> {
    const root = await Root.open({ ...(options.root === undefined ? {} : { path: options.root }), namespaces: [options.namespace ?? kClientDefaults.namespace] });
    const client = new Client(root, options);
    if (options.gc !== false) client.gcScheduler.start();
    return client;
  }

  /**
   * This client in another namespace (created if missing), sharing the root, the worker
   * pool, GC and registry connections: images, leases and snapshots are the namespace's
   * own, blob files are shared. Closing the view cancels its own pulls; closing this
   * client closes its views.
   */
  inNamespace(namespace: string): Client {
    if (this.owner) return this.owner.inNamespace(namespace);
    if (namespace === this.namespace) return this;
    if (this.closing) throw new FailedPreconditionError('client is closed');
    let view = this.views.get(namespace);
    if (view === undefined) {
      this.root.db.namespaces.ensure(namespace);
      view = new Client(this.root, { ...this.options, namespace }, this);
      this.views.set(namespace, view);
    }
    return view;
  }

  get content(): ContentStore {
    return this.root.content.namespace(this.namespace);
  }

  /** The named snapshotter of this client's namespace (opened once). */
  snapshotter(name: SnapshotterName = this.defaultSnapshotter): Promise<Snapshotter> {
    let opened = this.snapshotters.get(name);
    if (!opened) {
      opened = createSnapshotter(name, { root: this.root, namespace: this.namespace, ...(this.options.overlayUserxattr ? { userxattr: true } : {}) });
      opened.catch(() => this.snapshotters.delete(name));
      this.snapshotters.set(name, opened);
    }
    return opened;
  }

  /**
   * Pull an image: resolve, fetch, unpack, record. Returns when the image record exists
   * and (unless `unpack: false`) its layers are committed snapshots.
   */
  async pull(ref: string, options: PullOptions = {}): Promise<PullResult> {
    if (this.closed) throw new FailedPreconditionError('client is closed');
    const controller = new AbortController();
    // Documents, layers and their retries all listen on the pull's signal.
    setMaxListeners(0, controller.signal);
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    const run = this.pullOnce(ref, options, controller.signal);
    this.running.set(controller, run);
    try {
      return await run;
    } finally {
      this.running.delete(controller);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * `pull`, with its progress as an async iterator instead of a callback. The iterator
   * ends when the pull does; `result` settles with it.
   */
  pullWithEvents(ref: string, options: Omit<PullOptions, 'progress'> = {}): { events: AsyncIterable<PullProgressEvent>; result: Promise<PullResult> } {
    const queue: PullProgressEvent[] = [];
    let finished = false;
    let wake: (() => void) | undefined;
    const result = this.pull(ref, {
      ...options,
      progress: (event) => {
        queue.push(event);
        wake?.();
      },
    });
    result.then(
      () => undefined,
      () => undefined,
    ).finally(() => {
      finished = true;
      wake?.();
    });
    async function* events(): AsyncGenerator<PullProgressEvent> {
      for (;;) {
        while (queue.length > 0) yield queue.shift() as PullProgressEvent;
        if (finished) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    }
    return { events: events(), result };
  }

  private async pullOnce(ref: string, options: PullOptions, signal: AbortSignal): Promise<PullResult> {
    const started = performance.now();
    throwIfAborted(signal);
    this.root.db.restoreReserve();
    const platform = options.platform === undefined ? platforms.defaultPlatform() : platforms.parse(options.platform);
    const matcher = platforms.only(platform);
    const { resolver, name } = await this.sources.resolverFor(ref);
    const resolved = await resolver.resolve(name, { signal });
    options.progress?.({ type: 'resolved', ref: resolved.name, digest: resolved.descriptor.digest, mediaType: resolved.descriptor.mediaType });

    const result = await withLease(this.leases, async (lease) => {
      const fetcher = await resolver.fetcher(resolved.name);
      const content = this.content;
      const manifests = await walkImage(resolved.descriptor, {
        content,
        platforms: matcher,
        label: true,
        ...(options.allPlatforms ? { allPlatforms: true } : {}),
        fetchDocument: async (desc) => {
          await fetchBlob({ fetcher, content, desc, lease, signal });
        },
      });
      const unpacked: UnpackResult[] = [];
      const unpack = options.unpack ?? true;
      const toUnpack = unpack ? manifests.filter((m) => matcher.match(configPlatform(m.config)) || manifests.length === 1) : [];
      if (unpack) {
        if (toUnpack.length === 0) {
          throw new FailedPreconditionError(`${resolved.name} has no image for ${platforms.format(platform)} to unpack`);
        }
        for (const image of toUnpack) {
          if (options.checkPlatformSupported && !platforms.only(platforms.defaultPlatform()).match(configPlatform(image.config))) {
            throw new FailedPreconditionError(
              `${resolved.name} is for ${platforms.format(configPlatform(image.config))}, which this host (${platforms.format(platforms.defaultPlatform())}) cannot run`,
            );
          }
          options.progress?.({ type: 'manifest', digest: image.desc.digest, platform: platforms.format(configPlatform(image.config)), layers: image.manifest.layers.length });
          unpacked.push(await this.unpackManifest(image, { ...options, lease, signal, fetcher }));
        }
      }
      // A pull leaves the whole content of every manifest it walked: the unpacker fetched
      // the unpacked ones' layers; the others' (`unpack: false`, the other platforms of
      // `allPlatforms`) come here, so that Image.unpack() can work from the store later.
      await this.fetchLayers(manifests.filter((m) => !toUnpack.includes(m)), { ...options, lease, signal, fetcher });
      const record = this.root.db.namespace(this.namespace).images.put({
        name: resolved.name,
        target: resolved.descriptor,
        ...(options.labels ? { labels: options.labels } : {}),
      });
      return { image: new Image(this, record), unpacked };
    });
    const durationMs = performance.now() - started;
    const bytesFetched = result.unpacked.reduce((n, u) => n + u.bytesFetched, 0);
    const bytesApplied = result.unpacked.reduce((n, u) => n + u.bytesApplied, 0);
    options.progress?.({
      type: 'done',
      name: resolved.name,
      digest: resolved.descriptor.digest,
      durationMs,
      bytesFetched,
      bytesApplied,
      layers: result.unpacked.reduce((n, u) => n + u.chainIDs.length, 0),
      layersApplied: result.unpacked.reduce((n, u) => n + u.layersApplied, 0),
    });
    log.debug({ ref: resolved.name, durationMs, bytesFetched, bytesApplied }, 'pulled');
    return { ...result, durationMs };
  }

  /**
   * Unpack one platform's manifest. Layers come from the content store, or, when a
   * fetcher is given, from the source (streamed into the apply as they download).
   */
  async unpackManifest(
    image: ImageManifest,
    options: PullOptions & { lease: string; signal?: AbortSignal; fetcher?: Fetcher },
  ): Promise<UnpackResult> {
    const snapshotter = await this.snapshotter(options.snapshotter);
    const content = this.content;
    const files = this.root.content;
    const unpackOptions: UnpackOptions = {
      ...(options.syncFs ? { syncFs: true } : {}),
      ...(options.applyOpts ? { applyOpts: options.applyOpts } : {}),
      ...(options.snapshotOpts?.labels ? { snapshotLabels: options.snapshotOpts.labels } : {}),
    };
    const unpacker = options.duplicationSuppressor
      ? new Unpacker({ pool: () => this.applyPool(), locks: options.duplicationSuppressor })
      : this.unpacker;
    const source = options.fetcher;
    const result = await unpacker.unpack({
      manifest: image.manifest,
      config: image.config,
      content,
      snapshotter,
      lease: options.lease,
      addLeaseResource: (resource) => this.leases.addResource(options.lease, resource),
      downloads: new Semaphore(options.maxConcurrentDownloads ?? kClientDefaults.maxConcurrentDownloads),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.progress ? { progress: options.progress } : {}),
      options: unpackOptions,
      fetchLayer: async ({ desc, lease, signal, onOpen, onProgress }) => {
        const blobPath = files.files.blobPath(desc.digest);
        if (source === undefined) {
          // Image.unpack: the layers must be in the content store already.
          await content.info(desc.digest);
          onOpen({ blobPath, available: desc.size });
          return;
        }
        const ingestPath = files.ingestDataPath(this.namespace, ingestRef(desc));
        let opened = false;
        const result = await fetchBlob({
          fetcher: source,
          content,
          desc,
          lease,
          signal,
          parallel: options.parallelFetch ?? false,
          onProgress: (bytes, total) => {
            if (!opened) {
              opened = true;
              onOpen({ ingestPath, blobPath, available: bytes });
            }
            onProgress(bytes, total);
          },
        });
        if (!opened) onOpen({ blobPath, available: desc.size });
        if (result.status === 'exists' && opened) onProgress(desc.size, desc.size);
      },
    });
    // The config keeps the unpacked chain alive; the manifest may let the layer blobs go.
    await content.update(
      { digest: image.configDesc.digest, labels: { [`${Label.gcRefSnapshotPrefix}${snapshotter.name}`]: result.chainID } },
      [`labels.${Label.gcRefSnapshotPrefix}${snapshotter.name}`],
    );
    if (options.discardContent) {
      const paths = image.manifest.layers.map((_, i) => `labels.${Label.gcRefContent}.l.${i}`);
      await content.update({ digest: image.desc.digest, labels: {} }, paths);
    }
    return result;
  }

  private async fetchLayers(images: ImageManifest[], options: PullOptions & { lease: string; signal: AbortSignal; fetcher: Fetcher }): Promise<void> {
    const layers = new Map(images.flatMap((image) => image.manifest.layers.map((desc) => [desc.digest, desc] as const)));
    const downloads = new Semaphore(options.maxConcurrentDownloads ?? kClientDefaults.maxConcurrentDownloads);
    const { fetcher, lease, signal } = options;
    // Settle every download before failing, so none still writes after the lease is released.
    const results = await Promise.allSettled(
      [...layers.values()].map((desc) => downloads.run(() => fetchBlob({ fetcher, content: this.content, desc, lease, signal, parallel: options.parallelFetch ?? false }), { signal })),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async getImage(name: string): Promise<Image> {
    return new Image(this, this.root.db.namespace(this.namespace).images.get(name));
  }

  async listImages(...filters: string[]): Promise<Image[]> {
    return this.root.db.namespace(this.namespace).images.list(...filters).map((record) => new Image(this, record));
  }

  /** Delete an image record; with `sync`, collect garbage before returning. */
  async deleteImage(name: string, options: { sync?: boolean } = {}): Promise<void> {
    this.root.db.namespace(this.namespace).images.delete(name);
    if (options.sync) await this.gcScheduler.collect();
    else this.gcScheduler.notifyDeletion();
  }

  /** Push a local image (all its content must be present) to a registry or layout reference. */
  async push(ref: string, options: { source?: string; signal?: AbortSignal } = {}): Promise<Descriptor> {
    const image = await this.getImage(options.source ?? ref);
    const { resolver, name } = await this.sources.resolverFor(ref, 'push');
    const { pushImage } = await import('./remote/push.js');
    const { contentFetcher } = await import('./remote/content-fetcher.js');
    const common = { fetcher: contentFetcher(this.content), descriptor: image.target(), ...(options.signal ? { signal: options.signal } : {}) };
    if (ref.startsWith(LAYOUT_SCHEME)) {
      // A layout's ref name is a tag of its own, not a registry reference.
      const tag = name === '' || isValidDigest(name) ? undefined : name;
      return pushImage({ ...common, pusher: await resolver.pusher(name), ...(tag ? { tag } : {}) });
    }
    return pushImage({ ...common, reference: name, resolver });
  }

  /** Run a garbage collection now. */
  gc(): Promise<GCStats> {
    return this.gcScheduler.collect();
  }

  /** Cancel running pulls, stop GC scheduling and workers, release the root (a view: its own pulls only). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await Promise.all([...this.views.values()].map((view) => view.close()));
    for (const controller of this.running.keys()) controller.abort(new Error('client closed'));
    await Promise.allSettled(this.running.values());
    if (this.owner) {
      this.owner.views.delete(this.namespace);
      return;
    }
    await this.gcScheduler.stop();
    await this.pool?.close();
    await this.sources.close();
    this.root.close();
  }

  /** This client, or the one whose view it is, is closing. */
  private get closed(): boolean {
    return this.closing || (this.owner?.closing ?? false);
  }

  /** The worker pool, loaded and started on first use: commands that apply nothing never pay for it. */
  private async applyPool(): Promise<ApplyPool> {
    if (this.closing) throw new FailedPreconditionError('client is closed');
    if (this.pool === undefined) {
      const { ApplyPool } = await import('./unpack/pool.js');
      this.pool ??= new ApplyPool(this.options.workers === undefined ? {} : { size: this.options.workers });
    }
    return this.pool;
  }
}
