import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldToIO } from 'node:timers/promises';
import { presetSpecs, type BuiltImage } from '../../bench/fixtures/index.js';
import type { Client } from '../../src/client.js';
import { chainIDs } from '../../src/digest.js';
import { snapshotIdsInUse } from '../../src/metadata/snapshots.js';
import { assertUnpackedTree, buildTestImage, expectedTree, plainLayer, presetImage, publish, snapshotKeys, startPullEnvironment } from '../helpers/images.js';

/** Every file of the content store and every snapshot folder has its row, and nothing is half-made. */
async function assertEveryFileOwned(client: Client): Promise<void> {
  const root = client.root.path;
  const blobFiles = readdirSync(join(root, 'content/blobs/sha256')).map((hex) => `sha256:${hex}`).sort();
  const rows: string[] = [];
  await client.content.walk((info) => void rows.push(info.digest));
  assert.deepEqual(blobFiles, rows.sort(), 'blob files are exactly the content rows');
  assert.deepEqual(readdirSync(join(root, 'content/ingest')), [], 'no ingest left');
  const ids = snapshotIdsInUse(client.root.db, 'overlay');
  const folders = readdirSync(join(root, 'snapshots/overlay'));
  assert.deepEqual(folders.filter((name) => name.endsWith('-removing') || name.startsWith('new-')), [], 'no half-made or half-removed snapshot folder');
  assert.deepEqual(folders.map(Number).sort((a, b) => a - b), [...ids].sort((a, b) => a - b), 'snapshot folders are exactly the snapshot rows');
}

test('GC collecting in a loop during 20 concurrent pulls of 3 images sharing layers removes nothing they need and leaves nothing behind', async (t) => {
  const env = await startPullEnvironment(t);
  const { client } = env;
  // A third image on the same two base layers (same specs and seeds at the same places).
  const [specA] = presetSpecs('shared-base');
  const c = await buildTestImage(t, { ...specA!, name: 'shared-base-c', seed: 'gc-race-c', layers: [...specA!.layers.slice(0, 2), plainLayer(20, 1 << 20)] });
  const images: [string, BuiltImage][] = [];
  for (const [name, image] of [['a', await presetImage('shared-base', 0)], ['b', await presetImage('shared-base', 1)], ['c', c]] as const) {
    images.push([await publish(env, image, `race/${name}`), image]);
  }
  const shared = images.map(([, image]) => chainIDs(image.manifests[0]!.layers.map((l) => l.diffID))[1]);
  assert.equal(new Set(shared).size, 1, 'the three images share their first two layers');

  let pulling = true;
  let collections = 0;
  const collecting = (async () => {
    while (pulling) {
      await client.gc();
      collections++;
      await yieldToIO();
    }
  })();
  try {
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.pull(images[i % images.length]![0])));
  } finally {
    pulling = false;
    await collecting;
  }
  assert.ok(collections > 1, `GC ran during the pulls (${collections} collections)`);

  const snapshotter = await client.snapshotter();
  for (const [ref, image] of images) {
    const manifest = image.manifests[0]!;
    assert.equal(await (await client.getImage(ref)).isUnpacked(), true, `${ref} is unpacked`);
    for (const layer of manifest.layers) await client.content.info(layer.descriptor.digest);
    for (const chainID of chainIDs(manifest.layers.map((l) => l.diffID))) assert.equal((await snapshotter.stat(chainID)).kind, 'committed');
  }
  assert.deepEqual(client.leases.list(), []);
  await assertEveryFileOwned(client);
  for (const [, image] of images) {
    const manifest = image.manifests[0]!;
    await assertUnpackedTree(t, snapshotter, chainIDs(manifest.layers.map((l) => l.diffID)).at(-1)!, await expectedTree(manifest));
  }

  for (const [ref] of images) await client.deleteImage(ref);
  await client.gc();
  const rows: string[] = [];
  await client.content.walk((info) => void rows.push(info.digest));
  assert.deepEqual(rows, [], 'no content left');
  assert.deepEqual(await snapshotKeys(snapshotter), [], 'no snapshot left');
  await assertEveryFileOwned(client);
});
