/**
 * Blob and manifest bytes from a registry: `GET /v2/<name>/blobs/<digest>` (or
 * `/manifests/<digest>` for indexes and manifests), from the first pull host that has
 * them. Bodies stream; their length is checked against the descriptor, not their digest
 * (the content store verifies the digest at commit, see fetch.ts).
 *
 * Ranges: `fetch(desc, {offset})` sends `Range: bytes=<offset>-`. A registry that ignores
 * the range and answers 200 gets its first `offset` bytes skipped here, so the caller
 * always receives the bytes from `offset` on (the bytes cross the network twice, which
 * is no worse than restarting the download).
 */
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { validateDescriptor, type Descriptor } from '../descriptor.js';
import { InvalidArgumentError, SizeMismatchError, UnavailableError } from '../errors.js';
import { isIndexType, isManifestType, isSchema1Type, MANIFEST_ACCEPT } from '../images/mediatypes.js';
import { logger } from '../log.js';
import { describeRequest, header, networkError } from './http.js';
import type { RegistryHost } from './hosts.js';
import { statusError, type Repository } from './repository.js';
import type { FetchOptions, RangeFetcher, RangeOptions, RangeResponse } from './types.js';

const log = logger('remote');

function isManifestDocument(mediaType: string): boolean {
  return isIndexType(mediaType) || isManifestType(mediaType) || isSchema1Type(mediaType);
}

/** Accept for a manifest fetch: the descriptor's own type first, then the usual four. */
export function manifestAccept(mediaType?: string): string {
  return [...new Set([...(mediaType === undefined ? [] : [mediaType]), ...MANIFEST_ACCEPT])].join(', ');
}

/** `bytes <start>-<end>/<total>` (RFC 9110 §14.4). */
function parseContentRange(value: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const match = value === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  if (!match) return undefined;
  return { start: Number(match[1]), end: Number(match[2]), total: match[3] === '*' ? undefined : Number(match[3]) };
}

/**
 * Pass exactly `expected` bytes: more is SizeMismatch at once, an early end (or a broken
 * connection) is Unavailable, so a download can resume from what arrived.
 */
function exactLength(source: Readable, expected: number, what: string, signal: AbortSignal | undefined): Readable {
  let seen = 0;
  const out = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > expected) {
        callback(new SizeMismatchError(expected, seen, what));
        return;
      }
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      callback(seen < expected ? new UnavailableError(`${what}: connection ended after ${seen} of ${expected} bytes`) : null);
    },
  });
  source.on('error', (err) => out.destroy(networkError(err, what, signal)));
  out.on('close', () => source.destroy());
  source.pipe(out);
  return out;
}

/** Drop the first `count` bytes of a stream. */
function skipBytes(count: number): Transform {
  let left = count;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (left >= chunk.length) {
        left -= chunk.length;
        callback();
        return;
      }
      const rest = left > 0 ? chunk.subarray(left) : chunk;
      left = 0;
      callback(null, rest);
    },
  });
}

export class RegistryFetcher implements RangeFetcher {
  private readonly repository: Repository;

  constructor(repository: Repository) {
    this.repository = repository;
  }

  async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<Readable> {
    const offset = options.offset ?? 0;
    const { body, partial } = await this.fetchRange(desc, { start: offset, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    if (partial || offset === 0) return body;
    log.debug({ digest: desc.digest, offset }, 'registry ignored Range; skipping the bytes already held');
    const skipped = body.pipe(skipBytes(offset));
    body.on('error', (err) => skipped.destroy(err));
    skipped.on('close', () => body.destroy());
    return skipped;
  }

  async fetchRange(desc: Descriptor, options: RangeOptions): Promise<RangeResponse> {
    validateDescriptor(desc);
    const start = options.start;
    const end = options.end ?? desc.size;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end > desc.size || start > end) {
      throw new InvalidArgumentError(`invalid range ${start}-${end} of ${desc.digest} (${desc.size} bytes)`);
    }
    // An empty range cannot be asked for (bytes=a-b is inclusive), and needs no request.
    if (start === end) return { body: new PassThrough().end(), partial: true };
    const kind = isManifestDocument(desc.mediaType) ? 'manifests' : 'blobs';
    const ranged = start > 0 || end < desc.size;
    return this.repository.eachHost('pull', `fetch ${desc.digest}`, (host) => this.fetchFrom(host, desc, kind, start, end, ranged, options.signal));
  }

  private async fetchFrom(
    host: RegistryHost,
    desc: Descriptor,
    kind: 'manifests' | 'blobs',
    start: number,
    end: number,
    ranged: boolean,
    signal: AbortSignal | undefined,
  ): Promise<RangeResponse> {
    const url = this.repository.url(host, `${kind}/${desc.digest}`, { mirrorNamespace: true });
    const what = describeRequest('GET', url);
    const headers: Record<string, string> = {};
    if (kind === 'manifests') headers['accept'] = manifestAccept(desc.mediaType);
    if (ranged) headers['range'] = `bytes=${start}-${end - 1}`;
    const res = await this.repository.request(host, { method: 'GET', url, headers, actions: ['pull'], signal });
    if (res.status !== 200 && res.status !== 206) throw await statusError(res, what);
    let partial = false;
    let expected = desc.size;
    if (res.status === 206) {
      const range = parseContentRange(header(res, 'content-range'));
      if (range === undefined || range.start !== start || range.end !== end - 1 || (range.total !== undefined && range.total !== desc.size)) {
        res.body.destroy();
        throw new UnavailableError(`${what}: asked for bytes ${start}-${end - 1}, got Content-Range ${header(res, 'content-range') ?? '(none)'}`);
      }
      partial = true;
      expected = end - start;
    }
    const length = header(res, 'content-length');
    if (length !== undefined && Number(length) !== expected) {
      res.body.destroy();
      throw new SizeMismatchError(expected, Number(length), `${what} Content-Length`);
    }
    return { body: exactLength(res.body, expected, what, signal), partial };
  }
}
