/**
 * RegistryResolver: containerd's docker resolver. `resolve(ref)` turns a reference into
 * the descriptor of its index or manifest:
 *
 *   for each resolve host (mirrors, then upstream):
 *     HEAD /v2/<name>/manifests/<tag|digest>   Accept: OCI index, Docker list, OCI manifest, Docker v2
 *       complete headers (Content-Type, Content-Length, Docker-Content-Digest) -> descriptor
 *     else GET the same URL, read at most maxManifestSize bytes, hash them
 *       by digest: the body must hash to it; by tag: to Docker-Content-Digest when sent
 *
 * Schema 1 manifests are refused (NotImplemented), unknown media types too; a manifest
 * over the limit is ResourceExhausted without reading past the limit.
 */
import type { Descriptor } from '../descriptor.js';
import { digestOf, isValidDigest, parseDigest } from '../digest.js';
import { DigestMismatchError, InvalidArgumentError, NotFoundError, NotImplementedError, ResourceExhaustedError } from '../errors.js';
import { detectDocumentType, parseDocument } from '../images/manifest.js';
import { isIndexType, isManifestType, isSchema1Type } from '../images/mediatypes.js';
import { packageVersion } from '../package.js';
import { parseReference, type Reference } from '../reference.js';
import { Authorizer } from './auth.js';
import { dockerConfigCredentials, type CredentialsProvider, type DockerConfigOptions } from './credentials.js';
import { RegistryFetcher, manifestAccept } from './fetcher.js';
import { configureHosts, type RegistryHost, type RegistryHosts } from './hosts.js';
import { describeRequest, header, HttpClient, TIMEOUT_DEFAULTS, type Timeouts } from './http.js';
import { RegistryPusher } from './push.js';
import { readAll } from './read.js';
import { Repository, statusError } from './repository.js';
import { RETRY_DEFAULTS, retryPolicy, type RetryPolicy } from './retry.js';
import type { Resolved, ResolveOptions, Resolver } from './types.js';

export interface RegistryResolverOptions {
  /** Hosts per registry domain; default: `configureHosts({ hostsDir, plainHTTP })`. */
  hosts?: RegistryHosts;
  /** containerd-style hosts directory (see hosts.ts). */
  hostsDir?: string;
  /** Hosts reached over plain HTTP besides loopback ones. */
  plainHTTP?: readonly string[];
  /** Credentials per host; when given, Docker's config.json is not read. */
  credentials?: CredentialsProvider;
  /** Where Docker's config.json is (when `credentials` is not given). */
  dockerConfig?: DockerConfigOptions;
  userAgent?: string;
  timeouts?: Partial<Timeouts>;
  retry?: Partial<RetryPolicy>;
  /** Largest index or manifest accepted. Default 4 MiB. */
  maxManifestSize?: number;
  /** Upload blobs larger than this in PATCH chunks of this size; default: one PUT. */
  uploadChunkSize?: number;
}

/** Defaults of RegistryResolverOptions (the user agent is `layerpool/<version>`). */
export const RESOLVER_DEFAULTS = {
  maxManifestSize: 4 << 20,
  timeouts: TIMEOUT_DEFAULTS,
  retry: RETRY_DEFAULTS,
} as const;

function contentType(value: string | undefined): string | undefined {
  const type = value?.split(';', 1)[0]?.trim().toLowerCase();
  return type === undefined || type === '' ? undefined : type;
}

/** Generic types some registries send for manifests: the body then says what it is. */
function isGenericType(mediaType: string | undefined): boolean {
  return mediaType === undefined || mediaType === 'application/json' || mediaType === 'application/octet-stream' || mediaType === 'text/plain';
}

function checkManifestType(mediaType: string, ref: Reference): void {
  if (isSchema1Type(mediaType)) {
    throw new NotImplementedError(`${ref.toString()} is a Docker schema 1 manifest (${mediaType}), which layerpool does not support: it was deprecated in 2017; rebuild or re-push the image`);
  }
  if (!isIndexType(mediaType) && !isManifestType(mediaType)) {
    throw new NotImplementedError(`${ref.toString()} has unsupported manifest media type ${mediaType}`);
  }
}

export class RegistryResolver implements Resolver {
  private readonly hosts: RegistryHosts;
  private readonly http: HttpClient;
  private readonly authorizer: Authorizer;
  private readonly maxManifestSize: number;
  private readonly uploadChunkSize: number | undefined;

