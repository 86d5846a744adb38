/**
 * Image: an image record plus what its content says — containerd's client.Image. Reads
 * the manifest and config from the content store (never from the network) and can unpack
 * an image that was pulled without unpacking.
 */
import type { ContentStore } from '../content/store.js';
import { chainID } from '../digest.js';
import type { Descriptor, Platform } from '../descriptor.js';
import { isNotFound, NotFoundError } from '../errors.js';
import type { LeaseManager } from '../leases/manager.js';
import { withLease } from '../leases/manager.js';
import type { Labels } from '../metadata/labels.js';
import type { ImageRecord } from '../metadata/images.js';
import * as platforms from '../platform.js';
import type { Snapshotter } from '../snapshots/snapshotter.js';
import type { UnpackResult } from '../unpack/unpacker.js';
import { walkImage, type ImageManifest, type WalkOptions } from './graph.js';
import { configPlatform, parseDocument, type ImageConfig } from './manifest.js';
import type { SnapshotterName } from '../snapshots/index.js';
import type { PullOptions } from '../client.js';

/** What an Image needs from its client. */
export interface ImageContext {
  readonly namespace: string;
  readonly content: ContentStore;
  readonly leases: LeaseManager;
  readonly defaultSnapshotter: SnapshotterName;
  snapshotter(name?: SnapshotterName): Promise<Snapshotter>;
  unpackManifest(image: ImageManifest, options: PullOptions & { lease: string }): Promise<UnpackResult>;
}

export interface UsageOptions {
  /** Count at most this many manifests of an index (the rest are ignored). */
  manifestLimit?: number;
  /** Add the disk use of the unpacked snapshots of the counted manifests. */
  snapshots?: SnapshotterName | boolean;
  /** Count only indexes, manifests and configs, not layers. */
  manifestOnly?: boolean;
}

export type ImageUnpackOptions = Pick<PullOptions, 'platform' | 'syncFs' | 'applyOpts' | 'snapshotOpts' | 'signal' | 'progress'>;

export class Image {
  constructor(
    private readonly context: ImageContext,
    private readonly record: ImageRecord,
  ) {}

  name(): string {
    return this.record.name;
  }

  target(): Descriptor {
    return this.record.target;
  }

  labels(): Labels {
    return { ...this.record.labels };
  }

  metadata(): ImageRecord {
    return this.record;
  }

  contentStore(): ContentStore {
    return this.context.content;
  }

  /** The manifest (and config) for a platform, default the host's. */
  async manifest(platform?: string): Promise<ImageManifest> {
    const matcher = platforms.only(platform === undefined ? platforms.defaultPlatform() : platforms.parse(platform));
    const [found] = await walkImage(this.record.target, this.walkOptions(matcher));
    if (!found) throw new NotFoundError(`image ${this.record.name} has no manifest for ${platform ?? 'this host'}`);
    return found;
  }

  /** The config descriptor. */
  async config(platform?: string): Promise<Descriptor> {
    return (await this.manifest(platform)).configDesc;
  }

  /** The image config document (`config`, `rootfs`, `history`). */
  async spec(platform?: string): Promise<ImageConfig> {
    return (await this.manifest(platform)).config;
  }

  /** The layers' diffIDs, bottom first. */
  async rootFS(platform?: string): Promise<string[]> {
    return [...(await this.spec(platform)).rootfs.diff_ids];
  }

  async platform(platform?: string): Promise<Platform> {
    return configPlatform(await this.spec(platform));
  }

  /** Compressed size of the image for a platform: documents plus layers. */
  async size(platform?: string): Promise<number> {
    const { desc, manifest } = await this.manifest(platform);
    const index = this.record.target.digest === desc.digest ? 0 : this.record.target.size;
    return index + desc.size + manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0);
  }

  /**
   * Bytes the image uses in this root: every blob of every platform present in the
   * content store, counted once; optionally with its snapshots' disk use.
   */
  async usage(options: UsageOptions = {}): Promise<number> {
    const seen = new Set<string>();
    let total = 0;
    const count = async (desc: Descriptor) => {
      if (seen.has(desc.digest)) return;
      seen.add(desc.digest);
      try {
        total += (await this.context.content.info(desc.digest)).size;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    };
    let manifests: ImageManifest[] = [];
    await count(this.record.target);
    const root = parseDocument(this.record.target, await this.context.content.readBlob(this.record.target.digest));
    const candidates = root.kind === 'index' ? root.index.manifests : [this.record.target];
    const limit = options.manifestLimit ?? Number.POSITIVE_INFINITY;
    for (const desc of candidates.slice(0, limit)) {
      const present = await this.context.content.info(desc.digest).then(
        () => true,
        (err: unknown) => (isNotFound(err) ? false : Promise.reject(err)),
      );
      if (!present) continue;
      manifests = manifests.concat(await walkImage(desc, this.walkOptions(platforms.all)).catch((err: unknown) => (isNotFound(err) ? [] : Promise.reject(err))));
    }
    for (const m of manifests) {
      await count(m.desc);
      await count(m.configDesc);
      if (!options.manifestOnly) for (const layer of m.manifest.layers) await count(layer);
    }
    if (options.snapshots) {
      const snapshotter = await this.context.snapshotter(options.snapshots === true ? undefined : options.snapshots);
      const chains = new Set<string>();
      for (const m of manifests) {
        const diffIDs = m.config.rootfs.diff_ids;
        for (let i = 1; i <= diffIDs.length; i++) chains.add(chainID(diffIDs.slice(0, i)));
      }
      for (const key of chains) {
        try {
          total += (await snapshotter.usage(key)).size;
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
    }
    return total;
  }

  /** Whether the platform's top chain ID is a committed snapshot of the snapshotter. */
  async isUnpacked(snapshotter?: SnapshotterName, platform?: string): Promise<boolean> {
    const sn = await this.context.snapshotter(snapshotter);
    const diffIDs = await this.rootFS(platform);
    if (diffIDs.length === 0) return true;
    try {
      return (await sn.stat(chainID(diffIDs))).kind === 'committed';
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * Unpack from the content store (for an image pulled with `unpack: false`). A layer
   * blob that is missing, and whose snapshot does not exist either, is NotFound.
   */
  async unpack(snapshotter?: SnapshotterName, options: ImageUnpackOptions = {}): Promise<UnpackResult> {
    const image = await this.manifest(options.platform);
    return withLease(this.context.leases, (lease) =>
      this.context.unpackManifest(image, { ...options, ...(snapshotter ? { snapshotter } : {}), lease }),
    );
  }

  private walkOptions(matcher: platforms.MatchComparer): WalkOptions {
    return {
      content: this.context.content,
      platforms: matcher,
      fetchDocument: async (desc) => {
        try {
          await this.context.content.info(desc.digest);
        } catch (err) {
          if (isNotFound(err)) throw new NotFoundError(`image ${this.record.name}: ${desc.mediaType} ${desc.digest} is not in the content store`);
          throw err;
        }
      },
    };
  }
}
