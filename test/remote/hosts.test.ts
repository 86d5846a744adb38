import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { isInvalidArgument, isNotFound, isUnavailable } from '../../src/errors.js';
import { isLayerType } from '../../src/images/mediatypes.js';
import { configureHosts, parseHostsFile, pushImage } from '../../src/remote/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';
import { buildImage, imageFetcher, readStream, testResolver } from './fixtures.js';
import type { TestContext } from 'node:test';

function writeHosts(t: TestContext, domain: string, toml: string, dirName = domain): string {
  const root = tempDir(t, 'layerpool-hosts-');
  mkdirSync(join(root, dirName));
  writeFileSync(join(root, dirName, 'hosts.toml'), toml);
  return root;
}

/** A port on 127.0.0.1 where nothing listens (connection refused). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}


describe('hosts.toml', () => {
  test('parses mirrors in file order, then the server, with their settings', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'ca.pem'), 'CA-PEM');
    writeFileSync(join(dir, 'client.pem'), 'CLIENT-PEM');
    writeFileSync(join(dir, 'c.crt'), 'C-CRT');
    writeFileSync(join(dir, 'c.key'), 'C-KEY');
    const hosts = await parseHostsFile(
      `
server = "https://registry-1.docker.io"
capabilities = ["pull", "resolve", "push"]

[host."https://mirror-b.example"]
  capabilities = ["pull", "resolve"]
  ca = "ca.pem"
  header = { x-mirror = "b", x-list = ["1", "2"] }

[host."http://mirror-a.example:5000/custom/path"]
  capabilities = ["pull"]
  override_path = true
  skip_verify = true
  client = [["c.crt", "c.key"], "client.pem"]

[host."plain.example"]
`,
      { domain: 'docker.io', baseDir: dir },
    );
    assert.deepEqual(
      hosts.map((h) => `${h.scheme}://${h.host}${h.path} ${[...h.capabilities].join(',')}`),
      [
        'https://mirror-b.example/v2 pull,resolve',
        'http://mirror-a.example:5000/custom/path pull',
        'https://plain.example/v2 pull,resolve,push',
        'https://registry-1.docker.io/v2 pull,resolve,push',
      ],
    );
    assert.deepEqual(hosts[0]?.tls, { ca: ['CA-PEM'], clientCerts: [], verify: true });
    assert.deepEqual(hosts[0]?.headers, { 'x-mirror': ['b'], 'x-list': ['1', '2'] });
    assert.deepEqual(hosts[1]?.tls, { ca: [], clientCerts: [{ cert: 'C-CRT', key: 'C-KEY' }, { cert: 'CLIENT-PEM', key: 'CLIENT-PEM' }], verify: false });
    assert.equal(hosts[2]?.tls, undefined);
  });

  test('rejects unknown capabilities and malformed files with InvalidArgument', async () => {
    await assert.rejects(parseHostsFile('[host."https://m"]\ncapabilities = ["fly"]', { domain: 'x.io', baseDir: '/' }), (err: Error) => isInvalidArgument(err) && /fly/.test(err.message));
    await assert.rejects(parseHostsFile('server = [', { domain: 'x.io', baseDir: '/', file: '/etc/hosts.toml' }), (err: Error) => isInvalidArgument(err) && /\/etc\/hosts\.toml/.test(err.message));
  });

  test('defaults: docker.io is registry-1.docker.io over https; loopback and plainHTTP hosts use http', async () => {
    const hosts = configureHosts({ plainHTTP: ['insecure.example:5000', 'bare.example'] });
    const first = async (domain: string) => {
      const [host] = await hosts(domain);
      return `${host?.scheme}://${host?.host}${host?.path}`;
    };
    assert.equal(await first('docker.io'), 'https://registry-1.docker.io/v2');
    assert.equal(await first('localhost:5000'), 'http://localhost:5000/v2');
    assert.equal(await first('127.0.0.1:5000'), 'http://127.0.0.1:5000/v2');
    assert.equal(await first('[::1]:5000'), 'http://[::1]:5000/v2');
    assert.equal(await first('insecure.example:5000'), 'http://insecure.example:5000/v2');
    assert.equal(await first('bare.example:443'), 'http://bare.example:443/v2');
    assert.equal(await first('quay.io'), 'https://quay.io/v2');
  });

  test('finds host_port_ folders, then host:port, then _default', async (t) => {
    const root = tempDir(t);
    mkdirSync(join(root, 'reg.example_5000_'));
    writeFileSync(join(root, 'reg.example_5000_', 'hosts.toml'), 'server = "https://underscored.example"');
    mkdirSync(join(root, '_default'));
    writeFileSync(join(root, '_default', 'hosts.toml'), '[host."https://default-mirror.example"]\ncapabilities = ["pull"]');
    const hosts = configureHosts({ hostsDir: root });
    assert.deepEqual((await hosts('reg.example:5000')).map((h) => h.host), ['underscored.example']);
    assert.deepEqual((await hosts('other.example')).map((h) => h.host), ['default-mirror.example', 'other.example']);
  });

  test('a mirror holding the image serves it; the empty upstream is not asked', async (t) => {
    const upstream = await startRegistry(t);
    const mirror = await startRegistry(t);
    const upstreamProxy = await startFaultProxy(t, upstream);
    const mirrorProxy = await startFaultProxy(t, mirror);
    const image = await buildImage();
    await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: `${mirror.host}/test/app:v1`, resolver: testResolver(t) });
    const hostsDir = writeHosts(t, upstreamProxy.host, `server = "${upstreamProxy.url}"\n[host."${mirrorProxy.url}"]\ncapabilities = ["pull", "resolve"]\nheader = { x-from = "hosts-toml" }\n`);

    const resolver = testResolver(t, { hostsDir });
    const ref = `${upstreamProxy.host}/test/app:v1`;
    assert.deepEqual((await resolver.resolve(ref)).descriptor, image.root);
    const fetcher = await resolver.fetcher(ref);
    for (const { descriptor, data } of image.blobs.values()) assert.deepEqual(await readStream(await fetcher.fetch(descriptor)), data);
    assert.equal(upstreamProxy.requests.length, 0);
    assert.ok(mirrorProxy.requests.length > 0);
    for (const r of mirrorProxy.requests) {
      assert.equal(new URL(r.url, 'http://mirror').searchParams.get('ns'), upstreamProxy.host);
      assert.equal(r.headers['x-from'], 'hosts-toml');
    }
  });

  test('an empty mirror passes the pull on to the upstream server', async (t) => {
    const upstream = await startRegistry(t);
    const mirror = await startRegistry(t);
    const mirrorProxy = await startFaultProxy(t, mirror);
    const image = await buildImage();
    await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: `${upstream.host}/test/app:v1`, resolver: testResolver(t) });
    const hostsDir = writeHosts(t, upstream.host, `[host."${mirrorProxy.url}"]\ncapabilities = ["pull", "resolve"]\n`, upstream.host.replace(':', '_') + '_');

    const resolver = testResolver(t, { hostsDir });
    const ref = `${upstream.host}/test/app:v1`;
    assert.deepEqual((await resolver.resolve(ref)).descriptor, image.root);
    const layer = [...image.blobs.values()].find((b) => isLayerType(b.descriptor.mediaType))!;
    assert.deepEqual(await readStream(await (await resolver.fetcher(ref)).fetch(layer.descriptor)), layer.data);
    assert.ok(mirrorProxy.count('/v2/test/app/manifests/v1') >= 1, 'the mirror was asked first');
    assert.equal(mirrorProxy.count(`/v2/test/app/blobs/${layer.descriptor.digest}`), 1);
  });

  test('a dead mirror (connection refused) and a failing one (5xx) are passed over', async (t) => {
    const upstream = await startRegistry(t);
    const broken = await startRegistry(t);
    const brokenProxy = await startFaultProxy(t, broken);
    brokenProxy.addFault({ path: /^\/v2\//, fault: { kind: 'status', status: 500 } });
    const dead = await deadPort();
    const image = await buildImage();
    await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: `${upstream.host}/test/app:v1`, resolver: testResolver(t) });
    const hostsDir = writeHosts(
      t,
      upstream.host,
      `server = "http://${upstream.host}"\n[host."http://127.0.0.1:${dead}"]\ncapabilities = ["pull", "resolve"]\n[host."${brokenProxy.url}"]\ncapabilities = ["pull", "resolve"]\n`,
    );
    const resolver = testResolver(t, { hostsDir, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    const ref = `${upstream.host}/test/app:v1`;
    assert.deepEqual((await resolver.resolve(ref)).descriptor, image.root);
    const layer = [...image.blobs.values()].find((b) => isLayerType(b.descriptor.mediaType))!;
    assert.deepEqual(await readStream(await (await resolver.fetcher(ref)).fetch(layer.descriptor)), layer.data);
    assert.ok(brokenProxy.requests.length > 0, 'the failing mirror was tried');
  });

  test('when no host has the image the error is NotFound naming the reference', async (t) => {
    const upstream = await startRegistry(t);
    const mirror = await startRegistry(t);
    const hostsDir = writeHosts(t, upstream.host, `[host."http://${mirror.host}"]\ncapabilities = ["pull", "resolve"]\n`);
    const ref = `${upstream.host}/test/missing:v1`;
    await assert.rejects(testResolver(t, { hostsDir }).resolve(ref), (err: Error) => isNotFound(err) && err.message.includes(ref));
  });

  test('TLS: a private CA from hosts.toml is trusted, skip_verify skips the check, nothing else is', async (t) => {
    const registry = await startRegistry(t, { tls: true });
    const server = `server = "https://${registry.host}"\n`;
    const ref = `${registry.host}/test/tls:v1`;
    const image = await buildImage();
    const trusted = testResolver(t, { hostsDir: writeHosts(t, registry.host, `${server}ca = "${registry.caPath}"\n`) });
    await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: ref, resolver: trusted });
    assert.deepEqual((await trusted.resolve(ref)).descriptor, image.root);

    const skipping = testResolver(t, { hostsDir: writeHosts(t, registry.host, `${server}skip_verify = true\n`) });
    assert.deepEqual((await skipping.resolve(ref)).descriptor, image.root);

    const strict = testResolver(t, { hostsDir: writeHosts(t, registry.host, server) });
    await assert.rejects(strict.resolve(ref), (err: Error) => isUnavailable(err) && /certificate|CERT/i.test(err.message));
  });

  test('pushes go to the host with the push capability, not to a pull-only mirror', async (t) => {
    const upstream = await startRegistry(t);
    const mirror = await startRegistry(t);
    const mirrorProxy = await startFaultProxy(t, mirror);
    const hostsDir = writeHosts(t, upstream.host, `[host."${mirrorProxy.url}"]\ncapabilities = ["pull", "resolve"]\n`);
    const image = await buildImage();
    const ref = `${upstream.host}/test/pushed:v1`;
    await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: ref, resolver: testResolver(t, { hostsDir }) });
    assert.equal(mirrorProxy.requests.length, 0);
    assert.deepEqual((await testResolver(t).resolve(ref)).descriptor, image.root);
  });
});
