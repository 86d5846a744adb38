import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf } from '../../src/digest.js';
import { isDigestMismatch, isNotFound, isResourceExhausted, NotImplementedError } from '../../src/errors.js';
import { MediaType } from '../../src/images/mediatypes.js';
import { pushImage } from '../../src/remote/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry } from '../helpers/registry.js';
import { buildImage, imageFetcher, testResolver, type Flavour } from './fixtures.js';

describe('RegistryResolver.resolve', () => {
  for (const flavour of ['oci', 'docker'] as Flavour[]) {
    test(`resolves a ${flavour} index by tag and by digest`, async (t) => {
      const registry = await startRegistry(t);
      const resolver = testResolver(t);
      const image = await buildImage({ flavour, platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
      const ref = `${registry.host}/test/${flavour}-index:v1`;
      await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: ref, resolver });

      const byTag = await resolver.resolve(ref);
      assert.equal(byTag.name, ref);
      assert.deepEqual(byTag.descriptor, image.root);
      assert.equal(byTag.descriptor.mediaType, flavour === 'oci' ? MediaType.OCIIndex : MediaType.DockerManifestList);

      const byDigest = await resolver.resolve(`${registry.host}/test/${flavour}-index@${image.root.digest}`);
      assert.deepEqual(byDigest.descriptor, image.root);
    });

    test(`resolves a single ${flavour} manifest by tag and by digest`, async (t) => {
      const registry = await startRegistry(t);
      const resolver = testResolver(t);
      const image = await buildImage({ flavour });
      const ref = `${registry.host}/test/${flavour}-manifest:v1`;
      await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: ref, resolver });

      const byTag = await resolver.resolve(ref);
      assert.deepEqual(byTag.descriptor, image.root);
      assert.equal(byTag.descriptor.mediaType, flavour === 'oci' ? MediaType.OCIManifest : MediaType.DockerManifest);
      const byDigest = await resolver.resolve(`${registry.host}/test/${flavour}-manifest:ignored@${image.root.digest}`);
      assert.deepEqual(byDigest.descriptor, image.root);
    });
  }

  test('an unknown tag or repository is NotFound naming the reference', async (t) => {
    const registry = await startRegistry(t);
    const resolver = testResolver(t);
    const image = await buildImage();
    await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: `${registry.host}/test/known:v1`, resolver });

    for (const ref of [`${registry.host}/test/known:nope`, `${registry.host}/test/unknown:v1`, `${registry.host}/test/known@${digestOf('nothing')}`]) {
      await assert.rejects(resolver.resolve(ref), (err: Error) => isNotFound(err) && err.message.includes(ref), ref);
    }
  });

  test('HEAD without Docker-Content-Digest falls back to GET and hashes the body', async (t) => {
    const registry = await startRegistry(t);
    const proxy = await startFaultProxy(t, registry);
    const resolver = testResolver(t);
    const image = await buildImage();
    const path = '/v2/test/headless/manifests/v1';
    await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: `${proxy.host}/test/headless:v1`, resolver });
    proxy.addFault({ method: 'HEAD', path, fault: { kind: 'replace', headers: {}, body: '' } });

    const { descriptor } = await resolver.resolve(`${proxy.host}/test/headless:v1`);
    assert.deepEqual(descriptor, image.root);
    assert.equal(proxy.count(path, 'GET'), 1);
  });

  test('refuses a schema 1 manifest with NotImplemented', async (t) => {
    const registry = await startRegistry(t);
    const proxy = await startFaultProxy(t, registry);
    const resolver = testResolver(t);
    // distribution 2.8 refuses schema 1 pushes, so the proxy serves one.
    const body = JSON.stringify({ schemaVersion: 1, name: 'test/old', tag: 'v1', architecture: 'amd64', fsLayers: [], history: [] });
    const headers = { 'content-type': MediaType.DockerSchema1SignedManifest, 'docker-content-digest': digestOf(body) };
    proxy.addFault({ path: '/v2/test/old/manifests/v1', fault: { kind: 'replace', headers, body } });

    await assert.rejects(resolver.resolve(`${proxy.host}/test/old:v1`), (err: Error) => err instanceof NotImplementedError && /schema 1/.test(err.message));
  });

  test('refuses unknown manifest media types', async (t) => {
    const registry = await startRegistry(t);
    const proxy = await startFaultProxy(t, registry);
    const resolver = testResolver(t);
    const body = JSON.stringify({ hello: 'world' });
    const headers = { 'content-type': 'application/vnd.example.thing+json', 'docker-content-digest': digestOf(body) };
    proxy.addFault({ path: '/v2/test/odd/manifests/v1', fault: { kind: 'replace', headers, body } });

    await assert.rejects(resolver.resolve(`${proxy.host}/test/odd:v1`), (err: Error) => err instanceof NotImplementedError && /vnd\.example\.thing/.test(err.message));
  });

  test('a manifest whose bytes do not match the digest is DigestMismatch, by tag and by digest', async (t) => {
    const registry = await startRegistry(t);
    const proxy = await startFaultProxy(t, registry);
    const resolver = testResolver(t);
    const image = await buildImage();
    await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: `${proxy.host}/test/bent:v1`, resolver });
    // HEAD refused, so the resolver must GET; the GET body gets one byte flipped.
    proxy.addFault({ method: 'HEAD', path: /^\/v2\/test\/bent\/manifests\//, fault: { kind: 'status', status: 405 } });
    proxy.addFault({ method: 'GET', path: /^\/v2\/test\/bent\/manifests\//, fault: { kind: 'corrupt', offset: 10 } });

    await assert.rejects(resolver.resolve(`${proxy.host}/test/bent:v1`), (err: Error) => isDigestMismatch(err));
    await assert.rejects(resolver.resolve(`${proxy.host}/test/bent@${image.root.digest}`), (err: Error) => isDigestMismatch(err) && err.message.includes(image.root.digest));
  });

  test('a manifest over maxManifestSize is ResourceExhausted, announced or streamed', async (t) => {
    const registry = await startRegistry(t);
    const proxy = await startFaultProxy(t, registry);
    const small = testResolver(t, { maxManifestSize: 64 });
    const image = await buildImage();
    await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: `${registry.host}/test/big:v1`, resolver: testResolver(t) });
    await assert.rejects(small.resolve(`${registry.host}/test/big:v1`), (err: Error) => isResourceExhausted(err) && /maxManifestSize/.test(err.message));

    // No Content-Length anywhere: the limit must stop the read itself.
    const huge = Buffer.alloc(8 << 20, 0x20);
    proxy.addFault({ method: 'HEAD', path: '/v2/test/huge/manifests/v1', fault: { kind: 'status', status: 405 } });
    proxy.addFault({ method: 'GET', path: '/v2/test/huge/manifests/v1', fault: { kind: 'replace', headers: { 'content-type': MediaType.OCIManifest }, body: huge, chunked: true } });
    const limited = testResolver(t, { maxManifestSize: 1 << 20 });
    await assert.rejects(limited.resolve(`${proxy.host}/test/huge:v1`), (err: Error) => isResourceExhausted(err));
  });
});
