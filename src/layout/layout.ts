/**
 * An OCI image layout directory (image-spec image-layout.md) as an image source and sink:
 *
 *   <dir>/oci-layout         {"imageLayoutVersion": "1.0.0"}
 *   <dir>/index.json         an image index; entries named by org.opencontainers.image.ref.name
 *   <dir>/blobs/<alg>/<hex>  content-addressed blobs
 *
 * It implements the same Resolver/Fetcher/Pusher interfaces as the registry client, so
 * the unpacker reads `oci-layout://dir:tag` exactly as it reads a registry.
 *
 * A layout is untrusted input. Blob paths are built only from validated digests (never from
 * a name in the directory), blobs are opened without following a symlink, and `fetch`
 * checks the file's size against the descriptor. `fetch` does not hash: like a registry's
 * response body, its bytes are verified by the consumer (the content store's writer, or
 * `verifyingStream`) before anything is committed. `readBlob`, which callers use to parse
 * manifests, does verify the digest.
 *
 * Writes are crash-safe: a blob is written to a temporary file in the layout, verified,
 * fsynced and renamed into place; index.json is replaced with one rename. A crash can leave
 * a `.layerpool-*` temporary file at the top of the layout, which readers ignore. Concurrent
 * writers in one process are serialised per directory; two processes tagging the same
 * layout at once can lose one update (as with skopeo or umoci).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { fsyncDir } from '../content/blobs.js';
import { validateDescriptor, type Descriptor } from '../descriptor.js';
import { Digester, digesterFor, isValidDigest, parseDigest } from '../digest.js';
import {
  canceledFrom,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  NotImplementedError,
  ResourceExhaustedError,
  SizeMismatchError,
  throwIfAborted,
} from '../errors.js';
import { detectDocumentType, parseIndex, type Index } from '../images/manifest.js';
import { isIndexType, isManifestType, MediaType } from '../images/mediatypes.js';
import { logger } from '../log.js';
import type { FetchOptions, Fetcher, Pusher, PushOptions, PushStatus, ResolveOptions, Resolved, Resolver } from '../remote/types.js';
import { KeyedMutex } from '../sync/index.js';
import { CONTAINERD_IMAGE_NAME_ANNOTATION, formatLayoutReference, REF_NAME_ANNOTATION, validateRefName } from './reference.js';

const log = logger('layout');

export const LAYOUT_DEFAULTS = {
  /** The only layout version image-spec defines (v1.0 and v1.1 both write it). */
  imageLayoutVersion: '1.0.0',
  /** index.json larger than this is refused: it is read whole. */
  maxIndexBytes: 16 << 20,
  /** Manifests and indexes read whole by `readBlob` and `resolve` are at most this big. */
  maxDocumentBytes: 4 << 20,
} as const;

/** One entry of index.json. */
export interface LayoutImage {
  /** The entry's `org.opencontainers.image.ref.name`, when it has one. */
  name?: string;
  descriptor: Descriptor;
}

export interface WriteBlobOptions {
  /** Verify the bytes against this digest (and size); the blob is not published otherwise. */
  expected?: Pick<Descriptor, 'digest' | 'size'>;
  signal?: AbortSignal;
}

export interface ReadBlobOptions {
  maxSize?: number;
  signal?: AbortSignal;
}

const REFERENCE_HINT = 'oci-layout://<dir>:<tag> or @<digest>';

// One lock per layout directory for index.json read-modify-write, shared by every
// OCILayout object of this process that points at it.
const indexLocks = new KeyedMutex();

export class OCILayout implements Resolver, Fetcher {
  private constructor(
    /** The layout directory, absolute. */
    readonly dir: string,
    private readonly lockKey: string,
  ) {}

