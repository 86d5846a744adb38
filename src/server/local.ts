/**
 * LocalAPI: the service API over a Client that owns the root. `layerpool serve` serves
 * it on its socket; the CLI calls it directly when no service runs (embedded mode). It
 * turns library objects into the plain JSON values of src/server/types.ts.
 */
import type { Client } from '../client.js';
import { chainIDs } from '../digest.js';
import type { Descriptor } from '../descriptor.js';
import { InvalidArgumentError, isNotFound } from '../errors.js';
import type { GCStats } from '../gc/collector.js';
import { walkImage, type ImageManifest } from '../images/graph.js';
import type { Image } from '../images/image.js';
import { configPlatform, parseDocument } from '../images/manifest.js';
import type { ContentInfo } from '../metadata/content.js';
import { Label, type Labels } from '../metadata/labels.js';
import type { LeaseRecord } from '../metadata/leases.js';
import { packageVersion } from '../package.js';
import * as platforms from '../platform.js';
import { SNAPSHOTTER_NAMES, type SnapshotterName } from '../snapshots/index.js';
import type { Mount, SnapshotInfo, Snapshotter } from '../snapshots/snapshotter.js';
import type { UnpackResult } from '../unpack/unpacker.js';
import type {
  ContentSummary,
  DiskUsageReport,
  ImageDetails,
  ImageSummary,
  ImageUsage,
  LayerpoolAPI,
  LeaseSummary,
  PruneSummary,
  PullCallOptions,
  PullParams,
  PullSummary,
  PushParams,
  PushSummary,
  ServiceInfo,
  SnapshotParams,
  SnapshotSummary,
  SnapshotUsage,
  UsageSplit,
} from './types.js';

export interface LocalAPIOptions {
  /** How `info()` describes this API: served on a socket, or opened by the CLI itself. */
  mode: ServiceInfo['mode'];
}

