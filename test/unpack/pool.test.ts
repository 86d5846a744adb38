/**
 * The apply pool's cancellation: a cancelled apply stops inside its worker and closes its
 * files; only a worker stuck in a syscall is terminated, after the grace period.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isCanceled } from '../../src/errors.js';
import { MediaType } from '../../src/images/mediatypes.js';
import { BlobFeed } from '../../src/unpack/feed.js';
import { ApplyPool } from '../../src/unpack/pool.js';
import { openFilesUnder } from '../helpers/fds.js';
import { bind, tarLayer } from '../helpers/layers.js';
import { tempDir } from '../helpers/tmp.js';

describe('ApplyPool', () => {
  test('a cancelled apply waiting for bytes stops in its worker, closes its files, and the worker stays usable', async (t) => {
    const dir = tempDir(t);
    const pool = new ApplyPool({ size: 1 });
    t.after(() => pool.close());
    // A layer whose first half is in the file; the second half never comes.
    const layer = tarLayer([{ name: 'big', content: Buffer.alloc(1 << 20, 1) }]);
    const blobPath = join(dir, 'layer.tar');
    writeFileSync(blobPath, layer.subarray(0, layer.length / 2));
    const target = join(dir, 'target');
    execFileSync('mkdir', [target]);
    const feed = new BlobFeed();
    const controller = new AbortController();
    const applying = pool.apply(
      { blobPath, ingestPath: blobPath, available: layer.length / 2, feed: feed.workerPort, mounts: bind(target), options: { mediaType: MediaType.OCILayer } },
      { signal: controller.signal, stop: (reason) => feed.abort(reason) },
    );
    // Wait until the worker holds the layer file and the file it writes.
    for (let i = 0; i < 200 && openFilesUnder(dir).length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(openFilesUnder(dir).length, 2, 'the worker reads the layer and writes big');
    const started = Date.now();
    controller.abort(new Error('test cancels'));
    await assert.rejects(applying, (err: Error) => isCanceled(err));
    assert.ok(Date.now() - started < 5_000, 'stopped well within the grace period');
    feed.close();
    assert.deepEqual(openFilesUnder(dir), [], 'the worker closed the layer and the file it was writing');

    // The same worker applies the next layer.
    const whole = join(dir, 'whole.tar');
    writeFileSync(whole, layer);
    const again = new BlobFeed();
    const target2 = join(dir, 'target2');
    execFileSync('mkdir', [target2]);
    const stats = await pool.apply(
      { blobPath: whole, available: layer.length, size: layer.length, feed: again.workerPort, mounts: bind(target2), options: { mediaType: MediaType.OCILayer } },
      { stop: (reason) => again.abort(reason) },
    );
    again.close();
    assert.equal(stats.files, 1);
  });

  test('a worker stuck in a syscall is terminated after the grace period: the apply fails with Canceled', async (t) => {
    const dir = tempDir(t);
    const pool = new ApplyPool({ size: 1, stopGraceMs: 200 });
    // The layer "file" is a FIFO with no writer: the worker blocks in open(2) and never
    // sees the stop message.
    const fifo = join(dir, 'layer.fifo');
    execFileSync('mkfifo', [fifo]);
    const feed = new BlobFeed();
    const controller = new AbortController();
    let stopAsked = false;
    const applying = pool.apply(
      { blobPath: fifo, available: 0, size: 1024, feed: feed.workerPort, mounts: bind(dir), options: { mediaType: MediaType.OCILayer } },
      { signal: controller.signal, stop: (reason) => { stopAsked = true; feed.abort(reason); } },
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    controller.abort(new Error('test cancels'));
    await assert.rejects(applying, (err: Error) => isCanceled(err));
    const waited = Date.now() - started;
    assert.ok(stopAsked, 'the worker was asked to stop first');
    assert.ok(waited >= 150 && waited < 5_000, `terminated after the grace period (${waited} ms)`);
    feed.close();
    // Let the blocked open(2) return so the terminated thread can end, then close the pool.
    // Non-blocking: if no thread is reading (it ended some other way), this must not hang.
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err;
    }
    await pool.close();
  });
});
