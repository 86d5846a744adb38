import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertUnpackedTree, buildTestImage, expectedTree, plainLayer, presetImage, publish, snapshotKeys, startPullEnvironment, testSpec } from '../helpers/images.js';
import { assertPulled, blobGets, chainOf, composeImage } from './helpers.js';

describe('Client.pull deduplication', () => {
  test('one blob used by two layers of an image is fetched once and both chain IDs are committed', async (t) => {
    const env = await startPullEnvironment(t);
    // No whiteouts in the middle layer: the bottom layer applied again on top gives back
    // exactly the tree of the first two.
    const built = await buildTestImage(t, testSpec('duplicate', [plainLayer(15, 120 << 10, { symlinks: 2, hardlinks: 1 }), plainLayer(8, 60 << 10)]));
    const { layers } = built.manifests[0]!;
    const [bottom, middle] = [layers[0]!, layers[1]!];
    const image = await composeImage(built.layoutDir, [bottom, middle, bottom]);
    const ref = await publish(env, { layoutDir: built.layoutDir, descriptor: image.descriptor }, 'dedup/duplicate');

    const result = await env.client.pull(ref);

    assert.equal(new Set(chainOf(image)).size, 3, 'three distinct chain IDs');
    assert.equal(result.unpacked[0]!.layersApplied, 3);
    assert.equal(blobGets(env.proxy, 'dedup/duplicate').get(bottom.descriptor.digest), 1, 'the shared blob is fetched once');
    await assertPulled(t, env.client, image, await expectedTree(built.manifests[0]!));
  });

  test('a second image sharing base layers applies and fetches only the layers it does not share', async (t) => {
    const env = await startPullEnvironment(t);
    const [a, b] = [await presetImage('shared-base', 0), await presetImage('shared-base', 1)];
    const [manifestA, manifestB] = [a.manifests[0]!, b.manifests[0]!];
    const shared = manifestB.layers.filter((l) => manifestA.layers.some((m) => m.descriptor.digest === l.descriptor.digest));
    assert.equal(shared.length, 2, 'the preset shares two base layers');

    await env.client.pull(await publish(env, a, 'dedup/a'));
    const second = await env.client.pull(await publish(env, b, 'dedup/b'));

    assert.equal(second.unpacked[0]!.layersApplied, manifestB.layers.length - shared.length);
    const gets = blobGets(env.proxy, 'dedup/b');
    for (const layer of manifestB.layers) {
      const own = !shared.includes(layer);
      assert.equal(gets.get(layer.descriptor.digest) ?? 0, own ? 1 : 0, `GETs of ${own ? 'own' : 'shared'} layer ${layer.descriptor.digest}`);
    }
    const snapshotter = await env.client.snapshotter();
    assert.deepEqual(await snapshotKeys(snapshotter), [...new Set([...chainOf(manifestA), ...chainOf(manifestB)])].sort(), 'shared chain IDs are one snapshot each');
    await assertUnpackedTree(t, snapshotter, chainOf(manifestB).at(-1)!, await expectedTree(manifestB));
    await assertUnpackedTree(t, snapshotter, chainOf(manifestA).at(-1)!, await expectedTree(manifestA));
  });

  test('20 concurrent pulls of one image fetch each blob once, apply each layer once and all succeed', async (t) => {
    const env = await startPullEnvironment(t);
    const image = await presetImage('shared-base', 0);
    const manifest = image.manifests[0]!;
    const ref = await publish(env, image, 'dedup/concurrent');

    const results = await Promise.all(Array.from({ length: 20 }, () => env.client.pull(ref)));

    for (const result of results) assert.equal(result.unpacked[0]!.chainID, chainOf(manifest).at(-1));
    assert.equal(results.reduce((n, r) => n + r.unpacked[0]!.layersApplied, 0), manifest.layers.length, 'each layer applied by exactly one pull');
    assert.deepEqual(
      [...blobGets(env.proxy, 'dedup/concurrent').entries()].sort(),
      [manifest.config.digest, ...manifest.layers.map((l) => l.descriptor.digest)].map((d) => [d, 1]).sort(),
      'the config and every layer fetched exactly once',
    );
    assert.equal(env.proxy.count(`/v2/dedup/concurrent/manifests/${manifest.descriptor.digest}`, 'GET'), 1, 'the manifest fetched once');
    await assertPulled(t, env.client, manifest, await expectedTree(manifest));
  });

  test('pulling an image that is already there applies nothing and fetches no blob', async (t) => {
    const env = await startPullEnvironment(t);
    const image = await presetImage('tiny');
    const ref = await publish(env, image, 'dedup/again');
    await env.client.pull(ref);
    const before = env.proxy.requests.length;

    const again = await env.client.pull(ref);

    assert.equal(again.unpacked[0]!.layersApplied, 0);
    assert.equal(again.unpacked[0]!.bytesFetched, 0);
    assert.deepEqual(env.proxy.requests.slice(before).filter((r) => r.path.includes('/blobs/')), [], 'no blob requested');
    assert.equal((await env.client.getImage(ref)).target().digest, image.descriptor.digest);
    await assertPulled(t, env.client, image.manifests[0]!, await expectedTree(image.manifests[0]!));
  });
});
