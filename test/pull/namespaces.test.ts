/**
 * Client.inNamespace: one root and one process, several namespaces, as containerd.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isFailedPrecondition, isInvalidArgument, isNotFound } from '../../src/errors.js';
import { buildTestImage, plainLayer, publish, startPullEnvironment, testSpec } from '../helpers/images.js';

describe('namespaces', () => {
  test('a namespace view pulls on its own (images, leases, snapshots) and shares the blob files and the registry traffic', async (t) => {
    const env = await startPullEnvironment(t);
    const { client, proxy } = env;
    const image = await buildTestImage(t, testSpec('namespaces', [plainLayer(3, 64 << 10), plainLayer(2, 32 << 10)]));
    const ref = await publish(env, image, 'ns/shared');
    const teamA = client.inNamespace('team-a');
    assert.equal(teamA.namespace, 'team-a');
    assert.equal(client.inNamespace('team-a'), teamA, 'one view per namespace');
    assert.equal(teamA.inNamespace('default'), client);

    await teamA.pull(ref);
    await assert.rejects(client.getImage(ref), (err: Error) => isNotFound(err));
    await client.pull(ref);
    assert.deepEqual((await client.listImages()).map((i) => i.name()), [ref]);
    assert.deepEqual((await teamA.listImages()).map((i) => i.name()), [ref]);

    const manifest = image.manifests[0]!;
    for (const { digest } of manifest.layers.map((l) => l.descriptor)) {
      assert.equal(proxy.requests.filter((r) => r.method === 'GET' && r.path.endsWith(digest)).length, 1, `${digest} fetched once`);
    }
    const blobs = readdirSync(join(client.root.path, 'content', 'blobs', 'sha256'));
    assert.equal(blobs.length, 2 + manifest.layers.length, 'manifest, config and layers stored once');

    // Deleting in one namespace and collecting leaves the other whole.
    await teamA.deleteImage(ref, { sync: true });
    await assert.rejects(teamA.getImage(ref), (err: Error) => isNotFound(err));
    assert.deepEqual(readdirSync(join(client.root.path, 'content', 'blobs', 'sha256')).sort(), blobs.sort());
    const sn = await teamA.snapshotter();
    const left: string[] = [];
    await sn.walk((info) => void left.push(info.name));
    assert.deepEqual(left, [], "team-a's snapshots were collected");
    assert.equal((await client.getImage(ref)).name(), ref);
  });

  test('an invalid namespace is InvalidArgument; closing a view leaves its client open, closing the client closes its views', async (t) => {
    const { client } = await startPullEnvironment(t);
    assert.throws(() => client.inNamespace('not a namespace!'), (err: Error) => isInvalidArgument(err));
    const view = client.inNamespace('tmp');
    await view.close();
    assert.deepEqual(await client.listImages(), [], 'the client still works');
    const again = client.inNamespace('tmp');
    assert.notEqual(again, view, 'a closed view is not handed out again');
    await client.close();
    await assert.rejects(again.pull('127.0.0.1:1/none:latest'), (err: Error) => isFailedPrecondition(err));
  });
});
