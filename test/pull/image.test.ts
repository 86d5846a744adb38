import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isNotFound } from '../../src/errors.js';
import { assertUnpackedTree, expectedTree, presetImage, publish, snapshotKeys, startPullEnvironment } from '../helpers/images.js';
import { chainOf } from './helpers.js';

describe('Image API over pulled images', () => {
  test('getImage, listImages and deleteImage see the records pulls make', async (t) => {
    const env = await startPullEnvironment(t);
    const { client } = env;
    const multi = await presetImage('multi-platform');
    const refs = [await publish(env, await presetImage('tiny'), 'images/tiny', 'v1'), await publish(env, multi, 'images/multi', 'v2')];
    for (const ref of refs) await client.pull(ref, { labels: { 'test.layerpool/ref': ref } });

    assert.deepEqual((await client.listImages()).map((i) => i.name()).sort(), [...refs].sort());
    const image = await client.getImage(refs[1]!);
    assert.equal(image.target().digest, multi.descriptor.digest);
    assert.equal(image.labels()['test.layerpool/ref'], refs[1]);

    await client.deleteImage(refs[1]!, { sync: true });
    await assert.rejects(client.getImage(refs[1]!), (err: Error) => isNotFound(err));
    assert.deepEqual((await client.listImages()).map((i) => i.name()), [refs[0]]);
    await assert.rejects(client.content.info(multi.descriptor.digest), (err: Error) => isNotFound(err), 'the deleted image was collected');
    assert.equal(await (await client.getImage(refs[0]!)).isUnpacked(), true, 'the other image is untouched');
  });

  test('rootFS, size, usage and isUnpacked describe the pulled image', async (t) => {
    const env = await startPullEnvironment(t);
    const image = await presetImage('tiny');
    const manifest = image.manifests[0]!;
    const ref = await publish(env, image, 'images/describe');
    await env.client.pull(ref);
    const pulled = await env.client.getImage(ref);

    assert.deepEqual(await pulled.rootFS(), manifest.layers.map((l) => l.diffID));
    assert.equal((await pulled.config()).digest, manifest.config.digest);
    const documentBytes = manifest.descriptor.size + manifest.config.size;
    const layerBytes = manifest.layers.reduce((n, l) => n + l.descriptor.size, 0);
    assert.equal(await pulled.size(), documentBytes + layerBytes);
    const usage = await pulled.usage();
    assert.equal(usage, documentBytes + layerBytes, 'every blob is in the store');
    assert.equal(await pulled.usage({ manifestOnly: true }), documentBytes);
    assert.ok((await pulled.usage({ snapshots: true })) > usage, 'the snapshots add their disk use');
    assert.equal(await pulled.isUnpacked(), true);
    assert.equal(await pulled.isUnpacked('native'), false, 'nothing was unpacked with the native snapshotter');
  });

  test('an image pulled with unpack: false has its content but no snapshot until image.unpack()', async (t) => {
    const env = await startPullEnvironment(t);
    const { client } = env;
    const image = await presetImage('tiny');
    const manifest = image.manifests[0]!;
    const ref = await publish(env, image, 'images/later');

    const result = await client.pull(ref, { unpack: false });

    assert.deepEqual(result.unpacked, []);
    const pulled = await client.getImage(ref);
    assert.equal(await pulled.isUnpacked(), false);
    for (const layer of manifest.layers) await client.content.info(layer.descriptor.digest);
    const snapshotter = await client.snapshotter();
    assert.deepEqual(await snapshotKeys(snapshotter), []);

    const unpacked = await pulled.unpack();

    assert.equal(unpacked.chainID, chainOf(manifest).at(-1));
    assert.equal(unpacked.layersApplied, manifest.layers.length);
    assert.equal(await pulled.isUnpacked(), true);
    assert.deepEqual(client.leases.list(), [], 'unpack released its lease');
    await assertUnpackedTree(t, snapshotter, unpacked.chainID, await expectedTree(manifest));
  });

  test('image.unpack() with a layer blob missing from the content store is NotFound and commits nothing', async (t) => {
    const env = await startPullEnvironment(t);
    const { client } = env;
    const image = await presetImage('tiny');
    const manifest = image.manifests[0]!;
    const ref = await publish(env, image, 'images/missing-layer');
    await client.pull(ref, { unpack: false });
    const missing = manifest.layers.at(-1)!.descriptor.digest;
    await client.content.delete(missing);

    await assert.rejects((await client.getImage(ref)).unpack(), (err: Error) => {
      assert.ok(isNotFound(err), `NotFound, got ${err.name}: ${err.message}`);
      assert.match(err.message, new RegExp(missing.slice('sha256:'.length)));
      return true;
    });
    const snapshotter = await client.snapshotter();
    assert.equal((await snapshotKeys(snapshotter)).includes(chainOf(manifest).at(-1)!), false);
    assert.deepEqual((await snapshotKeys(snapshotter)).filter((k) => k.startsWith('extract-')), [], 'no prepared snapshot left');
    assert.deepEqual(client.leases.list(), []);
  });
});

test('pullWithEvents yields the progress events in order and settles with the pull', async (t) => {
  const env = await startPullEnvironment(t);
  const image = await presetImage('tiny');
  const ref = await publish(env, image, 'images/events');

  const { events, result } = env.client.pullWithEvents(ref);
  const types: string[] = [];
  for await (const event of events) types.push(event.type);
  const pulled = await result;

  assert.equal(types[0], 'resolved');
  assert.equal(types.at(-1), 'done');
  assert.equal(types.filter((type) => type === 'committed').length, image.manifests[0]!.layers.length);
  assert.equal(pulled.image.name(), ref);
});
