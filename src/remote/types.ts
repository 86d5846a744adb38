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

export interface PushOptions {
  signal?: AbortSignal;
}

/** containerd's remotes.Pusher: upload a descriptor's bytes (no-op when present). */
export interface Pusher {
  push(desc: Descriptor, content: () => Promise<Readable> | Readable, options?: PushOptions): Promise<void>;
}

/** containerd's remotes.Resolver. */
export interface Resolver {
  resolve(ref: string, options?: ResolveOptions): Promise<Resolved>;
  fetcher(ref: string): Promise<Fetcher>;
  pusher(ref: string): Promise<Pusher>;
}
