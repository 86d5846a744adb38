import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf } from '../../src/digest.js';
import { isCanceled, isDigestMismatch, isNotFound, isSizeMismatch, isUnavailable } from '../../src/errors.js';
import { isLayerType } from '../../src/images/mediatypes.js';
import { contentFetcher, fetchBlob, ingestRef, pushImage } from '../../src/remote/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { openTestRoot } from '../helpers/root.js';
import { buildImage, imageFetcher, readStream, testResolver, type Blob, type TestImage } from './fixtures.js';
import type { TestContext } from 'node:test';
import type { RegistryResolverOptions } from '../../src/remote/index.js';


interface Setup {
  registry: TestRegistry;
  proxy: FaultProxy;
  image: TestImage;
  /** The biggest layer. */
  layer: Blob;
  /** Its path on the registry (and the proxy). */
  blobPath: string;
  ref: string;
}

/** A registry with a pushed image, behind a fault proxy; `ref` goes through the proxy. */
async function setup(t: TestContext, payloadSize = 64 << 10): Promise<Setup> {
  const registry = await startRegistry(t);
  const proxy = await startFaultProxy(t, registry);
  const image = await buildImage({ payloadSize });
  await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: `${registry.host}/test/app:v1`, resolver: testResolver(t) });
  const layers = [...image.blobs.values()].filter((b) => isLayerType(b.descriptor.mediaType));
  const layer = layers.sort((a, b) => b.data.length - a.data.length)[0] as Blob;
  return { registry, proxy, image, layer, blobPath: `/v2/test/app/blobs/${layer.descriptor.digest}`, ref: `${proxy.host}/test/app:v1` };
}

async function fetcherFor(t: TestContext, ref: string, options: RegistryResolverOptions = {}) {
  return testResolver(t, options).fetcher(ref);
}