function snapshotterName(name: string | undefined): SnapshotterName | undefined {
  if (name === undefined) return undefined;
  if (!(SNAPSHOTTER_NAMES as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(`unknown snapshotter ${JSON.stringify(name)}: one of ${SNAPSHOTTER_NAMES.join(', ')}`);
  }
  return name as SnapshotterName;
}

function snapshotSummary(snapshotter: string, info: SnapshotInfo): SnapshotSummary {
  return {
    snapshotter,
    key: info.name,
    ...(info.parent === undefined ? {} : { parent: info.parent }),
    kind: info.kind,
    labels: info.labels,
    createdAt: info.createdAt.toISOString(),
    updatedAt: info.updatedAt.toISOString(),
  };
}

function contentSummary(info: ContentInfo): ContentSummary {
  return { digest: info.digest, size: info.size, labels: info.labels, createdAt: info.createdAt.toISOString(), updatedAt: info.updatedAt.toISOString() };
}

/** Null when absent: reads that must not fail on a blob GC (or discardContent) removed. */
async function infoOrNull(client: Client, digest: string): Promise<ContentInfo | null> {
  try {
    return await client.content.info(digest);
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

export class LocalAPI implements LayerpoolAPI {
  constructor(
    readonly client: Client,
    private readonly options: LocalAPIOptions,
  ) {}

  async info(): Promise<ServiceInfo> {
    return {
      version: packageVersion(),
      node: process.version,
      pid: process.pid,
      root: this.client.root.path,
      namespace: this.client.namespace,
      defaultSnapshotter: this.client.defaultSnapshotter,
      snapshotters: [...SNAPSHOTTER_NAMES],
      mode: this.options.mode,
    };
  }

  async pull(params: PullParams, options: PullCallOptions = {}): Promise<PullSummary> {
    const snapshotter = snapshotterName(params.snapshotter) ?? this.client.defaultSnapshotter;
    const unpack = params.unpack ?? true;
    const result = await this.client.pull(params.ref, {
      unpack,
      snapshotter,
      ...(params.platform === undefined ? {} : { platform: params.platform }),
      ...(params.allPlatforms ? { allPlatforms: true } : {}),
      ...(params.maxConcurrentDownloads === undefined ? {} : { maxConcurrentDownloads: params.maxConcurrentDownloads }),
      ...(params.discardContent ? { discardContent: true } : {}),
      ...(params.syncFs ? { syncFs: true } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.progress ? { progress: options.progress } : {}),
    });
    const sum = (pick: (u: UnpackResult) => number) => result.unpacked.reduce((n, u) => n + pick(u), 0);
    return {
      name: result.image.name(),
      digest: result.image.target().digest,
      ...(unpack ? { snapshotter } : {}),
      chainIDs: result.unpacked.map((u) => u.chainID),
      layers: sum((u) => u.chainIDs.length),
      layersApplied: sum((u) => u.layersApplied),
      bytesFetched: sum((u) => u.bytesFetched),
      bytesApplied: sum((u) => u.bytesApplied),
      durationMs: result.durationMs,
    };
  }

  async push(params: PushParams, options: { signal?: AbortSignal } = {}): Promise<PushSummary> {
    const desc = await this.client.push(params.ref, {
      ...(params.source === undefined ? {} : { source: params.source }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return { ref: params.ref, digest: desc.digest, mediaType: desc.mediaType, size: desc.size };
  }

  async listImages(params: { filters?: string[] }): Promise<ImageSummary[]> {
    const images = await this.client.listImages(...(params.filters ?? []));
    return Promise.all(images.map((image) => this.imageSummary(image)));
  }

  async inspectImage(params: { name: string; platform?: string; snapshotter?: string }): Promise<ImageDetails> {
    const image = await this.client.getImage(params.name);
    const snapshotter = snapshotterName(params.snapshotter) ?? this.client.defaultSnapshotter;
    const found = await image.manifest(params.platform);
    const chain = chainIDs(found.config.rootfs.diff_ids);
    const layers = await Promise.all(
      found.manifest.layers.map(async (layer, i) => ({
        digest: layer.digest,
        mediaType: layer.mediaType,
        size: layer.size,
        diffID: found.config.rootfs.diff_ids[i] as string,
        chainID: chain[i] as string,
        present: (await infoOrNull(this.client, layer.digest)) !== null,
      })),
    );
    return {
      ...(await this.imageSummary(image)),
      platform: platforms.format(found.platform ?? configPlatform(found.config)),
      manifestDigest: found.desc.digest,
      configDigest: found.configDesc.digest,
      chainID: chain.at(-1) ?? '',
      snapshotter,
      unpacked: await image.isUnpacked(snapshotter, params.platform),
      layers,
      config: { ...(found.config.config ?? {}) },
    };
  }

  async deleteImage(params: { name: string; sync?: boolean }): Promise<void> {
    await this.client.deleteImage(params.name, { sync: params.sync ?? false });
  }

  async imageUsage(params: { names?: string[] }): Promise<ImageUsage[]> {
    const images = params.names && params.names.length > 0
      ? await Promise.all(params.names.map((name) => this.client.getImage(name)))
      : await this.client.listImages();
    const out: ImageUsage[] = [];
    for (const image of images) {
      const content = await image.usage();
      const withSnapshots = await image.usage({ snapshots: true });
      out.push({ name: image.name(), content, snapshots: withSnapshots - content });
    }
    return out;
  }

  async listContent(params: { filters?: string[] }): Promise<ContentSummary[]> {
    const out: ContentSummary[] = [];
    await this.client.content.walk((info) => void out.push(contentSummary(info)), ...(params.filters ?? []));
    return out;
  }

  readContent(params: { digest: string }): Promise<NodeJS.ReadableStream> {
    return this.client.content.readStream(params.digest);
  }

  async deleteContent(params: { digest: string }): Promise<void> {
    await this.client.content.delete(params.digest);
  }

  /**
   * containerd's `ctr content prune references`: a manifest whose image is unpacked
   * (its config has a gc.ref.snapshot label) stops referencing its layer blobs, so GC
   * frees them; the snapshots stay, and a later pull does not fetch them again.
   */
  async pruneContent(): Promise<PruneSummary> {
    const content = this.client.content;
    const manifests: ContentInfo[] = [];
    await content.walk((info) => void manifests.push(info), `labels."${Label.gcRefContent}.config"`);
    let pruned = 0;
    for (const manifest of manifests) {
      const config = await infoOrNull(this.client, manifest.labels[`${Label.gcRefContent}.config`] as string);
      if (!config || !Object.keys(config.labels).some((key) => key.startsWith(Label.gcRefSnapshotPrefix))) continue;
      const layerLabels = Object.keys(manifest.labels).filter((key) => key.startsWith(`${Label.gcRefContent}.l.`));
      if (layerLabels.length === 0) continue;
      await content.update({ digest: manifest.digest, labels: {} }, layerLabels.map((key) => `labels.${key}`));
      pruned += 1;
    }
    return { manifests: pruned, gc: await this.client.gc() };
  }

  async listSnapshots(params: SnapshotParams & { filters?: string[] }): Promise<SnapshotSummary[]> {
    const sn = await this.snapshotter(params);
    const out: SnapshotSummary[] = [];
    await sn.walk((info) => void out.push(snapshotSummary(sn.name, info)), ...(params.filters ?? []));
    return out;
  }

  async snapshotUsage(params: SnapshotParams & { key?: string }): Promise<SnapshotUsage[]> {
    const sn = await this.snapshotter(params);
    const keys: string[] = [];
    if (params.key !== undefined) keys.push(params.key);
    else await sn.walk((info) => void keys.push(info.name));
    const out: SnapshotUsage[] = [];
    for (const key of keys) out.push({ snapshotter: sn.name, key, ...(await sn.usage(key)) });
    return out;
  }

  async snapshotMounts(params: SnapshotParams & { key: string }): Promise<Mount[]> {
    return (await this.snapshotter(params)).mounts(params.key);
  }

  async viewSnapshot(params: SnapshotParams & { key: string; parent: string; labels?: Labels }): Promise<Mount[]> {
    return (await this.snapshotter(params)).view(params.key, params.parent, params.labels ? { labels: params.labels } : {});
  }

  async removeSnapshot(params: SnapshotParams & { key: string }): Promise<void> {
    await (await this.snapshotter(params)).remove(params.key);
  }

  async listLeases(params: { filters?: string[] }): Promise<LeaseSummary[]> {
    return this.client.leases.list(...(params.filters ?? [])).map((lease) => this.leaseSummary(lease));
  }

  async createLease(params: { id?: string; expireInMs?: number; flat?: boolean; labels?: Labels }): Promise<LeaseSummary> {
    const lease = this.client.leases.create({
      ...(params.id === undefined ? {} : { id: params.id }),
      ...(params.expireInMs === undefined ? {} : { expireInMs: params.expireInMs }),
      ...(params.flat ? { flat: true } : {}),
      ...(params.labels ? { labels: params.labels } : {}),
    });
    return this.leaseSummary(lease);
  }

  async deleteLease(params: { id: string; sync?: boolean }): Promise<void> {
    await this.client.leases.delete(params.id, { sync: params.sync ?? false });
  }

  gc(): Promise<GCStats> {
    return this.client.gc();
  }

  /**
   * Per image, the bytes of its blobs and unpacked snapshots, split into what only it
   * uses and what it shares with other images (a common base layer, say).
   */
  async diskUsage(): Promise<DiskUsageReport> {
    const images = await this.client.listImages();
    const sizes = new Map<string, number>();
    const users = new Map<string, number>();
    const perImage: { name: string; content: Set<string>; snapshots: Set<string> }[] = [];
    const snapshotters = await this.openSnapshotters();
    for (const image of images) {
      const content = new Set<string>();
      const snapshots = new Set<string>();
      const addBlob = async (desc: Descriptor) => {
        const key = `blob:${desc.digest}`;
        if (!sizes.has(key)) {
          const info = await infoOrNull(this.client, desc.digest);
          if (info === null) return;
          sizes.set(key, info.size);
        }
        content.add(key);
      };
      await addBlob(image.target());
      for (const m of await this.presentManifests(image.target())) {
        await addBlob(m.desc);
        await addBlob(m.configDesc);
        for (const layer of m.manifest.layers) await addBlob(layer);
        for (const chainID of chainIDs(m.config.rootfs.diff_ids)) {
          for (const sn of snapshotters) {
            const key = `snapshot:${sn.name}/${chainID}`;
            if (!sizes.has(key)) {
              const usage = await sn.usage(chainID).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
              if (usage === undefined) continue;
              sizes.set(key, usage.size);
            }
            snapshots.add(key);
          }
        }
      }
      for (const key of [...content, ...snapshots]) users.set(key, (users.get(key) ?? 0) + 1);
      perImage.push({ name: image.name(), content, snapshots });
    }
    const split = (keys: Iterable<string>): UsageSplit => {
      const out = { total: 0, unique: 0, shared: 0 };
      for (const key of keys) {
        const size = sizes.get(key) ?? 0;
        out.total += size;
        if (users.get(key) === 1) out.unique += size;
        else out.shared += size;
      }
      return out;
    };
    const referenced = (prefix: string) => [...sizes].filter(([key]) => key.startsWith(prefix)).reduce((n, [, size]) => n + size, 0);
    let contentStore = 0;
    await this.client.content.walk((info) => void (contentStore += info.size));
    return {
      images: perImage.map((i) => ({ name: i.name, content: split(i.content), snapshots: split(i.snapshots), total: split([...i.content, ...i.snapshots]) })),
      referenced: { content: referenced('blob:'), snapshots: referenced('snapshot:') },
      contentStore,
    };
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private snapshotter(params: SnapshotParams): Promise<Snapshotter> {
    return this.client.snapshotter(snapshotterName(params.snapshotter));
  }

  /** The snapshotters this root can open (overlay may be unavailable to an unprivileged user). */
  private async openSnapshotters(): Promise<Snapshotter[]> {
    const opened = await Promise.allSettled(SNAPSHOTTER_NAMES.map((name) => this.client.snapshotter(name)));
    return opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  }

  private leaseSummary(lease: LeaseRecord): LeaseSummary {
    const expires = lease.labels[Label.gcExpire];
    return {
      id: lease.id,
      labels: lease.labels,
      createdAt: lease.createdAt.toISOString(),
      ...(expires === undefined ? {} : { expiresAt: expires }),
      flat: lease.labels[Label.gcFlat] !== undefined,
      resources: this.client.leases.listResources(lease.id),
    };
  }

  private async imageSummary(image: Image): Promise<ImageSummary> {
    const record = image.metadata();
    const manifests = await this.presentManifests(record.target);
    return {
      name: record.name,
      digest: record.target.digest,
      mediaType: record.target.mediaType,
      size: await image.usage(),
      platforms: [...new Set(manifests.map((m) => platforms.format(m.platform ?? configPlatform(m.config))))],
      labels: record.labels,
      createdAt: record.createdAt.toISOString(),
      updatedAt: record.updatedAt.toISOString(),
    };
  }

  /** The manifests (with configs) of an image that are in the content store: a pull fetches one platform of an index. */
  private async presentManifests(desc: Descriptor): Promise<ImageManifest[]> {
    if ((await infoOrNull(this.client, desc.digest)) === null) return [];
    const doc = parseDocument(desc, await this.client.content.readBlob(desc.digest));
    if (doc.kind === 'index') {
      const found: ImageManifest[] = [];
      for (const child of doc.index.manifests) found.push(...(await this.presentManifests(child)));
      return found;
    }
    const requirePresent = async (d: Descriptor) => {
      await this.client.content.info(d.digest);
    };
    try {
      return await walkImage(desc, { content: this.client.content, platforms: platforms.all, fetchDocument: requirePresent });
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }
}
