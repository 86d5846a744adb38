/**
 * Registry faults end to end through Client.pull (test/remote covers them at the fetcher
 * and resolver level; test/pull covers cancel, kill, a wrong diffID and a corrupted
 * uncompressed layer): a layer stream cut while it is being applied, a 500 before the
 * layer, a token server that starts failing in the middle of a pull, and a gzip layer
 * corrupted in transit. After each failure nothing is committed for the bad layer, no
 * extract-* snapshot, image record or lease is left, and at most resumable ingests stay.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isDigestMismatch, isNotFound, isUnavailable } from '../../src/errors.js';
import { ingestRef } from '../../src/remote/fetch.js';
import { pushImage, RegistryResolver } from '../../src/remote/index.js';
import { OCILayout } from '../../src/layout/index.js';
import type { Client } from '../../src/client.js';
import type { BuiltManifest } from '../../bench/fixtures/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { buildTestImage, expectedTree, openTestClient, plainLayer, publish, referenceOf, snapshotKeys, startPullEnvironment, testSpec } from '../helpers/images.js';
import { startRegistry } from '../helpers/registry.js';
import { assertPulled, assertResumedFrom, blobGets, chainOf } from '../pull/helpers.js';

/** Nothing of a failed pull is left but ingests of `manifest`'s layers, each a prefix to resume from. */
async function assertNothingLeft(client: Client, ref: string, manifest: BuiltManifest, bad: string): Promise<void> {
  const keys = await snapshotKeys(await client.snapshotter());
  assert.deepEqual(keys.filter((k) => k.startsWith('extract-')), [], 'no extract-* snapshot is left');
  const badIndex = manifest.layers.findIndex((l) => l.descriptor.digest === bad);
  assert.equal(keys.includes(chainOf(manifest)[badIndex]!), false, 'the bad layer is not committed');
  await assert.rejects(client.getImage(ref), (err: Error) => isNotFound(err), 'no image record');
  assert.deepEqual(client.leases.list(), [], 'the pull released its lease');
  const refs = manifest.layers.map((l) => ingestRef(l.descriptor));
  for (const status of await client.content.listStatuses()) {
    const layer = manifest.layers[refs.indexOf(status.ref)];
    assert.ok(layer, `ingest ${status.ref} belongs to a layer of the image`);
    assert.ok(status.offset < layer.descriptor.size, `ingest ${status.ref} is a prefix to resume from (${status.offset} of ${layer.descriptor.size} bytes)`);
  }
}

const layerPath = (repository: string, digest: string) => `/v2/${repository}/blobs/${digest}`;

