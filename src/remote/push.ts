/**
 * Uploads to a registry (distribution spec "push"):
 *
 *   blob:     HEAD /blobs/<digest> ── 200 ──▶ exists
 *             POST /blobs/uploads/?mount=<digest>&from=<repo> ── 201 ──▶ mounted   (same registry)
 *             POST /blobs/uploads/ ── 202 Location
 *               monolithic: PUT <location>?digest=<digest>  (the whole blob)
 *               chunked:    PATCH <location> Content-Range: a-b ... then PUT ?digest=
 *   manifest: PUT /manifests/<tag|digest>  Content-Type: the manifest's media type
 *
 * `pushImage` walks an image graph from any Fetcher (a content store, a layout, another
 * registry) and pushes children before parents, so a registry never sees a manifest
 * whose blobs it lacks; the root is pushed last, under the reference's tag.
 */
import { Readable } from 'node:stream';
import { validateDescriptor, type Descriptor } from '../descriptor.js';
import { digesterFor, verifyingStream } from '../digest.js';
import { DigestMismatchError, InvalidArgumentError, ResourceExhaustedError, UnavailableError } from '../errors.js';
import { childrenOf } from '../images/manifest.js';
import { isIndexType, isManifestType } from '../images/mediatypes.js';
import { logger } from '../log.js';
import { parseReference, validateTag, type Reference } from '../reference.js';
import { Semaphore } from '../sync/index.js';
import { repositoryScope } from './auth.js';
import type { RegistryHost } from './hosts.js';
import { describeRequest, header, type HttpResponse } from './http.js';
import { readAll } from './read.js';
import { statusError, type Repository } from './repository.js';
import type { Fetcher, Pusher, PushOptions, PushStatus, Resolver } from './types.js';

const log = logger('remote');

export interface RegistryPusherOptions {
  /** Largest manifest accepted for upload. */
  maxManifestSize: number;
  /** Upload blobs larger than this in PATCH chunks of this size; default: one PUT. */
  chunkSize?: number;
}

type Content = () => Promise<Readable> | Readable;

function isManifestDocument(mediaType: string): boolean {
  return isIndexType(mediaType) || isManifestType(mediaType);
}

