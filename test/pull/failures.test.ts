import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LayerSpec } from '../../bench/fixtures/index.js';
import { chainIDs, digestOf } from '../../src/digest.js';
import { isCanceled, isDigestMismatch, isNotFound } from '../../src/errors.js';
import { ingestRef } from '../../src/remote/fetch.js';
import { openFilesUnder } from '../helpers/fds.js';
import { assertUnpackedTree, buildTestImage, expectedTree, plainLayer, publish, referenceOf, snapshotKeys, startPullEnvironment, testSpec } from '../helpers/images.js';
import { assertPulled, assertResumedFrom, chainOf, composeImage } from './helpers.js';

describe('Client.pull failures', () => {
  // The timeout only bounds a hang (a stalled pull the test failed to cancel), it asserts nothing.
  test('cancelling a pull while layers download is CanceledError and leaves only resumable ingests; a retry resumes and succeeds', { timeout: 120_000 }, async (t) => {
    const env = await startPullEnvironment(t);
    const { proxy, client } = env;
    const image = await buildTestImage(t, testSpec('cancel', Array.from({ length: 4 }, () => plainLayer(4, 1 << 20, { sizeDistribution: 'large' }))));
    const manifest = image.manifests[0]!;
    const ref = await publish(env, image, 'failures/cancel');
    // Every layer response sends a first part, then nothing: the pull hangs mid-download.
    const sentBeforeStall = 32 << 10;
    const layerPaths = new RegExp(`^/v2/failures/cancel/blobs/(${manifest.layers.map((l) => l.descriptor.digest).join('|')})$`);
    proxy.addFault({ method: 'GET', path: layerPaths, fault: { kind: 'stall', afterBytes: sentBeforeStall } });

    const controller = new AbortController();
    const pull = client.pull(ref, {
      signal: controller.signal,
      progress: (event) => {
        if (event.type === 'layer' && event.status === 'downloading' && event.fetched >= sentBeforeStall) controller.abort(new Error('test cancels the pull'));
      },
    });
    await assert.rejects(pull, (err: Error) => isCanceled(err) || assert.fail(`CanceledError, got ${err.name}: ${err.message}`));

    assert.deepEqual(await snapshotKeys(await client.snapshotter()), [], 'no extract-* snapshot remains, and nothing was committed');
    await assert.rejects(client.getImage(ref), (err: Error) => isNotFound(err));
    assert.deepEqual(client.leases.list(), []);
    // What stays are the ingests of the layers cut mid-download, kept on purpose: each is
    // a prefix of its layer that the next pull continues with a Range request.
    const layerRefs = manifest.layers.map((l) => ingestRef(l.descriptor));
    const statuses = await client.content.listStatuses();
    assert.ok(statuses.length > 0, 'at least the layer that reported progress kept its ingest');
    for (const status of statuses) {
      const layer = manifest.layers[layerRefs.indexOf(status.ref)];
      assert.ok(layer, `ingest ${status.ref} belongs to a layer`);
      assert.equal(status.expected, layer.descriptor.digest);
      assert.equal(status.total, layer.descriptor.size);
      assert.ok(status.offset <= sentBeforeStall, `ingest ${status.ref} holds at most what the proxy sent (${status.offset})`);
    }

    proxy.clearFaults();
    const before = proxy.requests.length;
    const retry = await client.pull(ref);
    assert.equal(retry.unpacked[0]!.layersApplied, manifest.layers.length);
    for (const status of statuses.filter((s) => s.offset > 0)) {
      const { digest, size } = manifest.layers[layerRefs.indexOf(status.ref)]!.descriptor;
      assertResumedFrom(proxy.requests.slice(before).find((r) => r.method === 'GET' && r.path.endsWith(digest)), status.offset, size);
    }
    assert.deepEqual(await client.content.listStatuses(), [], 'the resumed ingests were committed');
    await assertPulled(t, client, manifest, await expectedTree(manifest));
  });

  for (const source of ['a download', 'a stored blob'] as const) {
    test(`cancelling a pull while a worker applies a layer from ${source} closes every file the worker had open under the root`, { timeout: 120_000 }, async (t) => {
      const env = await startPullEnvironment(t);
      const { proxy, client } = env;
      const image = await buildTestImage(t, testSpec('cancel-apply', [plainLayer(6, 48 << 20, { sizeDistribution: 'large' })]));
      const manifest = image.manifests[0]!;
      const ref = await publish(env, image, 'failures/cancel-apply');
      const layer = manifest.layers[0]!.descriptor;
      if (source === 'a download') {
        // The layer stalls halfway: the worker has applied what came and waits for more,
        // holding the ingest it reads and the file it writes.
        proxy.addFault({ method: 'GET', path: new RegExp(`/blobs/${layer.digest}$`), fault: { kind: 'stall', afterBytes: Math.floor(layer.size / 2) } });
      } else {
        await client.pull(ref, { unpack: false });
      }

      const controller = new AbortController();
      const pull = client.pull(ref, {
        signal: controller.signal,
        progress: (event) => {
          if (event.type === 'layer' && event.status === 'extracting' && (event.applied ?? 0) > 0) controller.abort(new Error('test cancels the pull'));
        },
      });
      await assert.rejects(pull, (err: Error) => isCanceled(err) || assert.fail(`CanceledError, got ${err.name}: ${err.message}`));
      assert.deepEqual(await snapshotKeys(await client.snapshotter()), [], 'the prepared snapshot was removed');
      assert.deepEqual(openFilesUnder(client.root.path, /\/(metadata\.db(-wal|-shm)?|lock)$/), [], 'no descriptor is left on the ingest, the blob or the snapshot files');
    });
  }

  test('a config listing a wrong diff ID fails with DigestMismatchError; that chain and those above are not committed, the lower ones stay valid', async (t) => {
    const env = await startPullEnvironment(t);
    const { client } = env;
    const base: LayerSpec[] = [plainLayer(10, 80 << 10, { seed: 'pull-diffid/0', symlinks: 1 }), plainLayer(6, 40 << 10, { seed: 'pull-diffid/1', whiteouts: 1 })];
    const good = await buildTestImage(t, testSpec('base', base));
    const full = await buildTestImage(t, testSpec('full', [...base, plainLayer(6, 40 << 10)]));
    const goodManifest = good.manifests[0]!;
    assert.deepEqual(chainOf(full.manifests[0]!).slice(0, 2), chainOf(goodManifest), 'both images start with the same two layers');
    await client.pull(await publish(env, good, 'failures/base'));

    // Layer 1's diff ID names other bytes: its chain ID and the one above are new.
    const { layers } = full.manifests[0]!;
    const wrongDiffID = digestOf('not the uncompressed layer');
    const bad = await composeImage(full.layoutDir, [layers[0]!, { descriptor: layers[1]!.descriptor, diffID: wrongDiffID }, layers[2]!]);
    const badRef = await publish(env, { layoutDir: full.layoutDir, descriptor: bad.descriptor }, 'failures/bad-diffid');
    await assert.rejects(client.pull(badRef), (err: Error) => {
      assert.ok(isDigestMismatch(err), `DigestMismatchError, got ${err.name}: ${err.message}`);
      assert.match(err.message, new RegExp(wrongDiffID.slice('sha256:'.length)));
      return true;
    });

    const snapshotter = await client.snapshotter();
    const badChain = chainIDs(bad.layers.map((l) => l.diffID));
    assert.equal(badChain[0], chainOf(goodManifest)[0]);
    assert.deepEqual(await snapshotKeys(snapshotter), [...chainOf(goodManifest)].sort(), 'no extract-* left, nothing of the bad chain, the lower chain untouched');
    assert.deepEqual(client.leases.list(), []);
    await assert.rejects(client.getImage(badRef), (err: Error) => isNotFound(err));
    await assertUnpackedTree(t, snapshotter, chainOf(goodManifest).at(-1)!, await expectedTree(goodManifest));
  });

  test('an unknown tag is NotFound', async (t) => {
    const env = await startPullEnvironment(t);
    await publish(env, await buildTestImage(t, testSpec('known', [plainLayer(2, 4 << 10)])), 'failures/tags', 'known');

    await assert.rejects(env.client.pull(referenceOf(env.proxy.host, 'failures/tags', 'unknown')), (err: Error) => isNotFound(err) || assert.fail(`NotFound, got ${err.name}: ${err.message}`));
    assert.deepEqual(await env.client.listImages(), []);
    assert.deepEqual(env.client.leases.list(), []);
  });

  test('a layer whose bytes arrive corrupted fails with DigestMismatchError and nothing is kept for it', async (t) => {
    const env = await startPullEnvironment(t);
    const { proxy, client } = env;
    // An uncompressed layer holding one 64 KiB file: a flipped byte inside the file's data
    // passes the tar reader, so only the digest checks can catch it.
    const image = await buildTestImage(t, testSpec('corrupt', [plainLayer(5, 20 << 10), plainLayer(1, 64 << 10, { compression: 'none', sizeDistribution: 'large', dirs: 0 })]));
    const manifest = image.manifests[0]!;
    const corrupted = manifest.layers[1]!.descriptor;
    const ref = await publish(env, image, 'failures/corrupt');
    proxy.addFault({ method: 'GET', path: `/v2/failures/corrupt/blobs/${corrupted.digest}`, fault: { kind: 'corrupt', offset: 32 << 10 } });

    await assert.rejects(client.pull(ref), (err: Error) => {
      assert.ok(isDigestMismatch(err), `DigestMismatchError, got ${err.name}: ${err.message}`);
      assert.match(err.message, new RegExp(corrupted.digest.slice('sha256:'.length)));
      return true;
    });

    const keys = await snapshotKeys(await client.snapshotter());
    assert.equal(keys.includes(chainOf(manifest)[1]!), false, 'the corrupted layer is not committed');
    assert.deepEqual(keys.filter((k) => k.startsWith('extract-')), [], 'no extract-* left');
    await assert.rejects(client.content.info(corrupted.digest), (err: Error) => isNotFound(err), 'the corrupted blob is not in the store');
    assert.deepEqual(await client.content.listStatuses(), [], 'its ingest was dropped');
    assert.deepEqual(client.leases.list(), []);
    await assert.rejects(client.getImage(ref), (err: Error) => isNotFound(err));
  });
});