describe('fetchBlob', () => {
  test('fetches every blob of an image into the content store, verified', async (t) => {
    const { image, ref, proxy, layer } = await setup(t);
    const store = (await openTestRoot(t)).content.namespace('default');
    const fetcher = await fetcherFor(t, ref);
    const seen: number[] = [];
    for (const { descriptor, data } of image.blobs.values()) {
      const result = await fetchBlob({ fetcher, content: store, desc: descriptor, onProgress: (bytes) => seen.push(bytes) });
      assert.equal(result.status, 'fetched');
      assert.equal(result.bytesWritten, data.length);
      assert.deepEqual(await store.readBlob(descriptor.digest, { maxSize: 1 << 30 }), data);
    }
    assert.equal(seen.at(-1), [...image.blobs.values()].at(-1)?.data.length);

    // Already there: success without a request.
    const before = proxy.requests.length;
    const again = await fetchBlob({ fetcher, content: store, desc: layer.descriptor });
    assert.equal(again.status, 'exists');
    assert.equal(again.bytesWritten, 0);
    assert.equal(proxy.requests.length, before);
  });

  test('resumes after a cut: the ingest keeps the bytes and the retry asks for the rest with Range', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t);
    const store = (await openTestRoot(t)).content.namespace('default');
    const cutAt = 20_000;
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'cut', afterBytes: cutAt }, times: 1 });

    // One try only: the cut fails the fetch, and the ingest keeps what arrived.
    const once = await fetcherFor(t, ref);
    await assert.rejects(fetchBlob({ fetcher: once, content: store, desc: layer.descriptor, retry: { attempts: 1 } }), (err: Error) => isUnavailable(err));
    // What arrived before the cut, less what was still in the socket when the error surfaced.
    const { offset } = await store.status(ingestRef(layer.descriptor));
    assert.ok(offset > 0 && offset <= cutAt, `the ingest keeps what arrived (${offset} of ${cutAt})`);

    const result = await fetchBlob({ fetcher: once, content: store, desc: layer.descriptor });
    assert.equal(result.bytesWritten, layer.data.length - offset);
    const gets = proxy.requests.filter((r) => r.path === blobPath && r.method === 'GET');
    assert.equal(gets.length, 2);
    assert.equal(gets[0]?.headers.range, undefined);
    assert.equal(gets[1]?.headers.range, `bytes=${offset}-${layer.data.length - 1}`);
    assert.equal(digestOf(await store.readBlob(layer.descriptor.digest, { maxSize: 1 << 30 })), layer.descriptor.digest);
  });

  test('retries within one call after a cut, from the new offset', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t);
    const store = (await openTestRoot(t)).content.namespace('default');
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'cut', afterBytes: 5000 }, times: 2 });
    const result = await fetchBlob({ fetcher: await fetcherFor(t, ref), content: store, desc: layer.descriptor });
    assert.equal(result.status, 'fetched');
    const ranges = proxy.requests.filter((r) => r.path === blobPath).map((r) => r.headers.range);
    assert.equal(ranges.length, 3);
    assert.equal(ranges[0], undefined);
    // Each retry starts where the ingest got to: at most the 5000 bytes a cut attempt
    // sends (bytes still in the socket when the error surfaces are not written), and
    // always past the previous start.
    const starts = ranges.slice(1).map((range) => {
      const match = /^bytes=(\d+)-(\d+)$/.exec(range ?? '');
      assert.ok(match, `a Range request, got ${range}`);
      assert.equal(Number(match[2]), layer.data.length - 1);
      return Number(match[1]);
    });
    assert.ok(starts[0]! > 0 && starts[0]! <= 5000, `the first retry resumes within the first cut (${starts[0]})`);
    assert.ok(starts[1]! > starts[0]! && starts[1]! <= starts[0]! + 5000, `the second retry resumes from the new offset (${starts.join(', ')})`);
    assert.equal(digestOf(await store.readBlob(layer.descriptor.digest, { maxSize: 1 << 30 })), layer.descriptor.digest);
  });

  test('retries 503 and 429 (honouring Retry-After) and then succeeds', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t);
    const store = (await openTestRoot(t)).content.namespace('default');
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'status', status: 503 }, times: 2 });
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } }, times: 1 });
    const result = await fetchBlob({ fetcher: await fetcherFor(t, ref), content: store, desc: layer.descriptor });
    assert.equal(result.status, 'fetched');
    assert.deepEqual(
      proxy.requests.filter((r) => r.path === blobPath).map((r) => r.fault),
      ['status', 'status', 'status', undefined],
    );
  });

  test('retries a request whose connection was reset before any response', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t);
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'reset' }, times: 2 });
    const fetcher = await fetcherFor(t, ref);
    assert.deepEqual(await readStream(await fetcher.fetch(layer.descriptor)), layer.data);
    assert.equal(proxy.count(blobPath), 3);
  });

  test('gives up with Unavailable after the bounded number of attempts', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t);
    const store = (await openTestRoot(t)).content.namespace('default');
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'status', status: 502 } });
    const fetcher = await fetcherFor(t, ref, { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } });
    await assert.rejects(
      fetchBlob({ fetcher, content: store, desc: layer.descriptor, retry: { attempts: 2, baseDelayMs: 1 } }),
      (err: Error) => isUnavailable(err) && /502/.test(err.message),
    );
    // Three HTTP tries per fetch, two fetches without progress.
    assert.equal(proxy.count(blobPath), 6);
  });

  test('a Content-Length that disagrees with the descriptor is SizeMismatch; a body that ends early is Unavailable', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t);
    const fetcher = await fetcherFor(t, ref, { retry: { attempts: 1 } });
    for (const delta of [-10, 10]) {
      proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'wrong-length', delta }, times: 1 });
      await assert.rejects(fetcher.fetch(layer.descriptor), (err: Error) => isSizeMismatch(err) && err.message.includes('Content-Length'));
    }
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'cut', afterBytes: 100 }, times: 1 });
    await assert.rejects(async () => readStream(await fetcher.fetch(layer.descriptor)), (err: Error) => isUnavailable(err));
  });

  test('a stalled body times out and the download resumes', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t);
    const store = (await openTestRoot(t)).content.namespace('default');
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'stall', afterBytes: 3000 }, times: 1 });
    const fetcher = await fetcherFor(t, ref, { timeouts: { bodyMs: 300 } });
    const result = await fetchBlob({ fetcher, content: store, desc: layer.descriptor });
    assert.equal(result.status, 'fetched');
    assert.equal(proxy.requests.filter((r) => r.path === blobPath)[1]?.headers.range, `bytes=3000-${layer.data.length - 1}`);
  });

  test('skips the held bytes when the registry ignores Range', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t);
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'ignore-range' } });
    const fetcher = await fetcherFor(t, ref);
    const tail = await readStream(await fetcher.fetch(layer.descriptor, { offset: 1234 }));
    assert.deepEqual(tail, layer.data.subarray(1234));
    assert.equal(proxy.requests.at(-1)?.headers.range, `bytes=1234-${layer.data.length - 1}`);
  });

  test('bytes that do not hash to the digest are DigestMismatch, nothing committed, ingest removed', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t);
    const store = (await openTestRoot(t)).content.namespace('default');
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'corrupt', offset: 500 } });
    await assert.rejects(fetchBlob({ fetcher: await fetcherFor(t, ref), content: store, desc: layer.descriptor }), (err: Error) => isDigestMismatch(err));
    await assert.rejects(store.info(layer.descriptor.digest), (err: Error) => isNotFound(err));
    await assert.rejects(store.status(ingestRef(layer.descriptor)), (err: Error) => isNotFound(err));
  });

  test('cancelling stops the download with CanceledError and keeps the ingest', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t);
    const store = (await openTestRoot(t)).content.namespace('default');
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'stall', afterBytes: 4096 } });
    const controller = new AbortController();
    const done = fetchBlob({
      fetcher: await fetcherFor(t, ref),
      content: store,
      desc: layer.descriptor,
      signal: controller.signal,
      onProgress: (bytes) => {
        if (bytes >= 4096) controller.abort();
      },
    });
    await assert.rejects(done, (err: Error) => isCanceled(err));
    assert.equal((await store.status(ingestRef(layer.descriptor))).offset, 4096);
  });

  test('follows a redirect to another host without sending it the Authorization', async (t) => {
    const users = { puller: 'pull-secret' };
    const origin = await startRegistry(t, { auth: 'htpasswd', users });
    const storage = await startRegistry(t);
    const originProxy = await startFaultProxy(t, origin);
    const storageProxy = await startFaultProxy(t, storage);
    const image = await buildImage();
    const credentials = () => ({ username: 'puller', password: 'pull-secret' });
    for (const registry of [origin, storage]) {
      await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: `${registry.host}/test/app:v1`, resolver: testResolver(t, { credentials }) });
    }
    const layer = [...image.blobs.values()].find((b) => isLayerType(b.descriptor.mediaType)) as Blob;
    const blobPath = `/v2/test/app/blobs/${layer.descriptor.digest}`;
    // The first GET meets the registry's 401 challenge; the authorised retry is redirected.
    originProxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'redirect', location: `${storageProxy.url}/` }, skip: 1 });

    const fetcher = await testResolver(t, { credentials }).fetcher(`${originProxy.host}/test/app:v1`);
    assert.deepEqual(await readStream(await fetcher.fetch(layer.descriptor)), layer.data);
    const atOrigin = originProxy.requests.filter((r) => r.path === blobPath).at(-1);
    const atStorage = storageProxy.requests.filter((r) => r.path === blobPath);
    assert.match(String(atOrigin?.headers.authorization), /^Basic /);
    assert.equal(atStorage.length, 1);
    assert.equal(atStorage[0]?.headers.authorization, undefined);
  });

  test('a redirect loop is Unavailable after a bounded number of hops', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t);
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'redirect-loop' } });
    const fetcher = await fetcherFor(t, ref);
    await assert.rejects(fetcher.fetch(layer.descriptor), (err: Error) => isUnavailable(err) && /redirects/.test(err.message));
    assert.equal(proxy.count(blobPath), 11);
  });

  test('contentFetcher reads blobs back from a content store, from an offset', async (t) => {
    const { layer, ref } = await setup(t);
    const store = (await openTestRoot(t)).content.namespace('default');
    await fetchBlob({ fetcher: await fetcherFor(t, ref), content: store, desc: layer.descriptor });
    const local = contentFetcher(store);
    assert.deepEqual(await readStream(await local.fetch(layer.descriptor)), layer.data);
    assert.deepEqual(await readStream(await local.fetch(layer.descriptor, { offset: 100 })), layer.data.subarray(100));
    await assert.rejects(local.fetch({ ...layer.descriptor, digest: digestOf('absent') }), (err: Error) => isNotFound(err));
  });
});

