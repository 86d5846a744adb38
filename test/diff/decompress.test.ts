import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { declaredCompression, decompress, sniffCompression } from '../../src/diff/decompress.js';
import { isInvalidArgument } from '../../src/errors.js';
import { MediaType } from '../../src/images/mediatypes.js';
import { applyBuffer, bind, gzip, lz4, sha256, tarLayer, zstd } from '../helpers/layers.js';
import { tempDir } from '../helpers/tmp.js';

const LZ4_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+lz4';

/** A layer with compressible and incompressible content, bigger than lz4's 64 KiB window and blocks. */
function sampleLayer(): Buffer {
  const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(20_000));
  const noise = Buffer.alloc(200_000);
  for (let i = 0, x = 1; i < noise.length; i++) noise[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return tarLayer([
    { name: 'text', content: text },
    { name: 'noise', content: noise },
    { name: 'small', content: 'small' },
  ]);
}

describe('media types and magic bytes', () => {
  test('every OCI and Docker layer media type maps to its compression', () => {
    assert.equal(declaredCompression(MediaType.OCILayer), 'none');
    assert.equal(declaredCompression(MediaType.OCILayerGzip), 'gzip');
    assert.equal(declaredCompression(MediaType.OCILayerZstd), 'zstd');
    assert.equal(declaredCompression(MediaType.OCILayerNonDistributable), 'none');
    assert.equal(declaredCompression(MediaType.OCILayerNonDistributableGzip), 'gzip');
    assert.equal(declaredCompression(MediaType.OCILayerNonDistributableZstd), 'zstd');
    assert.equal(declaredCompression(MediaType.DockerLayerGzip), 'gzip');
    assert.equal(declaredCompression(MediaType.DockerLayerForeignGzip), 'gzip');
    assert.equal(declaredCompression(LZ4_MEDIA_TYPE), 'lz4');
  });

  test('an unknown media type is NotImplemented and the message names it', () => {
    assert.throws(() => declaredCompression('application/vnd.oci.image.layer.v1.tar+gzip+encrypted'), {
      code: 'LP_ERR_NOT_IMPLEMENTED',
      message: /tar\+gzip\+encrypted/,
    });
  });

  test('magic bytes: gzip 1f8b, zstd 28b52ffd, lz4 04224d18, tar none', () => {
    assert.equal(sniffCompression(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
    assert.equal(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
    assert.equal(sniffCompression(Buffer.from([0x04, 0x22, 0x4d, 0x18])), 'lz4');
    assert.equal(sniffCompression(tarLayer([{ name: 'f' }])), undefined);
    assert.equal(sniffCompression(Buffer.from([0x1f])), undefined);
  });

  test('an unknown media type fails before the source is read', async (t) => {
    let read = false;
    const source = (async function* () {
      read = true;
      yield Buffer.alloc(0);
    })();
    const { applyLayer } = await import('../../src/diff/apply.js');
    await assert.rejects(applyLayer(source, bind(tempDir(t)), { mediaType: 'text/plain' }), { code: 'LP_ERR_NOT_IMPLEMENTED' });
    assert.equal(read, false);
  });
});

async function chunkSizes(chunks: AsyncIterable<Buffer>): Promise<{ largest: number; total: number }> {
  let largest = 0;
  let total = 0;
  for await (const chunk of chunks) {
    largest = Math.max(largest, chunk.length);
    total += chunk.length;
  }
  return { largest, total };
}

describe('decompression and the diffID', () => {
  const layer = sampleLayer();

  const cases: [string, () => Promise<Buffer> | Buffer, string][] = [
    ['uncompressed', () => layer, MediaType.OCILayer],
    ['gzip, one member', () => gzip(layer), MediaType.OCILayerGzip],
    ['gzip, several members (pigz-style)', () => gzip(layer, 5), MediaType.DockerLayerGzip],
    ['zstd', () => zstd(layer), MediaType.OCILayerZstd],
    ['lz4 frame, independent blocks, content checksum', () => lz4(layer), LZ4_MEDIA_TYPE],
    ['lz4 frame, linked 64 KiB blocks with block checksums', () => lz4(layer, ['-BD', '-B4', '-BX']), LZ4_MEDIA_TYPE],
    ['lz4 frame with content size, two concatenated frames', () => Buffer.concat([lz4(layer.subarray(0, 100_000), ['--content-size']), lz4(layer.subarray(100_000))]), LZ4_MEDIA_TYPE],
  ];
  for (const [name, make, mediaType] of cases) {
    test(`${name}: applies, and the diffID is sha256 of the decompressed bytes`, async (t) => {
      const root = tempDir(t);
      const blob = await make();
      const stats = await applyBuffer(blob, bind(root), { mediaType, expectedDiffID: sha256(layer) });
      assert.equal(stats.diffID, sha256(layer));
      assert.equal(stats.uncompressedBytes, layer.length);
      assert.equal(stats.compressedBytes, blob.length);
      assert.equal(readFileSync(join(root, 'small'), 'utf8'), 'small');
      assert.equal(readFileSync(join(root, 'text')).length, 20_000 * 44);
    });
  }

  test('the diffID matches `gzip -dc | sha256sum` of a GNU tar layer', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'f'), 'content');
    const blob = execFileSync('bash', ['-c', `tar -C ${dir} -c f | gzip -6`]);
    const sum = execFileSync('bash', ['-c', 'gzip -dc | sha256sum'], { input: blob, encoding: 'utf8' }).split(' ')[0];
    const stats = await applyBuffer(blob, bind(tempDir(t)), { mediaType: MediaType.OCILayerGzip });
    assert.equal(stats.diffID, `sha256:${sum}`);
  });

  test('magic bytes win over a media type that says plain tar (gzip, zstd and lz4 blobs)', async (t) => {
    for (const blob of [gzip(layer), await zstd(layer), lz4(layer)]) {
      const stats = await applyBuffer(blob, bind(tempDir(t)), { mediaType: MediaType.DockerLayer });
      assert.equal(stats.diffID, sha256(layer));
    }
    const mislabelled = await applyBuffer(await zstd(layer), bind(tempDir(t)), { mediaType: MediaType.OCILayerGzip });
    assert.equal(mislabelled.compression, 'zstd');
  });

  test('decompress() yields bounded chunks: a 64 MiB gzip of zeros never comes out in one piece', async () => {
    const zeros = gzip(Buffer.alloc(64 << 20));
    const { chunks } = await decompress(Readable.from([zeros]), MediaType.OCILayerGzip);
    const { largest, total } = await chunkSizes(chunks);
    assert.equal(total, 64 << 20);
    assert.ok(largest <= 1 << 20, `largest chunk ${largest}`);
  });

  test('zstd output comes in decoder-sized chunks, not all that one input chunk expands to', async () => {
    const blob = await zstd(Buffer.alloc(32 << 20));
    assert.ok(blob.length < 2048, 'the whole 32 MiB frame is one input chunk');
    const { chunks } = await decompress(Readable.from([blob]), MediaType.OCILayerZstd);
    const { largest, total } = await chunkSizes(chunks);
    assert.equal(total, 32 << 20);
    assert.ok(largest <= 256 << 10, `largest chunk ${largest}`);
  });
});