  /** Open an existing layout, validating `oci-layout` and `index.json`. */
  static async open(dir: string): Promise<OCILayout> {
    const absolute = resolvePath(dir);
    let info;
    try {
      info = await stat(absolute);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`OCI layout ${absolute} does not exist`);
      throw err;
    }
    if (!info.isDirectory()) throw new InvalidArgumentError(`OCI layout ${absolute} is not a directory`);
    const layout = new OCILayout(absolute, await realpath(absolute));
    await layout.checkLayoutFile();
    await layout.index();
    return layout;
  }

  /** Create a layout (and its directory), or open the one that is there. */
  static async create(dir: string): Promise<OCILayout> {
    const absolute = resolvePath(dir);
    await mkdir(join(absolute, 'blobs', 'sha256'), { recursive: true });
    const layout = new OCILayout(absolute, await realpath(absolute));
    await indexLocks.withLock(layout.lockKey, async () => {
      if (!(await exists(join(absolute, 'oci-layout')))) {
        await layout.writeAtomically('oci-layout', JSON.stringify({ imageLayoutVersion: LAYOUT_DEFAULTS.imageLayoutVersion }));
      }
      if (!(await exists(join(absolute, 'index.json')))) await layout.writeIndex({ schemaVersion: 2, mediaType: MediaType.OCIIndex, manifests: [] });
    });
    await layout.checkLayoutFile();
    await layout.index();
    return layout;
  }

  private async checkLayoutFile(): Promise<void> {
    const path = join(this.dir, 'oci-layout');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InvalidArgumentError(`${this.dir} is not an OCI image layout: it has no oci-layout file`);
      throw err;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new InvalidArgumentError(`${path} is not valid JSON: ${(err as Error).message}`);
    }
    const version = (doc as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
    if (typeof version !== 'string') throw new InvalidArgumentError(`${path}: imageLayoutVersion is missing`);
    if (version !== LAYOUT_DEFAULTS.imageLayoutVersion) {
      throw new NotImplementedError(`${path}: image layout version ${JSON.stringify(version)} is not supported (only ${LAYOUT_DEFAULTS.imageLayoutVersion})`);
    }
  }

  /** index.json, parsed and validated; read afresh on every call (other tools may write it). */
  async index(): Promise<Index> {
    const path = join(this.dir, 'index.json');
    let bytes: Buffer;
    try {
      const handle = await open(path, fsConstants.O_RDONLY);
      try {
        const { size } = await handle.stat();
        if (size > LAYOUT_DEFAULTS.maxIndexBytes) throw new ResourceExhaustedError(`${path} is ${size} bytes, more than the ${LAYOUT_DEFAULTS.maxIndexBytes} allowed`);
        bytes = await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InvalidArgumentError(`${this.dir} is not an OCI image layout: it has no index.json`);
      throw err;
    }
    return parseIndex(bytes, { what: path });
  }

  /** Every entry of index.json, named or not, in file order. */
  async listImages(): Promise<LayoutImage[]> {
    const index = await this.index();
    return index.manifests.map((descriptor) => {
      const name = descriptor.annotations?.[REF_NAME_ANNOTATION];
      return name === undefined ? { descriptor } : { name, descriptor };
    });
  }

  /** Where a blob lives; the digest is validated, so the path never leaves `blobs/`. */
  blobPath(digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.dir, 'blobs', algorithm, encoded);
  }

  /**
   * Resolve `ref` to the descriptor it names: a ref name (index.json's
   * `org.opencontainers.image.ref.name`, or containerd's `io.containerd.image.name`), a
   * digest (an index.json entry, or any manifest blob in the layout), `name@digest` (the
   * digest wins), or "" when the layout holds exactly one image.
   */
  async resolve(ref: string, options: ResolveOptions = {}): Promise<Resolved> {
    throwIfAborted(options.signal);
    const images = await this.listImages();
    // Ref names may contain '@' themselves: a whole-name match wins over a name@digest split.
    const named = ref === '' ? [] : this.named(images, ref);
    if (named.length > 0) return { name: formatLayoutReference({ dir: this.dir, tag: ref }), descriptor: this.single(named, ref) };

    const at = ref.lastIndexOf('@');
    const digest = at >= 0 ? ref.slice(at + 1) : isValidDigest(ref) ? ref : undefined;
    if (digest === undefined) {
      if (ref !== '') throw new NotFoundError(`${ref} is not in OCI layout ${this.dir}`);
      if (images.length === 1) return { name: formatLayoutReference({ dir: this.dir }), descriptor: (images[0] as LayoutImage).descriptor };
      throw new InvalidArgumentError(`OCI layout ${this.dir} holds ${images.length} images: name one (${REFERENCE_HINT})`);
    }
    parseDigest(digest);
    const tag = at > 0 ? ref.slice(0, at) : undefined;
    const name = formatLayoutReference({ dir: this.dir, ...(tag ? { tag } : {}), digest });
    const entry = images.find((image) => image.descriptor.digest === digest);
    if (entry) return { name, descriptor: entry.descriptor };
    const size = await this.fileSize(digest);
    if (size === undefined) throw new NotFoundError(`${digest} is not in OCI layout ${this.dir}`);
    const bytes = await this.readBlob({ digest, size }, options);
    return { name, descriptor: { mediaType: detectDocumentType(bytes, `${this.dir} blob ${digest}`), digest, size } };
  }

  /** Entries named `name`: by ref.name, else by containerd's image name annotation. */
  private named(images: LayoutImage[], name: string): LayoutImage[] {
    const byRefName = images.filter((image) => image.name === name);
    if (byRefName.length > 0) return byRefName;
    return images.filter((image) => image.descriptor.annotations?.[CONTAINERD_IMAGE_NAME_ANNOTATION] === name);
  }

  private single(matches: LayoutImage[], name: string): Descriptor {
    const first = (matches[0] as LayoutImage).descriptor;
    if (matches.some((m) => m.descriptor.digest !== first.digest)) {
      throw new FailedPreconditionError(`OCI layout ${this.dir} has ${matches.length} different images named ${name}`);
    }
    return first;
  }

  async fetcher(): Promise<Fetcher> {
    return this;
  }

  /**
   * A Pusher into this layout. A manifest or index pushed with `options.tag` is tagged with
   * it. Without one, when `ref` is a ref name, every manifest or index pushed is tagged with
   * that name: children are pushed before their parents, so the name ends on the root, as
   * with containerd's registry pusher.
   */
  async pusher(ref: string): Promise<Pusher> {
    const refTag = ref === '' || isValidDigest(ref) ? undefined : validateRefName(ref.includes('@') ? ref.slice(0, ref.lastIndexOf('@')) : ref);
    return {
      push: async (desc, content, options = {}) => {
        const status = await this.push(desc, content, options);
        const tag = options.tag ?? refTag;
        if (tag !== undefined && (isIndexType(desc.mediaType) || isManifestType(desc.mediaType))) await this.tag(tag, desc);
        return status;
      },
    };
  }

  /** Size of the blob file, or undefined when there is none. */
  private async fileSize(digest: string): Promise<number | undefined> {
    try {
      const info = await stat(this.blobPath(digest));
      return info.isFile() ? info.size : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** True when the blob is present with the descriptor's size (its bytes are not hashed). */
  async hasBlob(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<boolean> {
    return (await this.fileSize(desc.digest)) === desc.size;
  }

  private async openBlob(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<FileHandle> {
    const path = this.blobPath(desc.digest);
    let handle: FileHandle;
    try {
      // O_NOFOLLOW: a layout from elsewhere must not make us read /etc/shadow through a symlink.
      handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new NotFoundError(`blob ${desc.digest} is not in OCI layout ${this.dir}`);
      if (code === 'ELOOP') throw new InvalidArgumentError(`blob ${desc.digest} in OCI layout ${this.dir} is a symlink`);
      throw err;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new InvalidArgumentError(`blob ${desc.digest} in OCI layout ${this.dir} is not a regular file`);
      if (info.size !== desc.size) throw new SizeMismatchError(desc.size, info.size, `blob ${desc.digest} in OCI layout ${this.dir}`);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return handle;
  }

  /**
   * The blob's bytes from `offset`. Missing blob: NotFound; a file whose size differs from
   * the descriptor: SizeMismatch. The digest is the consumer's to verify (see the top).
   */
  async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<Readable> {
    validateDescriptor(desc);
    const { signal } = options;
    throwIfAborted(signal);
    const offset = options.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > desc.size) {
      throw new InvalidArgumentError(`fetch ${desc.digest}: offset ${offset} outside 0..${desc.size}`);
    }
    const handle = await this.openBlob(desc);
    const stream = handle.createReadStream({ start: offset, autoClose: true });
    if (signal) {
      const onAbort = (): void => {
        stream.destroy(canceledFrom(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    return stream;
  }

  /** A whole blob (a manifest, an index, a config), size-limited and digest-verified. */
  async readBlob(desc: Pick<Descriptor, 'digest' | 'size'>, options: ReadBlobOptions = {}): Promise<Buffer> {
    throwIfAborted(options.signal);
    const maxSize = options.maxSize ?? LAYOUT_DEFAULTS.maxDocumentBytes;
    if (desc.size > maxSize) throw new ResourceExhaustedError(`blob ${desc.digest} is ${desc.size} bytes, more than the ${maxSize} allowed`);
    const handle = await this.openBlob(desc);
    let bytes: Buffer;
    try {
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
    const digester = digesterFor(desc.digest);
    digester.update(bytes);
    digester.verify(desc.digest, desc.size, `blob ${desc.digest} in OCI layout ${this.dir}`);
    return bytes;
  }

  /**
   * Write a blob from a stream, hashing as it goes; returns its digest and size. With
   * `expected`, the bytes must match (DigestMismatch/SizeMismatch otherwise, and nothing is
   * published). The blob appears under `blobs/` only complete and fsynced.
   */
  async writeBlob(source: Readable | AsyncIterable<Uint8Array>, options: WriteBlobOptions = {}): Promise<Pick<Descriptor, 'digest' | 'size'>> {
    const { expected, signal } = options;
    throwIfAborted(signal);
    const digester = expected ? digesterFor(expected.digest) : new Digester('sha256');
    const temp = join(this.dir, `.layerpool-ingest-${randomBytes(8).toString('hex')}`);
    const handle = await open(temp, 'wx');
    try {
      // Leaving the loop early (an error, a cancel) ends the source through its iterator.
      for await (const chunk of source as AsyncIterable<Uint8Array>) {
        throwIfAborted(signal);
        if (expected && digester.size + chunk.byteLength > expected.size) {
          throw new SizeMismatchError(expected.size, digester.size + chunk.byteLength, `blob ${expected.digest}`);
        }
        digester.update(chunk);
        await handle.writeFile(chunk);
      }
      if (expected) digester.verify(expected.digest, expected.size, `blob ${expected.digest}`);
      await handle.sync();
      await handle.close();
      const digest = digester.digest();
      const target = this.blobPath(digest);
      await mkdir(join(target, '..'), { recursive: true });
      await rename(temp, target);
      await fsyncDir(join(target, '..'));
      return { digest, size: digester.size };
    } catch (err) {
      await handle.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }

  /** Pusher.push without tagging: writes the blob unless it is already there (success). */
  async push(desc: Descriptor, content: () => Promise<Readable> | Readable, options: PushOptions = {}): Promise<PushStatus> {
    validateDescriptor(desc);
    throwIfAborted(options.signal);
    if (await this.hasBlob(desc)) return 'exists';
    await this.writeBlob(await content(), { expected: desc, ...(options.signal ? { signal: options.signal } : {}) });
    log.debug({ dir: this.dir, digest: desc.digest, size: desc.size }, 'blob written');
    return 'uploaded';
  }

  /**
   * Name `desc` in index.json: entries already carrying the name lose it (they are removed),
   * the new entry is appended with the name as `org.opencontainers.image.ref.name`. The blob
   * must be in the layout (NotFound otherwise). index.json is replaced atomically.
   */
  async tag(name: string, desc: Descriptor): Promise<void> {
    validateRefName(name);
    validateDescriptor(desc);
    if (!(await this.hasBlob(desc))) throw new NotFoundError(`cannot tag ${name}: blob ${desc.digest} (${desc.size} bytes) is not in OCI layout ${this.dir}`);
    await indexLocks.withLock(this.lockKey, async () => {
      const index = await this.index();
      const { annotations, ...rest } = desc;
      const entry: Descriptor = { ...rest, annotations: { ...annotations, [REF_NAME_ANNOTATION]: name } };
      index.manifests = [...index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== name), entry];
      await this.writeIndex(index);
    });
  }

  private async writeIndex(index: Index): Promise<void> {
    const doc: Index = { schemaVersion: 2, mediaType: index.mediaType ?? MediaType.OCIIndex, manifests: index.manifests };
    if (index.artifactType !== undefined) doc.artifactType = index.artifactType;
    if (index.subject !== undefined) doc.subject = index.subject;
    if (index.annotations !== undefined) doc.annotations = index.annotations;
    await this.writeAtomically('index.json', JSON.stringify(doc));
  }

  /** Write a top-level file through a temp file and one rename, fsynced. */
  private async writeAtomically(name: string, text: string): Promise<void> {
    const temp = join(this.dir, `.layerpool-${name}-${randomBytes(8).toString('hex')}`);
    try {
      const handle = await open(temp, 'wx');
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, join(this.dir, name));
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    await fsyncDir(this.dir);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