/** Cut a stream into buffers of exactly `size` bytes (the last may be shorter). */
async function* chunksOf(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of stream) {
    let buf = chunk as Buffer;
    while (pendingBytes + buf.length >= size) {
      const take = size - pendingBytes;
      pending.push(buf.subarray(0, take));
      yield Buffer.concat(pending);
      buf = buf.subarray(take);
      pending = [];
      pendingBytes = 0;
    }
    if (buf.length > 0) {
      pending.push(buf);
      pendingBytes += buf.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

/** SizeMismatch or DigestMismatch unless `data` is what `desc` names. */
function verifyBytes(data: Buffer, desc: Descriptor, what: string): void {
  const digester = digesterFor(desc.digest);
  digester.update(data);
  digester.verify(desc.digest, desc.size, what);
}

/** The source checked on the way out: wrong bytes fail here, not at the registry. */
function verified(source: Readable, desc: Descriptor): Readable {
  const check = verifyingStream(desc.digest, { size: desc.size, what: `upload of ${desc.digest}` });
  source.on('error', (err) => check.destroy(err));
  return source.pipe(check);
}

export class RegistryPusher implements Pusher {
  private readonly repository: Repository;
  private readonly options: RegistryPusherOptions;

  constructor(repository: Repository, options: RegistryPusherOptions) {
    this.repository = repository;
    this.options = options;
  }

  /** The reference this pusher writes to. */
  get reference(): Reference {
    return this.repository.reference;
  }

  async push(desc: Descriptor, content: Content, options: PushOptions = {}): Promise<PushStatus> {
    validateDescriptor(desc);
    // containerd pushes to the first host that can push: mirrors are read-only by convention.
    const host = this.repository.hostsWith('push')[0] as RegistryHost;
    if (options.tag !== undefined) validateTag(options.tag);
    if (isManifestDocument(desc.mediaType)) return this.pushManifest(host, desc, content, options);
    if (options.tag !== undefined) throw new InvalidArgumentError(`cannot tag ${desc.mediaType} ${desc.digest}: only indexes and manifests have tags`);
    return this.pushBlob(host, desc, content, options);
  }

  private async exists(host: RegistryHost, kind: 'blobs' | 'manifests', desc: Descriptor, signal: AbortSignal | undefined): Promise<boolean> {
    const url = this.repository.url(host, `${kind}/${desc.digest}`);
    const headers: Record<string, string> = kind === 'manifests' ? { accept: desc.mediaType } : {};
    const res = await this.repository.request(host, { method: 'HEAD', url, headers, actions: ['pull', 'push'], signal });
    if (res.status === 404) {
      await res.body.dump().catch(() => undefined);
      return false;
    }
    if (res.status !== 200) throw await statusError(res, describeRequest('HEAD', url));
    await res.body.dump().catch(() => undefined);
    return true;
  }

  private async pushManifest(host: RegistryHost, desc: Descriptor, content: Content, options: PushOptions): Promise<PushStatus> {
    const what = `${desc.mediaType} ${desc.digest}`;
    if (desc.size > this.options.maxManifestSize) {
      throw new ResourceExhaustedError(`${what} is ${desc.size} bytes, more than the ${this.options.maxManifestSize} allowed`);
    }
    // A tag may point anywhere now: always PUT it. By digest, present means done.
    if (options.tag === undefined && (await this.exists(host, 'manifests', desc, options.signal))) return 'exists';
    const data = await readAll(await content(), { maxSize: this.options.maxManifestSize, what, signal: options.signal });
    verifyBytes(data, desc, what);

    const url = this.repository.url(host, `manifests/${options.tag ?? desc.digest}`);
    const res = await this.repository.request(host, {
      method: 'PUT',
      url,
      headers: { 'content-type': desc.mediaType, 'content-length': String(data.length) },
      body: data,
      actions: ['pull', 'push'],
      signal: options.signal,
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await statusError(res, describeRequest('PUT', url));
    await res.body.dump().catch(() => undefined);
    const stored = header(res, 'docker-content-digest');
    if (stored !== undefined && stored !== desc.digest) throw new DigestMismatchError(desc.digest, stored, `registry's digest of ${what}`);
    return 'uploaded';
  }

  private async pushBlob(host: RegistryHost, desc: Descriptor, content: Content, options: PushOptions): Promise<PushStatus> {
    const { signal } = options;
    if (await this.exists(host, 'blobs', desc, signal)) return 'exists';

    let location: URL | undefined;
    for (const from of options.mountFrom ?? []) {
      if (from === this.repository.reference.path) continue;
      const url = this.repository.url(host, 'blobs/uploads/');
      url.searchParams.set('mount', desc.digest);
      url.searchParams.set('from', from);
      const res = await this.repository.request(host, {
        method: 'POST',
        url,
        headers: { 'content-length': '0' },
        actions: ['pull', 'push'],
        extraScopes: [repositoryScope(from, ['pull'])],
        signal,
      });
      if (res.status === 201) {
        await res.body.dump().catch(() => undefined);
        return 'mounted';
      }
      if (res.status !== 202) throw await statusError(res, describeRequest('POST', url));
      // The registry could not mount (not there, or not readable): it opened an upload instead.
      await res.body.dump().catch(() => undefined);
      location = this.uploadLocation(res, url);
      log.debug({ digest: desc.digest, from }, 'cross-repository mount refused; uploading');
      break;
    }
    if (location === undefined) location = await this.startUpload(host, signal);

    const chunkSize = this.options.chunkSize;
    if (chunkSize !== undefined && desc.size > chunkSize) await this.uploadChunked(host, desc, content, location, chunkSize, signal);
    else await this.uploadMonolithic(host, desc, content, location, signal);
    return 'uploaded';
  }

  private async startUpload(host: RegistryHost, signal: AbortSignal | undefined): Promise<URL> {
    const url = this.repository.url(host, 'blobs/uploads/');
    const res = await this.repository.request(host, { method: 'POST', url, headers: { 'content-length': '0' }, actions: ['pull', 'push'], signal });
    if (res.status !== 202) throw await statusError(res, describeRequest('POST', url));
    await res.body.dump().catch(() => undefined);
    return this.uploadLocation(res, url);
  }

  private uploadLocation(res: HttpResponse, requestURL: URL): URL {
    const location = header(res, 'location');
    if (location === undefined) throw new UnavailableError(`${describeRequest('POST', requestURL)}: upload started without a Location`);
    return new URL(location, requestURL);
  }

  private async uploadMonolithic(host: RegistryHost, desc: Descriptor, content: Content, location: URL, signal: AbortSignal | undefined): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', desc.digest);
    const res = await this.repository.request(host, {
      method: 'PUT',
      url,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: async () => verified(await content(), desc),
      actions: ['pull', 'push'],
      signal,
    });
    if (res.status !== 201) throw await statusError(res, describeRequest('PUT', url));
    await res.body.dump().catch(() => undefined);
  }

  private async uploadChunked(host: RegistryHost, desc: Descriptor, content: Content, start: URL, chunkSize: number, signal: AbortSignal | undefined): Promise<void> {
    let location = start;
    let offset = 0;
    const source = verified(await content(), desc);
    for await (const chunk of chunksOf(source, chunkSize)) {
      const res = await this.repository.request(host, {
        method: 'PATCH',
        url: location,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(chunk.length),
          // The distribution spec's form: no "bytes " unit, inclusive end.
          'content-range': `${offset}-${offset + chunk.length - 1}`,
        },
        body: chunk,
        actions: ['pull', 'push'],
        signal,
      });
      if (res.status !== 202) throw await statusError(res, describeRequest('PATCH', location));
      await res.body.dump().catch(() => undefined);
      location = this.uploadLocation(res, location);
      offset += chunk.length;
    }
    const url = new URL(location);
    url.searchParams.set('digest', desc.digest);
    const res = await this.repository.request(host, { method: 'PUT', url, headers: { 'content-length': '0' }, actions: ['pull', 'push'], signal });
    if (res.status !== 201) throw await statusError(res, describeRequest('PUT', url));
    await res.body.dump().catch(() => undefined);
  }
}

export interface PushImageProgress {
  descriptor: Descriptor;
  /** What happened to it; undefined when the pusher does not say. */
  status: PushStatus | undefined;
}

export interface PushImageOptions {
  /** Where the image's bytes come from: a content store (`contentFetcher`), a layout, a registry. */
  fetcher: Fetcher;
  /** The root: an index or a manifest. */
  descriptor: Descriptor;
  /** Target, e.g. `registry:5000/app:v1`; a tag is put on the root. Optional with `pusher`. */
  reference?: string | Reference;
  /** Tag for the root instead of the reference's (a layout's ref name, say). */
  tag?: string;
  /** Gives the pusher for `reference`, unless `pusher` is given. */
  resolver?: Resolver;
  pusher?: Pusher;
  signal?: AbortSignal;
  onProgress?: (event: PushImageProgress) => void;
  /** Blobs uploaded at once. Default 3. */
  concurrency?: number;
  /** Repositories on the target registry that may hold the blobs (cross-repository mount). */
  mountFrom?: readonly string[];
  maxManifestSize?: number;
}

export const PUSH_IMAGE_DEFAULTS = { concurrency: 3, maxManifestSize: 4 << 20 } as const;

/** Push an image graph, children first, root last (tagged). Returns the root descriptor. */
export async function pushImage(options: PushImageOptions): Promise<Descriptor> {
  const reference = typeof options.reference === 'string' ? parseReference(options.reference) : options.reference;
  if (reference?.digest !== undefined && reference.digest !== options.descriptor.digest) {
    throw new InvalidArgumentError(`cannot push ${options.descriptor.digest} as ${reference.toString()}: the reference names another digest`);
  }
  let pusher = options.pusher;
  if (pusher === undefined) {
    if (options.resolver === undefined || reference === undefined) throw new InvalidArgumentError('pushImage needs a reference and a resolver, or a pusher');
    pusher = await options.resolver.pusher(reference.toString());
  }
  const rootTag = options.tag ?? reference?.tag;
  const { fetcher, signal } = options;
  const limit = new Semaphore(options.concurrency ?? PUSH_IMAGE_DEFAULTS.concurrency);
  const maxManifestSize = options.maxManifestSize ?? PUSH_IMAGE_DEFAULTS.maxManifestSize;
  const pushed = new Map<string, Promise<void>>();
  const target = pusher;

  const pushOne = async (desc: Descriptor, content: Content, extra: PushOptions): Promise<void> => {
    const status = await limit.run(() => target.push(desc, content, { ...extra, ...(signal === undefined ? {} : { signal }) }), signal === undefined ? {} : { signal });
    options.onProgress?.({ descriptor: desc, status: status ?? undefined });
  };

  const visit = (desc: Descriptor, root: boolean): Promise<void> => {
    let done = pushed.get(desc.digest);
    if (done === undefined) {
      done = (async () => {
        validateDescriptor(desc);
        if (isManifestDocument(desc.mediaType)) {
          const what = `${desc.mediaType} ${desc.digest}`;
          const data = await readAll(await fetcher.fetch(desc, signal === undefined ? {} : { signal }), { maxSize: maxManifestSize, what, signal });
          verifyBytes(data, desc, what);
          await Promise.all(childrenOf(desc, data).map((child) => visit(child, false)));
          const tag = root ? rootTag : undefined;
          await pushOne(desc, () => Readable.from([data]), tag === undefined ? {} : { tag });
        } else {
          await pushOne(desc, () => fetcher.fetch(desc, signal === undefined ? {} : { signal }), options.mountFrom === undefined ? {} : { mountFrom: options.mountFrom });
        }
      })();
      pushed.set(desc.digest, done);
    }
    return done;
  };

  await visit(options.descriptor, true);
  return options.descriptor;
}