describe('fetchBlob with parallel ranges', () => {
  const parallel = { chunkSize: 64 << 10, concurrency: 3, minSize: 0 };

  test('fetches chunks concurrently and writes the same blob', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t, 1 << 20);
    const store = (await openTestRoot(t)).content.namespace('default');
    const result = await fetchBlob({ fetcher: await fetcherFor(t, ref), content: store, desc: layer.descriptor, parallel });
    assert.equal(result.status, 'fetched');
    assert.deepEqual(await store.readBlob(layer.descriptor.digest, { maxSize: 1 << 30 }), layer.data);
    const ranges = proxy.requests.filter((r) => r.path === blobPath).map((r) => r.headers.range);
    assert.equal(ranges.length, Math.ceil(layer.data.length / parallel.chunkSize));
    assert.equal(ranges[0], `bytes=0-${parallel.chunkSize - 1}`);
    assert.ok(proxy.maxInFlight > 1, 'chunks were fetched concurrently');
    assert.ok(proxy.maxInFlight <= parallel.concurrency, `at most ${parallel.concurrency} chunks at once, saw ${proxy.maxInFlight}`);
  });

  test('resumes from the written prefix after a chunk is cut', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t, 1 << 20);
    const store = (await openTestRoot(t)).content.namespace('default');
    // The fifth chunk request is cut: chunks before it are written, the rest restart from there.
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'cut', afterBytes: 1000 }, skip: 4, times: 1 });
    const result = await fetchBlob({ fetcher: await fetcherFor(t, ref), content: store, desc: layer.descriptor, parallel });
    assert.equal(result.status, 'fetched');
    assert.equal(digestOf(await store.readBlob(layer.descriptor.digest, { maxSize: 1 << 30 })), layer.descriptor.digest);
    const cut = proxy.requests.findIndex((r) => r.fault === 'cut');
    const after = proxy.requests.slice(cut + 1).filter((r) => r.path === blobPath);
    const firstRetry = /^bytes=(\d+)-/.exec(String(after[0]?.headers.range));
    assert.ok(firstRetry, 'the retry is a ranged request');
    assert.ok(Number(firstRetry[1]) > 0 && Number(firstRetry[1]) % parallel.chunkSize === 0, `resumed at a written chunk boundary, not 0: ${after[0]?.headers.range}`);
  });

  test('falls back to one stream when the registry ignores Range', async (t) => {
    const { layer, ref, proxy, blobPath } = await setup(t, 1 << 20);
    const store = (await openTestRoot(t)).content.namespace('default');
    proxy.addFault({ method: 'GET', path: blobPath, fault: { kind: 'ignore-range' } });
    const result = await fetchBlob({ fetcher: await fetcherFor(t, ref), content: store, desc: layer.descriptor, parallel });
    assert.equal(result.status, 'fetched');
    assert.deepEqual(await store.readBlob(layer.descriptor.digest, { maxSize: 1 << 30 }), layer.data);
    // The probe and then one whole-blob request.
    assert.equal(proxy.count(blobPath), 2);
  });
});
