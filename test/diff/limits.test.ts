import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { applyLayer } from '../../src/diff/apply.js';
import { CanceledError, isCanceled, isDigestMismatch, isResourceExhausted, isUnavailable } from '../../src/errors.js';
import { MediaType } from '../../src/images/mediatypes.js';
import { applyBuffer, bind, sha256, tarLayer } from '../helpers/layers.js';
import { tempDir } from '../helpers/tmp.js';

const GiB = 1024 ** 3;

/** A gzip "bomb": one 1 GiB file of zeros, as ~1 MiB of concatenated gzip members. */
function gzipBomb(): { blob: Buffer; chunks: Buffer[] } {
  const header = tarLayer([{ name: 'zeros', size: GiB }], { end: 0 }).subarray(0, 512);
  const zerosMember = gzipSync(Buffer.alloc(1 << 20), { level: 9 });
  const chunks = [gzipSync(header), ...Array.from({ length: 1024 }, () => zerosMember)];
  return { blob: Buffer.concat(chunks), chunks };
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

function* chunked(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

/** A full collection, without starting node with --expose-gc. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('limits', () => {
  test('with a signal, chunks already applied are not kept until the apply ends', async (t) => {
    const root = tempDir(t);
    const CHUNK = 1 << 20;
    const CHUNKS = 48;
    const header = tarLayer([{ name: 'big', size: CHUNKS * CHUNK }], { end: 0 }).subarray(0, 512);
    const early: WeakRef<Buffer>[] = [];
    let alive = -1;
    const source = (async function* () {
      yield Buffer.from(header);
      for (let i = 0; i < CHUNKS; i++) {
        if (i === CHUNKS - 1) {
          // Let the chunks before settle through the pipeline, then see which are still held.
          await new Promise((resolve) => setImmediate(resolve));
          collectGarbage();
          alive = early.filter((ref) => ref.deref() !== undefined).length;
        }
        const chunk = Buffer.alloc(CHUNK, i);
        if (i < 16) early.push(new WeakRef(chunk));
        yield chunk;
      }
      yield Buffer.alloc(1024);
    })();
    const signal = new AbortController().signal;
    await applyLayer(source, bind(root), { mediaType: MediaType.OCILayer, signal });
    assert.equal(statSync(join(root, 'big')).size, CHUNKS * CHUNK);
    assert.equal(alive, 0, `${alive} of the first 16 chunks were still reachable near the end of the apply`);
  });


  test('a decompression bomb stops with ResourceExhausted soon after maxUncompressedBytes, reading little of it', async (t) => {
    const root = tempDir(t);
    const { chunks } = gzipBomb();
    let pulled = 0;
    const source = (async function* () {
      for (const chunk of chunks) {
        pulled++;
        yield chunk;
      }
    })();
    await assert.rejects(
      applyLayer(source, bind(root), { mediaType: MediaType.OCILayerGzip, maxUncompressedBytes: 4 << 20 }),
      (err: Error) => isResourceExhausted(err) && /maxUncompressedBytes/.test(err.message),
    );
    assert.ok(statSync(join(root, 'zeros')).size <= 8 << 20, `wrote ${statSync(join(root, 'zeros')).size} bytes`);
    assert.ok(pulled < 64, `pulled ${pulled} of ${chunks.length} compressed chunks`);
  });

  test('more entries than maxEntries is ResourceExhausted before the extra entry is written', async (t) => {
    const root = tempDir(t);
    const entries = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, content: `${i}` }));
    await assert.rejects(applyBuffer(tarLayer(entries), bind(root), { maxEntries: 10 }), (err: Error) => isResourceExhausted(err) && /maxEntries/.test(err.message));
    assert.equal(existsSync(join(root, 'f9')), true);
    assert.equal(existsSync(join(root, 'f10')), false);
  });

  test('limits and digests that make no sense are refused up front', async (t) => {
    const root = tempDir(t);
    const layer = tarLayer([{ name: 'f' }]);
    await assert.rejects(applyBuffer(layer, bind(root), { maxEntries: 0 }), { code: 'LP_ERR_INVALID_ARGUMENT' });
    await assert.rejects(applyBuffer(layer, bind(root), { maxUncompressedBytes: -1 }), { code: 'LP_ERR_INVALID_ARGUMENT' });
    await assert.rejects(applyBuffer(layer, bind(root), { expectedDiffID: 'sha256:nothex' }), { code: 'LP_ERR_INVALID_ARGUMENT' });
    await assert.rejects(applyBuffer(layer, bind(join(root, 'missing'))), { code: 'LP_ERR_NOT_FOUND' });
    assert.deepEqual(readdirSync(root), []);
  });
});

describe('diffID verification', () => {
  test('a layer whose bytes do not hash to expectedDiffID fails with DigestMismatch naming both', async (t) => {
    const layer = tarLayer([{ name: 'f', content: 'x' }]);
    const wrong = sha256(Buffer.from('something else'));
    await assert.rejects(applyBuffer(layer, bind(tempDir(t)), { expectedDiffID: wrong }), (err: Error & { expected?: string; actual?: string }) => {
      return isDigestMismatch(err) && err.expected === wrong && err.actual === sha256(layer);
    });
  });

  test('concurrent applies in one thread each get the diffID of their own bytes', async (t) => {
    const layers = Array.from({ length: 6 }, (_, i) => tarLayer([{ name: `f${i}`, content: Buffer.alloc(3_000_000 + i, i) }]));
    const results = await Promise.all(layers.map((layer) => applyLayer(Readable.from(chunked(layer, 100_000)), bind(tempDir(t)), { mediaType: MediaType.OCILayer })));
    assert.deepEqual(results.map((r) => r.diffID), layers.map(sha256));
  });

  test('a chunk larger than the hashing ring (20 MiB in one piece) still hashes to the right diffID', async (t) => {
    const layer = tarLayer([{ name: 'big', content: Buffer.alloc(20 << 20, 'z') }, { name: 'small', content: 'after' }]);
    const stats = await applyBuffer(layer, bind(tempDir(t)));
    assert.equal(stats.diffID, sha256(layer));
  });

  test('syncFs: the apply completes with the filesystem synced', async (t) => {
    const layer = tarLayer([{ name: 'f', content: 'x' }]);
    const stats = await applyBuffer(layer, bind(tempDir(t)), { syncFs: true, expectedDiffID: sha256(layer) });
    assert.equal(stats.diffID, sha256(layer));
  });
});

describe('cancellation and failures', () => {
  test('an already aborted signal fails with Canceled before reading', async (t) => {
    const controller = new AbortController();
    controller.abort(new Error('user gave up'));
    let read = false;
    const source = (async function* () {
      read = true;
      yield Buffer.alloc(0);
    })();
    await assert.rejects(applyLayer(source, bind(tempDir(t)), { mediaType: MediaType.OCILayer, signal: controller.signal }), (err: Error) => isCanceled(err) && /user gave up/.test(err.message));
    assert.equal(read, false);
  });

  test('aborting while the source stalls fails promptly with Canceled and releases the source', { timeout: 10_000 }, async (t) => {
    const root = tempDir(t);
    const controller = new AbortController();
    // A download that delivers one chunk and then never continues.
    const source = new Readable({ read() {} });
    source.push(tarLayer([{ name: 'first', content: 'x' }], { end: 0 }));
    const applying = applyLayer(source, bind(root), {
      mediaType: MediaType.OCILayer,
      signal: controller.signal,
      onProgress: () => setImmediate(() => controller.abort(new CanceledError('pull cancelled'))),
    });
    await assert.rejects(applying, (err: Error) => isCanceled(err) && /pull cancelled/.test(err.message));
    assert.equal(existsSync(join(root, 'first')), true, 'what arrived before the abort was applied');
    assert.equal(source.destroyed, true);
  });

  test('aborting mid-stream stops before the next chunk is applied', async (t) => {
    const root = tempDir(t);
    const controller = new AbortController();
    const chunks = [tarLayer([{ name: 'a', content: 'a' }], { end: 0 }), tarLayer([{ name: 'b', content: 'b' }])];
    await assert.rejects(
      applyLayer(Readable.from(chunks), bind(root), { mediaType: MediaType.OCILayer, signal: controller.signal, onProgress: () => controller.abort() }),
      (err: Error) => isCanceled(err),
    );
    assert.equal(existsSync(join(root, 'a')), true);
    assert.equal(existsSync(join(root, 'b')), false);
  });

  test('a failure in the middle of a file closes it and destroys the source stream (no descriptor leaks)', async (t) => {
    const root = tempDir(t);
    const archive = tarLayer([{ name: 'big', content: Buffer.alloc(300_000, 1) }], { end: 0 });
    // A first apply starts the hashing thread (its descriptors stay, shared by later applies).
    await applyBuffer(tarLayer([]), bind(tempDir(t)));
    const before = openFds();
    for (let i = 0; i < 5; i++) {
      const source = Readable.from([archive.subarray(0, 100_000)]);
      await assert.rejects(applyLayer(source, bind(root), { mediaType: MediaType.OCILayer }), { code: 'LP_ERR_INVALID_ARGUMENT', message: /truncated/ });
      assert.equal(source.destroyed, true);
    }
    assert.equal(openFds(), before);
  });

  test('an error from the source is Unavailable and keeps the cause', async (t) => {
    const failure = new Error('connection reset by peer');
    const source = (async function* () {
      yield tarLayer([{ name: 'a', content: 'a' }], { end: 0 });
      throw failure;
    })();
    await assert.rejects(applyLayer(source, bind(tempDir(t)), { mediaType: MediaType.OCILayerGzip }), (err: Error) => isUnavailable(err) && err.cause === failure);
  });
});
