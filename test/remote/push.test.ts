import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Descriptor } from '../../src/descriptor.js';
import { digestOf } from '../../src/digest.js';
import { isDigestMismatch, isInvalidArgument } from '../../src/errors.js';
import { childrenOf } from '../../src/images/manifest.js';
import { isIndexType, isManifestType, MediaType } from '../../src/images/mediatypes.js';
import { contentFetcher, fetchBlob, pushImage, type PushImageProgress } from '../../src/remote/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry } from '../helpers/registry.js';
import { openTestRoot } from '../helpers/root.js';
import { buildImage, imageFetcher, readStream, storeImage, testResolver } from './fixtures.js';

function blobOf(data: Buffer): { desc: Descriptor; content: () => Readable } {
  return { desc: { mediaType: 'application/octet-stream', digest: digestOf(data), size: data.length }, content: () => Readable.from([data]) };
}


describe('RegistryPusher', () => {
  test('uploads a blob monolithically (POST, then one PUT with the digest) and skips it once present', async (t) => {
    const registry = await startRegistry(t);
    const proxy = await startFaultProxy(t, registry);
    const resolver = testResolver(t);
    const pusher = await resolver.pusher(`${proxy.host}/test/blobs:v1`);
    const { desc, content } = blobOf(randomBytes(100_000));

    assert.equal(await pusher.push(desc, content), 'uploaded');
    assert.deepEqual(
      proxy.requests.map((r) => `${r.method} ${r.path.replace(/uploads\/[^/]+$/, 'uploads/<id>')}`),
      [`HEAD /v2/test/blobs/blobs/${desc.digest}`, 'POST /v2/test/blobs/blobs/uploads/', 'PUT /v2/test/blobs/blobs/uploads/<id>'],
    );
    assert.equal(new URL(proxy.requests[2]!.url, proxy.url).searchParams.get('digest'), desc.digest);

    assert.equal(await pusher.push(desc, content), 'exists');
    assert.equal(proxy.requests.at(-1)?.method, 'HEAD');
    const fetched = await readStream(await (await resolver.fetcher(`${proxy.host}/test/blobs:v1`)).fetch(desc));
    assert.equal(digestOf(fetched), desc.digest);
  });

  test('uploads a big blob in PATCH chunks with Content-Range, then PUT', async (t) => {
    const registry = await startRegistry(t);
    const proxy = await startFaultProxy(t, registry);
    const resolver = testResolver(t, { uploadChunkSize: 16 << 10 });
    const data = randomBytes(50_000);
    const { desc, content } = blobOf(data);
    assert.equal(await (await resolver.pusher(`${proxy.host}/test/chunked:v1`)).push(desc, content), 'uploaded');

    const patches = proxy.requests.filter((r) => r.method === 'PATCH');
    assert.deepEqual(
      patches.map((r) => r.headers['content-range']),
      ['0-16383', '16384-32767', '32768-49151', '49152-49999'],
    );
    const put = proxy.requests.find((r) => r.method === 'PUT');
    assert.equal(put?.headers['content-length'], '0');
    assert.deepEqual(await readStream(await (await resolver.fetcher(`${registry.host}/test/chunked:v1`)).fetch(desc)), data);
  });

  test('mounts a blob from another repository of the same registry', async (t) => {
    const registry = await startRegistry(t);
    const proxy = await startFaultProxy(t, registry);
    const resolver = testResolver(t);
    const { desc, content } = blobOf(randomBytes(30_000));
    await (await resolver.pusher(`${proxy.host}/test/source:v1`)).push(desc, content);
    const before = proxy.requests.length;

    const status = await (await resolver.pusher(`${proxy.host}/test/target:v1`)).push(desc, content, { mountFrom: ['test/source'] });
    assert.equal(status, 'mounted');
    const mount = proxy.requests.slice(before).find((r) => r.method === 'POST');
    const query = new URL(mount!.url, proxy.url).searchParams;
    assert.equal(mount?.path, '/v2/test/target/blobs/uploads/');
    assert.equal(query.get('mount'), desc.digest);
    assert.equal(query.get('from'), 'test/source');
    assert.ok(!proxy.requests.slice(before).some((r) => r.method === 'PUT' || r.method === 'PATCH'), 'no bytes uploaded');
    assert.equal(digestOf(await readStream(await (await resolver.fetcher(`${registry.host}/test/target:v1`)).fetch(desc))), desc.digest);
  });

  test('a refused mount falls back to an upload', async (t) => {
    const registry = await startRegistry(t);
    const resolver = testResolver(t);
    const { desc, content } = blobOf(randomBytes(10_000));
    const status = await (await resolver.pusher(`${registry.host}/test/target:v1`)).push(desc, content, { mountFrom: ['test/nowhere'] });
    assert.equal(status, 'uploaded');
    assert.equal(digestOf(await readStream(await (await resolver.fetcher(`${registry.host}/test/target:v1`)).fetch(desc))), desc.digest);
  });

  test('puts manifests by digest and by tag with their media type', async (t) => {
    const registry = await startRegistry(t);
    const proxy = await startFaultProxy(t, registry);
    const resolver = testResolver(t);
    const image = await buildImage({ flavour: 'docker' });
    const pusher = await resolver.pusher(`${proxy.host}/test/docs:v1`);
    const manifest = image.blobs.get(image.root.digest)!;
    for (const child of childrenOf(image.root, manifest.data)) {
      await pusher.push(child, () => Readable.from([image.blobs.get(child.digest)!.data]));
    }
    assert.equal(await pusher.push(image.root, () => Readable.from([manifest.data])), 'uploaded');
    assert.equal(await pusher.push(image.root, () => Readable.from([manifest.data])), 'exists');
    assert.equal(await pusher.push(image.root, () => Readable.from([manifest.data]), { tag: 'v1' }), 'uploaded');

    const puts = proxy.requests.filter((r) => r.method === 'PUT' && r.path.includes('/manifests/'));
    assert.deepEqual(puts.map((r) => r.path), [`/v2/test/docs/manifests/${image.root.digest}`, '/v2/test/docs/manifests/v1']);
    assert.ok(puts.every((r) => r.headers['content-type'] === MediaType.DockerManifest));
    assert.deepEqual((await resolver.resolve(`${registry.host}/test/docs:v1`)).descriptor, image.root);
    await assert.rejects(pusher.push(manifest.descriptor, () => Readable.from([manifest.data]), { tag: 'bad tag' }), (err: Error) => isInvalidArgument(err));
  });

  test('content that does not match its descriptor fails with DigestMismatch', async (t) => {
    const registry = await startRegistry(t);
    const resolver = testResolver(t);
    const { desc } = blobOf(randomBytes(5000));
    const pusher = await resolver.pusher(`${registry.host}/test/wrong:v1`);
    await assert.rejects(pusher.push(desc, () => Readable.from([randomBytes(5000)])), (err: Error) => isDigestMismatch(err));
    const manifest = Buffer.from('{"schemaVersion":2}');
    await assert.rejects(
      pusher.push({ mediaType: MediaType.OCIManifest, digest: digestOf('other'), size: manifest.length }, () => Readable.from([manifest])),
      (err: Error) => isDigestMismatch(err),
    );
  });
});

