/**
 * Streaming decoder for the LZ4 frame format (lz4 CLI, `+lz4` layers), built on
 * lz4-napi's block decoder.
 *
 * lz4-napi decodes whole frames only (`decompressFrame(Sync)` takes and returns the full
 * buffer), which would hold a layer in memory. Its block API does have what a streaming
 * decoder needs, so the frame container is parsed here: frame descriptor (+ header
 * checksum), blocks of at most the declared maximum size (64 KiB..4 MiB) decoded one at a
 * time, with the previous 64 KiB of output as the dictionary when blocks are linked,
 * optional block and content checksums (xxHash32), concatenated frames and skippable
 * frames. Memory is bounded by one compressed block plus one decoded block.
 * Spec: https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md
 */
import { uncompressSync } from 'lz4-napi';
import { InvalidArgumentError } from '../errors.js';

const FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const LEGACY_MAGIC = 0x184c2102;
/** Linked blocks may reference this much earlier output. */
const WINDOW = 64 * 1024;

function corrupt(reason: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`corrupt lz4 layer: ${reason}`, { cause });
}

/** Decode an LZ4 frame stream chunk by chunk; yields decoded blocks. */
export async function* decodeLz4Frames(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const input = new ByteQueue(source);
  let frames = 0;
  while (await input.fill(4)) {
    const magic = input.take(4).readUInt32LE(0);
    if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      if (!(await input.fill(4))) throw corrupt('truncated skippable frame');
      await input.skip(input.take(4).readUInt32LE(0));
      continue;
    }
    if (magic === LEGACY_MAGIC) throw corrupt('the legacy frame format (lz4 -l) is not supported');
    if (magic !== FRAME_MAGIC) {
      throw corrupt(frames === 0 ? 'not an LZ4 frame (bad magic number)' : 'trailing bytes after the last frame');
    }
    frames++;
    yield* decodeFrame(input);
  }
}

async function* decodeFrame(input: ByteQueue): AsyncGenerator<Buffer> {
  if (!(await input.fill(2))) throw corrupt('truncated frame descriptor');
  const flags = input.peek(2);
  const flg = flags[0] as number;
  const bd = flags[1] as number;
  if (flg >> 6 !== 1) throw corrupt(`unsupported frame version ${flg >> 6}`);
  const independentBlocks = (flg & 0x20) !== 0;
  const blockChecksums = (flg & 0x10) !== 0;
  const hasContentSize = (flg & 0x08) !== 0;
  const hasContentChecksum = (flg & 0x04) !== 0;
  const hasDictId = (flg & 0x01) !== 0;
  if (flg & 0x02 || bd & 0x8f) throw corrupt('reserved bits set in the frame descriptor');
  const blockSizeCode = (bd >> 4) & 0x07;
  if (blockSizeCode < 4) throw corrupt(`invalid maximum block size code ${blockSizeCode}`);
  const maxBlockSize = 1 << (2 * blockSizeCode + 8);

  const descriptorLength = 2 + (hasContentSize ? 8 : 0) + (hasDictId ? 4 : 0);
  if (!(await input.fill(descriptorLength + 1))) throw corrupt('truncated frame descriptor');
  const descriptor = input.take(descriptorLength);
  const headerChecksum = input.take(1)[0];
  if (((xxh32(descriptor) >>> 8) & 0xff) !== headerChecksum) throw corrupt('frame descriptor checksum mismatch');
  if (hasDictId) throw corrupt('frames that need a preset dictionary are not supported');
  const contentSize = hasContentSize ? Number(descriptor.readBigUInt64LE(2)) : undefined;

  const contentHash = hasContentChecksum ? new Xxh32() : undefined;
  let window: Buffer = Buffer.alloc(0);
  let produced = 0;
  for (;;) {
    if (!(await input.fill(4))) throw corrupt('truncated frame: missing end mark');
    const word = input.take(4).readUInt32LE(0);
    if (word === 0) break;
    const uncompressed = (word & 0x80000000) !== 0;
    const length = word & 0x7fffffff;
    if (length > maxBlockSize) throw corrupt(`block of ${length} bytes exceeds the frame's maximum of ${maxBlockSize}`);
    if (!(await input.fill(length + (blockChecksums ? 4 : 0)))) throw corrupt('truncated block');
    const block = input.take(length);
    if (blockChecksums && xxh32(block) !== input.take(4).readUInt32LE(0)) throw corrupt('block checksum mismatch');

    let output: Buffer;
    if (uncompressed) {
      output = Buffer.from(block);
    } else {
      // The block API wants the (maximum) decoded size prepended; it returns the real size.
      const framed = Buffer.allocUnsafe(length + 4);
      framed.writeUInt32LE(maxBlockSize, 0);
      block.copy(framed, 4);
      try {
        output = independentBlocks || window.length === 0 ? uncompressSync(framed) : uncompressSync(framed, window);
      } catch (err) {
        throw corrupt(`block does not decode: ${(err as Error).message}`, err);
      }
    }
    produced += output.length;
    contentHash?.update(output);
    if (!independentBlocks) window = slideWindow(window, output);
    if (output.length > 0) yield output;
  }
  if (contentHash) {
    if (!(await input.fill(4))) throw corrupt('truncated frame: missing content checksum');
    if (contentHash.digest() !== input.take(4).readUInt32LE(0)) throw corrupt('content checksum mismatch');
  }
  if (contentSize !== undefined && contentSize !== produced) {
    throw corrupt(`frame declares ${contentSize} bytes of content but decodes to ${produced}`);
  }
}