  constructor(options: RegistryResolverOptions = {}) {
    this.hosts = options.hosts ?? configureHosts({
      ...(options.hostsDir === undefined ? {} : { hostsDir: options.hostsDir }),
      ...(options.plainHTTP === undefined ? {} : { plainHTTP: options.plainHTTP }),
    });
    this.http = new HttpClient({
      userAgent: options.userAgent ?? `layerpool/${packageVersion()}`,
      timeouts: { ...RESOLVER_DEFAULTS.timeouts, ...options.timeouts },
      retry: retryPolicy(options.retry),
    });
    this.authorizer = new Authorizer({ http: this.http, credentials: options.credentials ?? dockerConfigCredentials(options.dockerConfig) });
    for (const key of ['maxManifestSize', 'uploadChunkSize'] as const) {
      const value = options[key];
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
        throw new InvalidArgumentError(`${key} must be a positive integer, got ${String(value)}`);
      }
    }
    this.maxManifestSize = options.maxManifestSize ?? RESOLVER_DEFAULTS.maxManifestSize;
    this.uploadChunkSize = options.uploadChunkSize;
  }

  async resolve(ref: string, options: ResolveOptions = {}): Promise<Resolved> {
    const repository = await this.repository(ref);
    const reference = repository.reference;
    try {
      const descriptor = await repository.eachHost('resolve', `resolve ${reference.toString()}`, (host) => this.resolveOn(repository, host, options.signal));
      return { name: reference.toString(), descriptor };
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError(`image ${reference.toString()} not found: ${err.message}`, { cause: err });
      throw err;
    }
  }

  async fetcher(ref: string): Promise<RegistryFetcher> {
    return new RegistryFetcher(await this.repository(ref));
  }

  async pusher(ref: string): Promise<RegistryPusher> {
    return new RegistryPusher(await this.repository(ref), {
      maxManifestSize: this.maxManifestSize,
      ...(this.uploadChunkSize === undefined ? {} : { chunkSize: this.uploadChunkSize }),
    });
  }

  /** Close the kept-alive connections. */
  async close(): Promise<void> {
    await this.http.close();
  }

  private async repository(ref: string | Reference): Promise<Repository> {
    const reference = typeof ref === 'string' ? parseReference(ref) : ref;
    return new Repository({ reference, hosts: await this.hosts(reference.domain), http: this.http, authorizer: this.authorizer });
  }

  private async resolveOn(repository: Repository, host: RegistryHost, signal: AbortSignal | undefined): Promise<Descriptor> {
    const reference = repository.reference;
    const byDigest = reference.digest;
    const url = repository.url(host, `manifests/${reference.object}`, { mirrorNamespace: true });
    const headers = { accept: manifestAccept() };

    const head = await repository.request(host, { method: 'HEAD', url, headers, actions: ['pull'], signal });
    if (head.status === 404) throw await statusError(head, describeRequest('HEAD', url));
    await head.body.dump().catch(() => undefined);
    if (head.status === 200) {
      const mediaType = contentType(header(head, 'content-type'));
      const digest = header(head, 'docker-content-digest');
      const length = Number(header(head, 'content-length') ?? Number.NaN);
      const digestOK = byDigest !== undefined ? digest === undefined || digest === byDigest : digest !== undefined && isValidDigest(digest);
      if (!isGenericType(mediaType) && Number.isSafeInteger(length) && length >= 0 && digestOK) {
        checkManifestType(mediaType as string, reference);
        this.checkSize(length, reference);
        return { mediaType: mediaType as string, digest: byDigest ?? (digest as string), size: length };
      }
    }

    // HEAD was refused or incomplete: GET the manifest and look at it.
    const res = await repository.request(host, { method: 'GET', url, headers, actions: ['pull'], signal });
    const what = describeRequest('GET', url);
    if (res.status !== 200) throw await statusError(res, what);
    const length = header(res, 'content-length');
    if (length !== undefined) {
      const declared = Number(length);
      if (declared > this.maxManifestSize) res.body.destroy();
      this.checkSize(declared, reference);
    }
    const announced = header(res, 'docker-content-digest');
    const expected = byDigest ?? (announced !== undefined && isValidDigest(announced) ? announced : undefined);
    const data = await readAll(res.body, { maxSize: this.maxManifestSize, what: `manifest of ${reference.toString()} (maxManifestSize)`, signal });
    const digest = digestOf(data, expected === undefined ? 'sha256' : parseDigest(expected).algorithm);
    if (expected !== undefined && digest !== expected) {
      throw new DigestMismatchError(expected, digest, `manifest of ${reference.toString()} from ${host.host}`);
    }

    let mediaType = contentType(header(res, 'content-type'));
    if (isGenericType(mediaType)) mediaType = detectDocumentType(data, `manifest of ${reference.toString()}`);
    checkManifestType(mediaType as string, reference);
    const descriptor: Descriptor = { mediaType: mediaType as string, digest, size: data.length };
    // Malformed documents fail here, naming what is wrong, rather than later in a walk.
    parseDocument(descriptor, data);
    return descriptor;
  }

  private checkSize(size: number, reference: Reference): void {
    if (size > this.maxManifestSize) {
      throw new ResourceExhaustedError(`manifest of ${reference.toString()} is ${size} bytes, more than the ${this.maxManifestSize} allowed (maxManifestSize)`);
    }
  }
}
