/**
 * Layer apply: a (compressed) tar stream written into a snapshot's directory. The
 * function behind this interface is what the worker pool runs for every layer, so its
 * inputs are plain serialisable data.
 */
import type { LayerCompression } from '../images/mediatypes.js';
import type { Mount } from '../snapshots/snapshotter.js';

/**
 * How deletions are represented in the target:
 * - `overlay`: an overlay whiteout (char 0/0 device) for `.wh.<name>`, and the
 *   `trusted.overlay.opaque=y` xattr (or `user.overlay.opaque` in `userxattr` mode) for
 *   `.wh..wh..opq`; the target is a layer's own directory (an overlay upperdir).
 * - `delete`: the named path (or the directory's lower contents) is removed; the target is
 *   a full copy of the parent (the native snapshotter).
 */
export type WhiteoutMode = 'overlay' | 'overlay-userxattr' | 'delete';

export interface ApplyOptions {
  /** Layer media type: selects the decompressor (gzip, zstd, lz4, none). */
  mediaType: string;
  /** Default: from the mounts (overlay upperdir or a bind of an overlay layer -> overlay, else delete). */
  whiteoutMode?: WhiteoutMode;
  /** Keep uid/gid from the tar (lchown). Default: true when running as root. */
  sameOwner?: boolean;
  /** Refuse a layer that decompresses to more bytes than this. Default 64 GiB. */
  maxUncompressedBytes?: number;
  /** Refuse a layer with more entries than this. Default 5,000,000. */
  maxEntries?: number;
  /** syncfs(2) the target filesystem after the apply, before returning. */
  syncFs?: boolean;
  /** Expected diffID: a mismatch fails the apply with DigestMismatch. */
  expectedDiffID?: string;
  signal?: AbortSignal;
  /** Called as decompressed bytes flow (once per chunk); keep it cheap. */
  onProgress?: (progress: ApplyProgress) => void;
}

/** How far an apply has got. */
export interface ApplyProgress {
  compressedBytes: number;
  uncompressedBytes: number;
  entries: number;
}

export interface ApplyStats {
  /** sha256 of the uncompressed tar stream, as config.rootfs.diff_ids lists it. */
  diffID: string;
  compressedBytes: number;
  uncompressedBytes: number;
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  whiteouts: number;
  /** Entries skipped because the process may not create them (device nodes unprivileged). */
  skipped: number;
  /**
   * Parent directories the layer writes into without listing them. Without lower
   * directories to copy their attributes from they get 0755 and the applier's owner.
   */
  impliedDirs: number;
  /**
   * Of those, the ones implied while no lower directories were known (a parentless
   * overlay apply): `inheritImpliedDirectories` fixes their attributes once the parents are.
   */
  impliedDirPaths?: string[];
  /** The compression the blob was read with (magic bytes win over the media type). */
  compression: LayerCompression;
  durationMs: number;
}

/** containerd's diff.Applier: apply a layer onto the mounts of a prepared snapshot. */
export interface Applier {
  apply(source: NodeJS.ReadableStream | AsyncIterable<Uint8Array>, mounts: Mount[], options: ApplyOptions): Promise<ApplyStats>;
}