const flip = (buf: Buffer, at: number): void => {
  buf[at] = (buf[at] as number) ^ 0xff;
};

describe('corrupt input', () => {
  const layer = tarLayer([{ name: 'f', content: 'x'.repeat(100_000) }]);
  const corrupts = async (t: import('node:test').TestContext, blob: Buffer, mediaType: string, pattern: RegExp): Promise<void> => {
    await assert.rejects(applyBuffer(blob, bind(tempDir(t)), { mediaType }), (err: Error) => isInvalidArgument(err) && pattern.test(err.message));
  };

  test('gzip with flipped bytes', (t) => {
    const blob = gzip(layer);
    flip(blob, blob.length >> 1);
    flip(blob, (blob.length >> 1) + 1);
    return corrupts(t, blob, MediaType.OCILayerGzip, /^corrupt gzip layer: /);
  });

  test('gzip cut short', (t) => corrupts(t, gzip(layer).subarray(0, 60), MediaType.OCILayerGzip, /^corrupt gzip layer: unexpected end of file/));

  test('a blob labelled gzip that is not gzip', (t) => corrupts(t, Buffer.from('definitely not gzip'), MediaType.OCILayerGzip, /^corrupt gzip layer/));

  test('zstd with flipped bytes', async (t) => {
    const blob = await zstd(layer);
    for (let i = 12; i < blob.length - 4; i += 7) flip(blob, i);
    return corrupts(t, blob, MediaType.OCILayerZstd, /^corrupt zstd layer: /);
  });

  test('zstd cut short', async (t) => corrupts(t, (await zstd(layer)).subarray(0, 20), MediaType.OCILayerZstd, /^corrupt zstd layer: .*inside a frame/));

  test('lz4 with a bad content checksum, a bad block, a cut', async (t) => {
    const blob = lz4(layer);
    const badChecksum = Buffer.from(blob);
    flip(badChecksum, badChecksum.length - 1);
    await corrupts(t, badChecksum, LZ4_MEDIA_TYPE, /^corrupt lz4 layer: content checksum mismatch/);
    const badBlock = lz4(layer, ['-BX']);
    flip(badBlock, 20);
    await corrupts(t, badBlock, LZ4_MEDIA_TYPE, /^corrupt lz4 layer: /);
    await corrupts(t, blob.subarray(0, blob.length - 10), LZ4_MEDIA_TYPE, /^corrupt lz4 layer: truncated/);
  });
});
