/**
 * The service API: what `layerpool serve` offers on its socket and what the CLI calls,
 * whether it talks to a running service (ServiceClient, src/server/remote.ts) or opens
 * the root itself (LocalAPI, src/server/local.ts). Every method takes one params object
 * of JSON values and resolves to JSON values, so the same call crosses the socket as it
 * is. Types only: importing this module loads nothing.
 */
import type { SerializedError } from '../errors.js';
import type { GCStats } from '../gc/collector.js';
import type { Labels } from '../metadata/labels.js';
import type { Mount } from '../snapshots/snapshotter.js';
import type { PullProgressEvent } from '../unpack/progress.js';

export interface ServiceInfo {
  version: string;
  node: string;
  pid: number;
  root: string;
  namespace: string;
  defaultSnapshotter: string;
  /** Every snapshotter name this root may hold snapshots of. */
  snapshotters: string[];
  /** `service`: answered by `layerpool serve`; `embedded`: this process opened the root. */
  mode: 'service' | 'embedded';
}

export interface PullParams {
  ref: string;
  platform?: string;
  allPlatforms?: boolean;
  snapshotter?: string;
  maxConcurrentDownloads?: number;
  discardContent?: boolean;
  syncFs?: boolean;
  /** Default true; false only fetches content. */
  unpack?: boolean;
}

export interface PullSummary {
  name: string;
  digest: string;
  /** The snapshotter the layers were unpacked into (absent with `unpack: false`). */
  snapshotter?: string;
  /** Top chain ID per unpacked manifest. */
  chainIDs: string[];
  layers: number;
  layersApplied: number;
  bytesFetched: number;
  bytesApplied: number;
  durationMs: number;
}

export interface PullCallOptions {
  signal?: AbortSignal;
  progress?: (event: PullProgressEvent) => void;
}

export interface PushParams {
  ref: string;
  /** Local image name to push; default `ref`. */
  source?: string;
}

export interface PushSummary {
  ref: string;
  digest: string;
  mediaType: string;
  size: number;
}

export interface ImageSummary {
  name: string;
  digest: string;
  mediaType: string;
  /** Bytes of this image's blobs present in the content store (every platform, each blob once). */
  size: number;
  /** `os/arch[/variant]` of each manifest present. */
  platforms: string[];
  labels: Labels;
  createdAt: string;
  updatedAt: string;
}

export interface ImageLayer {
  digest: string;
  mediaType: string;
  size: number;
  diffID: string;
  chainID: string;
  /** Whether the blob is in the content store (an image pulled with discardContent may lack it). */
  present: boolean;
}

export interface ImageDetails extends ImageSummary {
  platform: string;
  manifestDigest: string;
  configDigest: string;
  /** Chain ID of the top layer: the snapshot holding the image's root filesystem. */
  chainID: string;
  snapshotter: string;
  /** The top chain ID is a committed snapshot of `snapshotter`. */
  unpacked: boolean;
  layers: ImageLayer[];
  /** The image config's `config` (Env, Cmd, WorkingDir, ...). */
  config: Record<string, unknown>;
}

export interface ImageUsage {
  name: string;
  /** Bytes of blobs in the content store. */
  content: number;
  /** Disk use of the unpacked snapshots (default snapshotter). */
  snapshots: number;
}

export interface ContentSummary {
  digest: string;
  size: number;
  labels: Labels;
  createdAt: string;
  updatedAt: string;
}

export interface PruneSummary {
  /** Manifests whose unpacked layers stopped keeping their blobs. */
  manifests: number;
  gc: GCStats;
}

export interface SnapshotSummary {
  snapshotter: string;
  key: string;
  parent?: string;
  kind: 'active' | 'view' | 'committed';
  labels: Labels;
  createdAt: string;
  updatedAt: string;
}

export interface SnapshotUsage {
  snapshotter: string;
  key: string;
  size: number;
  inodes: number;
}

export interface LeaseSummary {
  id: string;
  labels: Labels;
  createdAt: string;
  /** From `containerd.io/gc.expire`. */
  expiresAt?: string;
  flat: boolean;
  resources: { type: string; id: string }[];
}

/** Bytes one image uses, split into what only it uses and what other images use too. */
export interface UsageSplit {
  total: number;
  unique: number;
  shared: number;
}

export interface DiskUsageReport {
  images: { name: string; content: UsageSplit; snapshots: UsageSplit; total: UsageSplit }[];
  /** Every blob and snapshot some image uses, each counted once. */
  referenced: { content: number; snapshots: number };
  /** Every blob of the namespace (referenced or not). */
  contentStore: number;
}

export interface SnapshotParams {
  /** Default: the service's default snapshotter. */
  snapshotter?: string;
}

export interface LayerpoolAPI {
  info(): Promise<ServiceInfo>;
  pull(params: PullParams, options?: PullCallOptions): Promise<PullSummary>;
  push(params: PushParams, options?: { signal?: AbortSignal }): Promise<PushSummary>;

  listImages(params: { filters?: string[] }): Promise<ImageSummary[]>;
  inspectImage(params: { name: string; platform?: string; snapshotter?: string }): Promise<ImageDetails>;
  deleteImage(params: { name: string; sync?: boolean }): Promise<void>;
  imageUsage(params: { names?: string[] }): Promise<ImageUsage[]>;

  listContent(params: { filters?: string[] }): Promise<ContentSummary[]>;
  /** The blob's bytes. */
  readContent(params: { digest: string }): Promise<NodeJS.ReadableStream>;
  deleteContent(params: { digest: string }): Promise<void>;
  /** Let GC free the layer blobs of unpacked images (their snapshots stay), then collect. */
  pruneContent(): Promise<PruneSummary>;

  listSnapshots(params: SnapshotParams & { filters?: string[] }): Promise<SnapshotSummary[]>;
  snapshotUsage(params: SnapshotParams & { key?: string }): Promise<SnapshotUsage[]>;
  snapshotMounts(params: SnapshotParams & { key: string }): Promise<Mount[]>;
  /** A read-only view of `parent`, for export and mount. */
  viewSnapshot(params: SnapshotParams & { key: string; parent: string; labels?: Labels }): Promise<Mount[]>;
  removeSnapshot(params: SnapshotParams & { key: string }): Promise<void>;

  listLeases(params: { filters?: string[] }): Promise<LeaseSummary[]>;
  createLease(params: { id?: string; expireInMs?: number; flat?: boolean; labels?: Labels }): Promise<LeaseSummary>;
  deleteLease(params: { id: string; sync?: boolean }): Promise<void>;

  gc(): Promise<GCStats>;
  diskUsage(): Promise<DiskUsageReport>;

  /** Release what this handle holds (the root, or the connection). */
  close(): Promise<void>;
}

/** One line of a pull's NDJSON response: progress events, then a result or an error. */
export type PullStreamLine = PullProgressEvent | { type: 'result'; result: PullSummary } | { type: 'error'; error: SerializedError };
