import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTestImage, expectedTree, plainLayer, presetImage, publish, startPullEnvironment, testSpec } from '../helpers/images.js';
import { assertPulled, chainOf } from './helpers.js';

describe('Client.pull of a single-platform image', () => {
  for (const snapshotter of ['overlay', 'native'] as const) {
    test(`${snapshotter}: records the image, commits every chain ID with its labels, releases the lease and unpacks the expected tree`, async (t) => {
      const env = await startPullEnvironment(t);
      const image = await presetImage('tiny');
      const manifest = image.manifests[0]!;
      const ref = await publish(env, image, 'pull/tiny');

      const result = await env.client.pull(ref, { snapshotter });

      assert.equal(result.image.name(), ref);
      assert.equal((await env.client.getImage(ref)).target().digest, image.descriptor.digest);
      assert.equal(result.unpacked.length, 1);
      assert.deepEqual(result.unpacked[0]!.chainIDs, chainOf(manifest));
      assert.equal(result.unpacked[0]!.layersApplied, manifest.layers.length);
      await assertPulled(t, env.client, manifest, await expectedTree(manifest), snapshotter);
    });
  }

  test('layers compressed with gzip, zstd, lz4 and none in one image unpack to the expected tree', async (t) => {
    const env = await startPullEnvironment(t);
    const image = await buildTestImage(
      t,
      testSpec('compressions', [
        plainLayer(20, 200 << 10, { compression: 'gzip', symlinks: 2, hardlinks: 1 }),
        plainLayer(10, 150 << 10, { compression: 'zstd', whiteouts: 2 }),
        plainLayer(10, 150 << 10, { compression: 'lz4', opaqueDirs: 1 }),
        plainLayer(10, 100 << 10, { compression: 'none', whiteouts: 1 }),
      ]),
    );
    const manifest = image.manifests[0]!;
    assert.deepEqual(manifest.layers.map((l) => l.compression), ['gzip', 'zstd', 'lz4', 'none']);
    const ref = await publish(env, image, 'pull/compressions');

    const result = await env.client.pull(ref);

    assert.equal(result.unpacked[0]!.layersApplied, 4);
    await assertPulled(t, env.client, manifest, await expectedTree(manifest));
  });

  test('a pull with syncFs commits every layer', async (t) => {
    const env = await startPullEnvironment(t);
    const image = await presetImage('tiny');
    const manifest = image.manifests[0]!;
    const ref = await publish(env, image, 'pull/syncfs');

    const result = await env.client.pull(ref, { syncFs: true });

    assert.equal(result.unpacked[0]!.layersApplied, manifest.layers.length);
    await assertPulled(t, env.client, manifest, await expectedTree(manifest));
  });
});