describe('registry faults through Client.pull', () => {
  test('a layer stream cut mid-download, while the layers apply in parallel, is resumed with a Range request and the image unpacks exactly', async (t) => {
    const env = await startPullEnvironment(t);
    const image = await buildTestImage(t, testSpec('cut', [plainLayer(6, 64 << 10), plainLayer(3, 3 << 20, { sizeDistribution: 'large' }), plainLayer(4, 32 << 10)]));
    const manifest = image.manifests[0]!;
    const big = manifest.layers[1]!.descriptor;
    const ref = await publish(env, image, 'faults/cut');
    const cutAt = 512 << 10;
    env.proxy.addFault({ method: 'GET', path: layerPath('faults/cut', big.digest), fault: { kind: 'cut', afterBytes: cutAt }, times: 1 });
    const result = await env.client.pull(ref);
    assert.equal(result.unpacked[0]!.layersApplied, 3);
    const gets = env.proxy.requests.filter((r) => r.method === 'GET' && r.path === layerPath('faults/cut', big.digest));
    assert.equal(gets.length, 2, 'the cut layer was asked for twice');
    // The resume starts where the ingest's data ends: at most the bytes the proxy sent before the cut.
    const resumedFrom = Number(/^bytes=(\d+)-/.exec(String(gets[1]!.headers.range))?.[1]);
    assert.ok(resumedFrom > 0 && resumedFrom <= cutAt, `resumed from byte ${resumedFrom}`);
    assertResumedFrom(gets[1], resumedFrom, big.size);
    await assertPulled(t, env.client, manifest, await expectedTree(manifest));
  });

  test('a layer answered with 500 once is fetched again and the pull succeeds', async (t) => {
    const env = await startPullEnvironment(t);
    const image = await buildTestImage(t, testSpec('five-hundred', [plainLayer(4, 32 << 10), plainLayer(4, 48 << 10)]));
    const manifest = image.manifests[0]!;
    const layer = manifest.layers[0]!.descriptor;
    const ref = await publish(env, image, 'faults/five-hundred');
    env.proxy.addFault({ method: 'GET', path: layerPath('faults/five-hundred', layer.digest), fault: { kind: 'status', status: 500 }, times: 1 });
    await env.client.pull(ref);
    assert.equal(blobGets(env.proxy, 'faults/five-hundred').get(layer.digest), 2, 'one 500, then the layer');
    await assertPulled(t, env.client, manifest, await expectedTree(manifest));
  });

  test('a token server that fails in the middle of a pull is a clear Unavailable error and nothing of the pull is kept', async (t) => {
    const users = { puller: 'correct-horse-battery' };
    const credentials = () => ({ username: 'puller', password: users.puller });
    const registry = await startRegistry(t, { auth: 'token', users });
    const tokens = registry.tokenServer!;
    const proxy: FaultProxy = await startFaultProxy(t, registry);
    const image = await buildTestImage(t, testSpec('token', [plainLayer(4, 32 << 10), plainLayer(4, 32 << 10)]));
    const manifest = image.manifests[0]!;
    const pusher = new RegistryResolver({ credentials });
    try {
      await pushImage({ fetcher: await OCILayout.open(image.layoutDir), descriptor: image.descriptor, reference: referenceOf(registry.host, 'faults/token', 'v1'), resolver: pusher });
    } finally {
      await pusher.close();
    }
    const client = await openTestClient(t, { credentials, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } });
    // The registry's own challenge, so that the proxy's 401 sends the client back to the (now failing) token server.
    const challenge = await fetch(`${registry.url}/v2/`).then((res) => res.headers.get('www-authenticate') ?? '');
    assert.match(challenge, /^Bearer realm=/);
    const bad = manifest.layers[1]!.descriptor.digest;
    proxy.addFault({ method: 'GET', path: layerPath('faults/token', bad), fault: { kind: 'status', status: 401, headers: { 'www-authenticate': challenge } } });
    const ref = referenceOf(proxy.host, 'faults/token', 'v1');
    await assert.rejects(
      client.pull(ref, {
        progress: (event) => {
          if (event.type === 'resolved') tokens.failing = true;
        },
      }),
      (err: Error) => {
        assert.ok(isUnavailable(err), `Unavailable, got ${err.name}: ${err.message}`);
        assert.match(err.message, /token|auth/i);
        assert.match(err.message, /500/);
        assert.equal(err.message.includes(users.puller), false, 'the password is not in the message');
        return true;
      },
    );
    await assertNothingLeft(client, ref, manifest, bad);

    tokens.failing = false;
    proxy.clearFaults();
    await client.pull(ref);
    await assertPulled(t, client, manifest, await expectedTree(manifest));
  });

  test('a gzip layer corrupted in transit is DigestMismatch, not a malformed layer, and nothing of it is kept', async (t) => {
    const env = await startPullEnvironment(t);
    const image = await buildTestImage(t, testSpec('corrupt-gzip', [plainLayer(4, 32 << 10), plainLayer(3, 2 << 20, { sizeDistribution: 'large' })]));
    const manifest = image.manifests[0]!;
    const corrupted = manifest.layers[1]!.descriptor;
    const ref = await publish(env, image, 'faults/corrupt-gzip');
    // Inside the deflate data: the decompressor fails on it, long before the download ends.
    env.proxy.addFault({ method: 'GET', path: layerPath('faults/corrupt-gzip', corrupted.digest), fault: { kind: 'corrupt', offset: 4096 } });
    await assert.rejects(env.client.pull(ref), (err: Error) => {
      assert.ok(isDigestMismatch(err), `DigestMismatch, got ${err.name}: ${err.message}`);
      assert.match(err.message, new RegExp(corrupted.digest.slice('sha256:'.length)));
      return true;
    });
    await assertNothingLeft(env.client, ref, manifest, corrupted.digest);
    await assert.rejects(env.client.content.info(corrupted.digest), (err: Error) => isNotFound(err), 'the corrupted blob is not in the store');

    env.proxy.clearFaults();
    await env.client.pull(ref);
    await assertPulled(t, env.client, manifest, await expectedTree(manifest));
  });
});
