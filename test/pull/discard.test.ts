import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { isNotFound } from '../../src/errors.js';
import { Label } from '../../src/metadata/labels.js';
import { assertUnpackedTree, expectedTree, presetImage, publish, snapshotKeys, startPullEnvironment } from '../helpers/images.js';
import { blobGets, chainOf } from './helpers.js';

test('discardContent lets GC free the layer blobs once the lease is gone; snapshots stay and a later pull fetches no layer', async (t) => {
  const env = await startPullEnvironment(t);
  const { proxy, client } = env;
  const image = await presetImage('tiny');
  const manifest = image.manifests[0]!;
  const ref = await publish(env, image, 'discard/tiny');

  // Client.pull holds a lease of its own for the pull; the caller's lease stands for a
  // caller that groups several operations, and its synchronous delete runs the collection.
  const lease = client.leases.create();
  const result = await client.pull(ref, { discardContent: true });
  assert.equal(result.unpacked[0]!.layersApplied, manifest.layers.length);
  const manifestLabels = (await client.content.info(manifest.descriptor.digest)).labels;
  assert.equal(manifestLabels[`${Label.gcRefContent}.config`], manifest.config.digest, 'the manifest still keeps its config');
  for (const i of manifest.layers.keys()) assert.equal(manifestLabels[`${Label.gcRefContent}.l.${i}`], undefined, `layer ${i} is let go`);
  await client.leases.delete(lease.id, { sync: true });
  assert.deepEqual(client.leases.list(), []);

  for (const layer of manifest.layers) {
    await assert.rejects(client.content.info(layer.descriptor.digest), (err: Error) => isNotFound(err), `layer ${layer.descriptor.digest} was collected`);
    assert.equal(existsSync(client.root.content.files.blobPath(layer.descriptor.digest)), false, 'its file is gone');
  }
  await client.content.info(manifest.descriptor.digest);
  await client.content.info(manifest.config.digest);
  const snapshotter = await client.snapshotter();
  assert.deepEqual(await snapshotKeys(snapshotter), [...chainOf(manifest)].sort(), 'every chain ID is still committed');
  assert.equal(await (await client.getImage(ref)).isUnpacked(), true);
  await assertUnpackedTree(t, snapshotter, chainOf(manifest).at(-1)!, await expectedTree(manifest));

  const again = await client.pull(ref);
  assert.equal(again.unpacked[0]!.layersApplied, 0);
  const gets = blobGets(proxy, 'discard/tiny');
  for (const layer of manifest.layers) assert.equal(gets.get(layer.descriptor.digest), 1, 'each layer was fetched by the first pull only');
  assert.equal(await (await client.getImage(ref)).isUnpacked(), true);
});
