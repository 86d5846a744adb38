import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BuiltManifest } from '../../bench/fixtures/index.js';
import { isNotFound } from '../../src/errors.js';
import { Label } from '../../src/metadata/labels.js';
import { format as formatPlatform } from '../../src/platform.js';
import { assertUnpackedTree, expectedTree, presetImage, publish, snapshotKeys, startPullEnvironment } from '../helpers/images.js';
import { assertPulled, chainOf } from './helpers.js';

function manifestFor(manifests: BuiltManifest[], architecture: string): BuiltManifest {
  const found = manifests.find((m) => m.platform.architecture === architecture);
  assert.ok(found, `the multi-platform preset has ${architecture}`);
  return found;
}

describe('Client.pull of a multi-platform index', () => {
  test('the default platform is the host (linux/amd64 here); another platform unpacks its own tree, sharing the common base layer', async (t) => {
    const env = await startPullEnvironment(t);
    const image = await presetImage('multi-platform');
    const ref = await publish(env, image, 'platforms/multi');
    const host = manifestFor(image.manifests, process.arch === 'arm64' ? 'arm64' : 'amd64');
    const other = manifestFor(image.manifests, process.arch === 'arm64' ? 'amd64' : 'arm64');
    const snapshotter = await env.client.snapshotter();

    const first = await env.client.pull(ref);
    assert.equal(first.unpacked.length, 1);
    assert.equal(first.unpacked[0]!.chainID, chainOf(host).at(-1));
    await assertPulled(t, env.client, host, await expectedTree(host));

    const second = await env.client.pull(ref, { platform: formatPlatform(other.platform) });
    assert.equal(second.unpacked[0]!.chainID, chainOf(other).at(-1));
    // Layer 0 has the same seed on both platforms: the same blob, already a snapshot.
    assert.equal(chainOf(other)[0], chainOf(host)[0]);
    assert.equal(second.unpacked[0]!.layersApplied, other.layers.length - 1);
    assert.deepEqual(await snapshotKeys(snapshotter), [...new Set([...chainOf(host), ...chainOf(other)])].sort());
    assert.notDeepEqual(await expectedTree(other), await expectedTree(host), 'the platforms have different trees');
    await assertUnpackedTree(t, snapshotter, chainOf(other).at(-1)!, await expectedTree(other));
  });

  test('allPlatforms fetches the whole content of every platform and labels the index for its manifests, but unpacks only the requested platform', async (t) => {
    const env = await startPullEnvironment(t);
    const image = await presetImage('multi-platform');
    const [amd64, arm64] = [manifestFor(image.manifests, 'amd64'), manifestFor(image.manifests, 'arm64')];
    const ref = await publish(env, image, 'platforms/all');

    const result = await env.client.pull(ref, { platform: 'linux/arm64', allPlatforms: true });

    assert.equal(result.unpacked.length, 1);
    assert.equal(result.unpacked[0]!.chainID, chainOf(arm64).at(-1));
    const indexLabels = (await env.client.content.info(image.descriptor.digest)).labels;
    const referenced = Object.entries(indexLabels)
      .filter(([key]) => key.startsWith(`${Label.gcRefContent}.m.`))
      .map(([, digest]) => digest)
      .sort();
    assert.deepEqual(referenced, [amd64.descriptor.digest, arm64.descriptor.digest].sort(), 'the index keeps both manifests');
    for (const manifest of [amd64, arm64]) {
      for (const desc of [manifest.descriptor, manifest.config, ...manifest.layers.map((l) => l.descriptor)]) await env.client.content.info(desc.digest);
    }
    assert.equal((await snapshotKeys(await env.client.snapshotter())).includes(chainOf(amd64).at(-1)!), false, 'amd64 is fetched, not unpacked');
    await assertPulled(t, env.client, arm64, await expectedTree(arm64));
  });

  test('a platform the index lacks is NotFound naming the platforms it has', async (t) => {
    const env = await startPullEnvironment(t);
    const ref = await publish(env, await presetImage('multi-platform'), 'platforms/missing');

    await assert.rejects(env.client.pull(ref, { platform: 'linux/s390x' }), (err: Error) => {
      assert.ok(isNotFound(err), `NotFound, got ${err.name}: ${err.message}`);
      assert.match(err.message, /linux\/amd64/);
      assert.match(err.message, /linux\/arm64/);
      return true;
    });
    await assert.rejects(env.client.getImage(ref), (err: Error) => isNotFound(err));
    assert.deepEqual(env.client.leases.list(), []);
  });
});