describe('pushImage', () => {
  test('pushes an index graph from a content store children first, then resolves and fetches it back', async (t) => {
    const registry = await startRegistry(t);
    const proxy = await startFaultProxy(t, registry);
    const resolver = testResolver(t);
    const root = await openTestRoot(t);
    const source = root.content.namespace('default');
    const image = await buildImage({ platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
    await storeImage(source, image);
    const ref = `${proxy.host}/test/graph:v2`;
    const events: PushImageProgress[] = [];

    await pushImage({ fetcher: contentFetcher(source), descriptor: image.root, reference: ref, resolver, onProgress: (e) => events.push(e) });

    assert.equal(events.length, image.blobs.size);
    assert.equal(events.at(-1)?.descriptor.digest, image.root.digest);
    // Every document is written after all of its children.
    const written = new Map<string, number>();
    proxy.requests.forEach((r, i) => {
      if (r.method !== 'PUT') return;
      const digest = r.path.includes('/manifests/') ? r.path.split('/').at(-1)! : new URL(r.url, proxy.url).searchParams.get('digest')!;
      written.set(digest, i);
    });
    const tagPut = written.get('v2');
    assert.ok(tagPut !== undefined, 'the root was tagged');
    for (const { descriptor, data } of image.blobs.values()) {
      if (!isIndexType(descriptor.mediaType) && !isManifestType(descriptor.mediaType)) continue;
      const at = descriptor.digest === image.root.digest ? tagPut : written.get(descriptor.digest)!;
      for (const child of childrenOf(descriptor, data)) assert.ok(written.get(child.digest)! < at, `${child.digest} before its parent`);
    }

    const { descriptor } = await resolver.resolve(ref);
    assert.deepEqual(descriptor, image.root);
    const fetcher = await resolver.fetcher(ref);
    const target = root.content.namespace('other');
    for (const blob of image.blobs.values()) {
      await fetchBlob({ fetcher, content: target, desc: blob.descriptor });
      assert.deepEqual(await target.readBlob(blob.descriptor.digest, { maxSize: 1 << 30 }), blob.data);
    }
  });

  test('a second push of the same image uploads nothing', async (t) => {
    const registry = await startRegistry(t);
    const proxy = await startFaultProxy(t, registry);
    const resolver = testResolver(t);
    const image = await buildImage({ platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
    const ref = `${proxy.host}/test/again:v1`;
    await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: ref, resolver });
    const before = proxy.requests.length;
    const events: PushImageProgress[] = [];
    await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: ref, resolver, onProgress: (e) => events.push(e) });
    const again = proxy.requests.slice(before);
    assert.ok(!again.some((r) => r.method === 'POST' || r.method === 'PATCH'), 'no upload started');
    // Only the tag is written again (it may have moved).
    assert.deepEqual(again.filter((r) => r.method === 'PUT').map((r) => r.path), ['/v2/test/again/manifests/v1']);
    assert.deepEqual(new Set(events.filter((e) => e.descriptor.digest !== image.root.digest).map((e) => e.status)), new Set(['exists']));
  });
});