function slideWindow(window: Buffer, output: Buffer): Buffer {
  if (output.length >= WINDOW) return Buffer.from(output.subarray(output.length - WINDOW));
  const joined = Buffer.concat([window, output]);
  return joined.length > WINDOW ? joined.subarray(joined.length - WINDOW) : joined;
}

/** Bytes pulled from an async source on demand, so a block can be taken whole. */
class ByteQueue {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private chunks: Buffer[] = [];
  private length = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Buffer at least `n` bytes; false if the source ends first. */
  async fill(n: number): Promise<boolean> {
    while (this.length < n) {
      const next = await this.iterator.next();
      if (next.done) return false;
      const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      this.chunks.push(chunk);
      this.length += chunk.length;
    }
    return true;
  }

  peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.chunks, this.length).subarray(0, n);
  }

  /** Remove and return `n` buffered bytes (fill(n) must have succeeded). */
  take(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.length -= n;
      return out;
    }
    const all = Buffer.concat(this.chunks, this.length);
    const out = all.subarray(0, n);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.length -= n;
    return out;
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill(1))) throw corrupt('truncated skippable frame');
      const first = this.chunks[0] as Buffer;
      const step = Math.min(left, first.length);
      this.take(step);
      left -= step;
    }
  }
}

const PRIME1 = 0x9e3779b1;
const PRIME2 = 0x85ebca77;
const PRIME3 = 0xc2b2ae3d;
const PRIME4 = 0x27d4eb2f;
const PRIME5 = 0x165667b1;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const round = (acc: number, lane: number): number => Math.imul(rotl((acc + Math.imul(lane, PRIME2)) | 0, 13), PRIME1);

/** xxHash32 with seed 0, incremental: the checksum of the LZ4 frame format. */
class Xxh32 {
  private v1 = (PRIME1 + PRIME2) | 0;
  private v2 = PRIME2;
  private v3 = 0;
  private v4 = -PRIME1 | 0;
  private total = 0;
  private readonly stripe = Buffer.alloc(16);
  private stripeFill = 0;

  update(data: Buffer): void {
    this.total += data.length;
    let pos = 0;
    if (this.stripeFill > 0) {
      const take = Math.min(16 - this.stripeFill, data.length);
      data.copy(this.stripe, this.stripeFill, 0, take);
      this.stripeFill += take;
      pos = take;
      if (this.stripeFill < 16) return;
      this.consume(this.stripe, 0);
      this.stripeFill = 0;
    }
    const end = data.length - 16;
    for (; pos <= end; pos += 16) this.consume(data, pos);
    if (pos < data.length) {
      data.copy(this.stripe, 0, pos);
      this.stripeFill = data.length - pos;
    }
  }

  private consume(buf: Buffer, at: number): void {
    this.v1 = round(this.v1, buf.readInt32LE(at));
    this.v2 = round(this.v2, buf.readInt32LE(at + 4));
    this.v3 = round(this.v3, buf.readInt32LE(at + 8));
    this.v4 = round(this.v4, buf.readInt32LE(at + 12));
  }

  digest(): number {
    let h =
      this.total >= 16
        ? (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0
        : (this.v3 + PRIME5) | 0;
    h = (h + this.total) | 0;
    let pos = 0;
    for (; pos + 4 <= this.stripeFill; pos += 4) {
      h = Math.imul(rotl((h + Math.imul(this.stripe.readInt32LE(pos), PRIME3)) | 0, 17), PRIME4);
    }
    for (; pos < this.stripeFill; pos++) {
      h = Math.imul(rotl((h + Math.imul(this.stripe[pos] as number, PRIME5)) | 0, 11), PRIME1);
    }
    h = Math.imul(h ^ (h >>> 15), PRIME2);
    h = Math.imul(h ^ (h >>> 13), PRIME3);
    return (h ^ (h >>> 16)) >>> 0;
  }
}

function xxh32(data: Buffer): number {
  const hash = new Xxh32();
  hash.update(data);
  return hash.digest();
}
