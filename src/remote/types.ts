/**
 * Where image bytes come from and go to. A registry (src/remote) and an OCI image
 * layout directory (src/layout) implement the same interfaces, so the unpacker never
 * knows which one it reads from.
 */
import type { Readable } from 'node:stream';
import type { Descriptor } from '../descriptor.js';

export interface ResolveOptions {
  signal?: AbortSignal;
}

export interface Resolved {
  /** The normalised reference (`docker.io/library/alpine:latest`). */
  name: string;
  /** What the reference points at: an index or a manifest. */
  descriptor: Descriptor;
}

export interface FetchOptions {
  /** Start at this byte (resume): the source must honour it or fail. */
  offset?: number;
  signal?: AbortSignal;
}

/** containerd's remotes.Fetcher: the bytes of a descriptor. */
export interface Fetcher {
  fetch(desc: Descriptor, options?: FetchOptions): Promise<Readable>;
}

export interface RangeOptions {
  /** First byte. */
  start: number;
  /** One past the last byte; the end of the blob when absent. */
  end?: number;
  signal?: AbortSignal;
}

export interface RangeResponse {
  /**
   * The requested bytes when `partial`; otherwise the source ignored the range and this
   * is the whole blob from byte 0 (the caller decides whether to skip or restart).
   */
  body: Readable;
  partial: boolean;
}

/** A Fetcher that can read byte ranges (parallel chunked downloads use it). */
export interface RangeFetcher extends Fetcher {
  fetchRange(desc: Descriptor, options: RangeOptions): Promise<RangeResponse>;
}

export function isRangeFetcher(fetcher: Fetcher): fetcher is RangeFetcher {
  return typeof (fetcher as Partial<RangeFetcher>).fetchRange === 'function';
}

export interface PushOptions {
  signal?: AbortSignal;
  /** Manifests and indexes: store under this tag instead of (only) the digest. */
  tag?: string;
  /** Blobs: repositories on the same registry that may hold it, tried as a cross-repository mount first. */
  mountFrom?: readonly string[];
}

/** What a push did: the content was there already, mounted from another repository, or uploaded. */
export type PushStatus = 'exists' | 'mounted' | 'uploaded';

/** containerd's remotes.Pusher: upload a descriptor's bytes (no-op when present). */
export interface Pusher {
  push(desc: Descriptor, content: () => Promise<Readable> | Readable, options?: PushOptions): Promise<PushStatus | void>;
}

/** containerd's remotes.Resolver. */
export interface Resolver {
  resolve(ref: string, options?: ResolveOptions): Promise<Resolved>;
  fetcher(ref: string): Promise<Fetcher>;
  pusher(ref: string): Promise<Pusher>;
}
