/**
 * Layer decompression: the media type names the compression, magic bytes confirm or
 * correct it, and a streaming decoder turns the compressed chunks into tar chunks with
 * bounded memory (a decompression bomb is stopped by the caller's byte limit as the
 * chunks flow, never after the fact).
 *
 *   compressed chunks ─▶ sniff(first bytes, media type) ─▶ gzip | zstd | lz4 | none ─▶ tar chunks
 *
 * - gzip: node:zlib, which runs on the libuv pool, so inflating overlaps with the
 *   caller's synchronous file writes; it reads multi-member streams (pigz, concatenated
 *   members) and stops when its readable side is full.
 * - zstd: zstd-napi's context driven one output buffer at a time (its DecompressStream
 *   pushes everything one input chunk expands to at once, which a bomb turns into
 *   gigabytes); concatenated and skippable frames are handled by libzstd.
 * - lz4: the frame decoder in lz4-frame.ts (lz4-napi has no streaming frame API).
 */
import { Readable, pipeline, type TransformOptions } from 'node:stream';
import { createGunzip, type ZlibOptions } from 'node:zlib';
import zstd from 'zstd-napi/binding.js';
import { InvalidArgumentError, NotImplementedError } from '../errors.js';
import { layerCompression, type LayerCompression } from '../images/mediatypes.js';
import { decodeLz4Frames } from './lz4-frame.js';

export type { LayerCompression };

export const DecompressDefaults = {
  /** zlib output buffer size. */
  gzipChunkSize: 128 * 1024,
  /** How far zlib may inflate ahead of the consumer (it works on another thread meanwhile). */
  gzipReadAhead: 2 * 1024 * 1024,
} as const;

const MAGIC: readonly { compression: LayerCompression; bytes: readonly number[] }[] = [
  { compression: 'gzip', bytes: [0x1f, 0x8b] },
  { compression: 'zstd', bytes: [0x28, 0xb5, 0x2f, 0xfd] },
  { compression: 'lz4', bytes: [0x04, 0x22, 0x4d, 0x18] },
];

/** The compression a layer media type declares; NotImplemented for anything that is not a layer we read. */
export function declaredCompression(mediaType: string): LayerCompression {
  const compression = layerCompression(mediaType);
  if (compression === undefined) throw new NotImplementedError(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  return compression;
}

/** The compression the first bytes of a blob announce, if any. */
export function sniffCompression(head: Uint8Array): LayerCompression | undefined {
  for (const { compression, bytes } of MAGIC) {
    if (head.length >= bytes.length && bytes.every((b, i) => head[i] === b)) return compression;
  }
  return undefined;
}

export interface Decompression {
  /** What the blob turned out to be compressed with. */
  compression: LayerCompression;
  /** The decompressed bytes, chunk by chunk. */
  chunks: AsyncIterable<Buffer>;
}

/**
 * Start decompressing `source`. Magic bytes win over the media type: registries and
 * tools mislabel layers (a gzip blob typed as plain tar, a zstd blob typed gzip), and a
 * wrong decoder would only fail. When the bytes carry no known magic the declared
 * compression is used, so a blob that claims gzip and is not fails as corrupt gzip.
 */
export async function decompress(source: AsyncIterable<Uint8Array>, mediaType: string): Promise<Decompression> {
  const declared = declaredCompression(mediaType);
  const iterator = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headLength = 0;
  let done = false;
  while (headLength < 4) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    const chunk = toBuffer(next.value);
    head.push(chunk);
    headLength += chunk.length;
  }
  const compression = sniffCompression(Buffer.concat(head, headLength)) ?? declared;
  const input = resume(head, done ? undefined : iterator);
  switch (compression) {
    case 'none':
      return { compression, chunks: input };
    case 'gzip':
      return { compression, chunks: gunzip(input) };
    case 'zstd':
      return { compression, chunks: unzstd(input) };
    case 'lz4':
      return { compression, chunks: decodeLz4Frames(input) };
  }
}

async function* resume(head: Buffer[], rest: AsyncIterator<Uint8Array> | undefined): AsyncGenerator<Buffer> {
  try {
    for (const chunk of head) if (chunk.length > 0) yield chunk;
    if (!rest) return;
    for (;;) {
      const next = await rest.next();
      if (next.done) return;
      if (next.value.byteLength > 0) yield toBuffer(next.value);
    }
  } finally {
    // Stop the source when the consumer stops early (an error, a limit, a cancel).
    void rest?.return?.()?.catch(() => undefined);
  }
}

function toBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function corrupt(format: string, err: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`corrupt ${format} layer: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

async function* gunzip(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  // zlib streams take stream options too; @types/node only declares the zlib ones.
  const options: ZlibOptions & TransformOptions = {
    chunkSize: DecompressDefaults.gzipChunkSize,
    readableHighWaterMark: DecompressDefaults.gzipReadAhead,
  };
  const inflate = createGunzip(options);
  // Errors reach us through `inflate` (pipeline destroys it with the source's error).
  pipeline(Readable.from(input, { objectMode: false }), inflate, () => undefined);
  try {
    for await (const chunk of inflate) yield chunk as Buffer;
  } catch (err) {
    // zlib's own errors carry Z_* codes; anything else came from the source and keeps its kind.
    if (typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('Z_')) {
      throw corrupt('gzip', err);
    }
    throw err;
  }
}

async function* unzstd(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const context = new zstd.DCtx();
  const outputSize = zstd.dStreamOutSize();
  let inFrame = false;
  for await (const chunk of input) {
    let pending = chunk;
    for (;;) {
      const output = Buffer.allocUnsafe(outputSize);
      let result: [number, number, number];
      try {
        result = context.decompressStream(output, pending);
      } catch (err) {
        throw corrupt('zstd', err);
      }
      const [hint, produced, consumed] = result;
      pending = pending.subarray(consumed);
      if (produced > 0) yield output.subarray(0, produced);
      // Done with this chunk once it is consumed and the decoder has no more output to give:
      // it left room in the buffer, or it finished a frame (hint 0: decoded and flushed).
      if (pending.length === 0 && (produced < output.length || hint === 0)) {
        inFrame = hint !== 0;
        break;
      }
    }
  }
  if (inFrame) throw corrupt('zstd', new Error('the stream ends inside a frame'));
}
