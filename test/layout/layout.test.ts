import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { buildImage, diffTrees, readTree, type ExpectedTree, type ImageSpec } from '../../bench/fixtures/index.js';
import type { Descriptor } from '../../src/descriptor.js';
import { digestOf } from '../../src/digest.js';
import {
  isCanceled,
  isDigestMismatch,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  isSizeMismatch,
  NotImplementedError,
} from '../../src/errors.js';
import { parseIndex, parseManifest } from '../../src/images/manifest.js';
import { MediaType } from '../../src/images/mediatypes.js';
import { formatLayoutReference, layoutResolveKey, OCILayout, parseLayoutReference, REF_NAME_ANNOTATION, validateRefName } from '../../src/layout/index.js';
import { tempDir } from '../helpers/tmp.js';
import { run, skopeo } from './helpers.js';

function jsonBlob(value: unknown, mediaType: string): { desc: Descriptor; bytes: Buffer } {
  const bytes = Buffer.from(JSON.stringify(value));
  return { desc: { mediaType, digest: digestOf(bytes), size: bytes.byteLength }, bytes };
}

/** A small image (config + one layer + manifest) pushed into `layout`. */
async function pushImage(layout: OCILayout, seed: string): Promise<{ manifest: Descriptor; layer: Descriptor; layerBytes: Buffer }> {
  const layerBytes = Buffer.from(`layer bytes ${seed} `.repeat(100));
  const layer: Descriptor = { mediaType: MediaType.OCILayer, digest: digestOf(layerBytes), size: layerBytes.byteLength };
  const config = jsonBlob({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } }, MediaType.OCIConfig);
  const manifest = jsonBlob({ schemaVersion: 2, mediaType: MediaType.OCIManifest, config: config.desc, layers: [layer] }, MediaType.OCIManifest);
  await layout.push(layer, () => Readable.from([layerBytes]));
  await layout.push(config.desc, () => Readable.from([config.bytes]));
  await layout.push(manifest.desc, () => Readable.from([manifest.bytes]));
  return { manifest: manifest.desc, layer, layerBytes };
}

const TINY_SPEC: ImageSpec = {
  name: 'tiny',
  seed: 'layout-test',
  format: 'oci',
  compression: 'gzip',
  layers: [
    { files: 10, totalBytes: 20_000, sizeDistribution: 'small', dirs: 4, symlinks: 3, hardlinks: 2, whiteouts: 0, opaqueDirs: 0 },
    { files: 5, totalBytes: 8_000, sizeDistribution: 'small', dirs: 2, symlinks: 1, hardlinks: 1, whiteouts: 3, opaqueDirs: 1 },
  ],
};

describe('OCILayout writes and reads', () => {
  test('create writes oci-layout and an empty index; open validates both', async (t) => {
    const dir = join(tempDir(t), 'layout');
    const layout = await OCILayout.create(dir);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    assert.deepEqual(await layout.index(), { schemaVersion: 2, mediaType: MediaType.OCIIndex, manifests: [] });
    assert.equal((await OCILayout.open(dir)).dir, dir);
    // create on an existing layout keeps what it has
    await pushImage(layout, 'a').then(({ manifest }) => layout.tag('a', manifest));
    assert.equal((await (await OCILayout.create(dir)).listImages()).length, 1);
  });

  test('a pushed image round-trips: resolve by tag, fetch every blob, fetch from an offset', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const { manifest, layer, layerBytes } = await pushImage(layout, 'round-trip');
    await layout.tag('v1', manifest);
    const resolved = await layout.resolve('v1');
    assert.equal(resolved.descriptor.digest, manifest.digest);
    assert.equal(resolved.name, formatLayoutReference({ dir: layout.dir, tag: 'v1' }));
    const parsed = parseManifest(await layout.readBlob(resolved.descriptor), { mediaType: resolved.descriptor.mediaType });
    assert.deepEqual(parsed.layers, [layer]);
    const fetcher = await layout.fetcher();
    assert.equal(await text(await fetcher.fetch(layer)), layerBytes.toString());
    assert.equal(await text(await fetcher.fetch(layer, { offset: 100 })), layerBytes.subarray(100).toString());
    assert.equal(await text(await fetcher.fetch(layer, { offset: layer.size })), '');
    await assert.rejects(fetcher.fetch(layer, { offset: layer.size + 1 }), isInvalidArgument);
  });

  test('pushing a blob that is there already is a no-op that does not read the content', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const { layer } = await pushImage(layout, 'twice');
    const status = await layout.push(layer, () => {
      throw new Error('content must not be opened');
    });
    assert.equal(status, 'exists');
  });

  test('a push whose bytes do not match the descriptor fails and publishes nothing', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const wrong: Descriptor = { mediaType: MediaType.OCILayer, digest: digestOf('expected'), size: 8 };
    await assert.rejects(layout.push(wrong, () => Readable.from([Buffer.from('tampered')])), isDigestMismatch);
    await assert.rejects(layout.push({ ...wrong, size: 4 }, () => Readable.from([Buffer.from('too long')])), isSizeMismatch);
    assert.equal(await layout.hasBlob(wrong), false);
    assert.deepEqual((await readdir(layout.dir)).sort(), ['blobs', 'index.json', 'oci-layout']);
    assert.deepEqual(await readdir(join(layout.dir, 'blobs', 'sha256')), []);
  });

  test('a cancelled push fails with Canceled and leaves no temporary file', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const controller = new AbortController();
    const bytes = Buffer.alloc(1 << 20, 1);
    async function* slow(): AsyncGenerator<Buffer> {
      yield bytes.subarray(0, 1000);
      controller.abort();
      yield bytes.subarray(1000);
    }
    await assert.rejects(
      layout.push({ mediaType: MediaType.OCILayer, digest: digestOf(bytes), size: bytes.byteLength }, () => Readable.from(slow()), { signal: controller.signal }),
      isCanceled,
    );
    assert.deepEqual((await readdir(layout.dir)).sort(), ['blobs', 'index.json', 'oci-layout']);
  });

  test('writeBlob stores a stream of unknown digest and reports digest and size', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const written = await layout.writeBlob(Readable.from([Buffer.from('ab'), Buffer.from('cd')]));
    assert.deepEqual(written, { digest: digestOf('abcd'), size: 4 });
    assert.equal(await readFile(layout.blobPath(written.digest), 'utf8'), 'abcd');
  });
});

describe('OCILayout index.json and names', () => {
  test('several tags live side by side; re-tagging moves the name; listImages shows file order', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const a = await pushImage(layout, 'a');
    const b = await pushImage(layout, 'b');
    await layout.tag('latest', a.manifest);
    await layout.tag('v1', a.manifest);
    await layout.tag('v2', b.manifest);
    await layout.tag('latest', b.manifest);
    const images = await layout.listImages();
    assert.deepEqual(images.map((i) => [i.name, i.descriptor.digest]), [
      ['v1', a.manifest.digest],
      ['v2', b.manifest.digest],
      ['latest', b.manifest.digest],
    ]);
    assert.equal((await layout.resolve('latest')).descriptor.digest, b.manifest.digest);
    assert.equal((await layout.resolve('v1')).descriptor.digest, a.manifest.digest);
    // the file is an index any parser accepts, with the name as the ref.name annotation
    const index = parseIndex(await readFile(join(layout.dir, 'index.json')));
    assert.equal(index.manifests[2]?.annotations?.[REF_NAME_ANNOTATION], 'latest');
  });

  test('concurrent tags of one layout all land (index.json updates are serialised)', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const { manifest } = await pushImage(layout, 'c');
    const other = await OCILayout.open(layout.dir);
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? layout : other).tag(`t${i}`, manifest)));
    assert.equal((await layout.listImages()).length, 20);
  });

  test('resolve accepts a digest, name@digest, and "" when the layout holds one image', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const a = await pushImage(layout, 'a');
    await layout.tag('a', a.manifest);
    assert.equal((await layout.resolve('')).descriptor.digest, a.manifest.digest);
    assert.equal((await layout.resolve(a.manifest.digest)).descriptor.digest, a.manifest.digest);
    assert.equal((await layout.resolve(`whatever@${a.manifest.digest}`)).descriptor.digest, a.manifest.digest);
    // an untagged manifest blob resolves by digest, its media type read from the body
    const b = await pushImage(layout, 'b');
    assert.deepEqual((await layout.resolve(b.manifest.digest)).descriptor, { ...b.manifest });
    await layout.tag('b', b.manifest);
    await assert.rejects(layout.resolve(''), isInvalidArgument);
  });

  test('a push with a tag option names that manifest, whatever the pusher was opened with', async (t) => {
    const source = await OCILayout.create(tempDir(t));
    const { manifest, layer, layerBytes } = await pushImage(source, 'tagged');
    const target = await OCILayout.create(tempDir(t));
    const pusher = await target.pusher('');
    await pusher.push(layer, () => Readable.from([layerBytes]));
    assert.equal(await pusher.push(manifest, async () => Readable.from([await source.readBlob(manifest)]), { tag: 'release' }), 'uploaded');
    assert.deepEqual((await target.listImages()).map((i) => i.name), ['release']);
  });

  test('unknown names and digests are NotFound; bad names are InvalidArgument', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const { manifest } = await pushImage(layout, 'x');
    await assert.rejects(layout.resolve('nope'), isNotFound);
    await assert.rejects(layout.resolve(digestOf('nothing')), isNotFound);
    await assert.rejects(layout.resolve('x@sha256:abc'), isInvalidArgument);
    // a name with '@' in it resolves as a whole
    await layout.tag('team@host', manifest);
    assert.equal((await layout.resolve('team@host')).descriptor.digest, manifest.digest);
    await assert.rejects(layout.tag('bad name', manifest), isInvalidArgument);
    await assert.rejects(layout.tag('-leading', manifest), isInvalidArgument);
    await assert.rejects(layout.tag('ok', { ...manifest, digest: digestOf('absent') }), isNotFound);
  });

  test('containerd-style entries resolve by io.containerd.image.name; ambiguous names fail', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const a = await pushImage(layout, 'a');
    const b = await pushImage(layout, 'b');
    const index = {
      schemaVersion: 2,
      manifests: [
        { ...a.manifest, annotations: { 'io.containerd.image.name': 'docker.io/library/app:1', [REF_NAME_ANNOTATION]: '1' } },
        { ...a.manifest, annotations: { [REF_NAME_ANNOTATION]: 'dup' } },
        { ...b.manifest, annotations: { [REF_NAME_ANNOTATION]: 'dup' } },
      ],
    };
    await writeFile(join(layout.dir, 'index.json'), JSON.stringify(index));
    assert.equal((await layout.resolve('docker.io/library/app:1')).descriptor.digest, a.manifest.digest);
    assert.equal((await layout.resolve('1')).descriptor.digest, a.manifest.digest);
    await assert.rejects(layout.resolve('dup'), isFailedPrecondition);
  });

  test('a pusher for a name tags what it pushes last: the root of a multi-platform image', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const amd = await pushImage(layout, 'amd64');
    const arm = await pushImage(layout, 'arm64');
    const index = jsonBlob(
      { schemaVersion: 2, mediaType: MediaType.OCIIndex, manifests: [{ ...amd.manifest, platform: { os: 'linux', architecture: 'amd64' } }, { ...arm.manifest, platform: { os: 'linux', architecture: 'arm64' } }] },
      MediaType.OCIIndex,
    );
    const target = await OCILayout.create(tempDir(t));
    const pusher = await target.pusher('multi');
    for (const image of [amd, arm]) {
      await pusher.push(image.layer, () => layout.fetch(image.layer));
      await pusher.push(image.manifest, async () => Readable.from([await layout.readBlob(image.manifest)]));
    }
    assert.equal(await pusher.push(index.desc, () => Readable.from([index.bytes])), 'uploaded');
    const resolved = await target.resolve('multi');
    assert.equal(resolved.descriptor.digest, index.desc.digest);
    assert.equal((await target.listImages()).length, 1);
    const parsed = parseIndex(await target.readBlob(resolved.descriptor));
    assert.deepEqual(parsed.manifests.map((m) => m.platform?.architecture), ['amd64', 'arm64']);
    for (const m of parsed.manifests) assert.ok(await target.hasBlob(m));
  });
});

describe('OCILayout untrusted content', () => {
  test('a missing blob is NotFound, a truncated one SizeMismatch, a symlinked one InvalidArgument', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const { layer, manifest } = await pushImage(layout, 'bad');
    await assert.rejects(layout.fetch({ ...layer, digest: digestOf('missing') }), isNotFound);
    await truncate(layout.blobPath(layer.digest), 10);
    await assert.rejects(layout.fetch(layer), isSizeMismatch);
    const secret = join(tempDir(t), 'secret');
    await writeFile(secret, 'x'.repeat(manifest.size));
    const fake = { ...manifest, digest: digestOf('fake') };
    await symlink(secret, layout.blobPath(fake.digest));
    await assert.rejects(layout.fetch(fake), isInvalidArgument);
  });

  test('a corrupted blob of the right size streams from fetch but fails readBlob verification', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const { manifest } = await pushImage(layout, 'corrupt');
    await writeFile(layout.blobPath(manifest.digest), 'z'.repeat(manifest.size));
    assert.equal((await text(await layout.fetch(manifest))).length, manifest.size);
    await assert.rejects(layout.readBlob(manifest), isDigestMismatch);
  });

  test('a fetch stream is cancelled by its signal', async (t) => {
    const layout = await OCILayout.create(tempDir(t));
    const { layer } = await pushImage(layout, 'cancel');
    const controller = new AbortController();
    const stream = await layout.fetch(layer, { signal: controller.signal });
    controller.abort();
    await assert.rejects(text(stream), isCanceled);
  });

  test('open: missing directory NotFound, no oci-layout or index.json InvalidArgument, other versions NotImplemented', async (t) => {
    const root = tempDir(t);
    await assert.rejects(OCILayout.open(join(root, 'absent')), isNotFound);
    const dir = join(root, 'layout');
    await mkdir(dir);
    await assert.rejects(OCILayout.open(dir), (err: Error) => isInvalidArgument(err) && /oci-layout/.test(err.message));
    await writeFile(join(dir, 'oci-layout'), '{not json');
    await assert.rejects(OCILayout.open(dir), isInvalidArgument);
    await writeFile(join(dir, 'oci-layout'), '{}');
    await assert.rejects(OCILayout.open(dir), isInvalidArgument);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
    await assert.rejects(OCILayout.open(dir), NotImplementedError);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await assert.rejects(OCILayout.open(dir), (err: Error) => isInvalidArgument(err) && /index\.json/.test(err.message));
    await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":{}}');
    await assert.rejects(OCILayout.open(dir), isInvalidArgument);
    await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:../../etc","size":1}]}');
    await assert.rejects(OCILayout.open(dir), isInvalidArgument);
    await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
    assert.deepEqual(await (await OCILayout.open(dir)).listImages(), []);
  });
});

describe('layout references', () => {
  test('parseLayoutReference splits directory, tag and digest', () => {
    const digest = digestOf('x');
    assert.deepEqual(parseLayoutReference('oci-layout:///tmp/images/app'), { dir: '/tmp/images/app' });
    assert.deepEqual(parseLayoutReference('oci-layout:///tmp/images/app:v1.2'), { dir: '/tmp/images/app', tag: 'v1.2' });
    assert.deepEqual(parseLayoutReference(`oci-layout://rel/dir@${digest}`), { dir: 'rel/dir', digest });
    assert.deepEqual(parseLayoutReference(`oci-layout:///a:b/dir:tag@${digest}`), { dir: '/a:b/dir', tag: 'tag', digest });
    assert.equal(layoutResolveKey(parseLayoutReference(`oci-layout:///d:tag@${digest}`)), digest);
    assert.equal(layoutResolveKey(parseLayoutReference('oci-layout:///d:tag')), 'tag');
    const ref = { dir: '/x/y', tag: 'latest', digest };
    assert.deepEqual(parseLayoutReference(formatLayoutReference(ref)), ref);
  });

  for (const bad of ['/tmp/x', 'docker://x', 'oci-layout://', 'oci-layout://:tag', 'oci-layout:///x@sha256:123', 'oci-layout:///x:bad tag']) {
    test(`parseLayoutReference rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseLayoutReference(bad), isInvalidArgument);
    });
  }

  test('ref names follow the image-spec grammar', () => {
    for (const ok of ['latest', 'v1.0', 'a--b', 'example.com/app:v1', 'a_b+c@d']) assert.equal(validateRefName(ok), ok);
    for (const bad of ['', '-a', 'a-', 'a/', 'a b', 'a//b', '.hidden']) assert.throws(() => validateRefName(bad), isInvalidArgument);
  });
});

describe('interoperability with Go tools', () => {
  test('reads an image umoci wrote', async (t) => {
    const dir = tempDir(t);
    const layoutDir = join(dir, 'layout');
    const bundle = join(dir, 'bundle');
    await run('umoci', ['init', '--layout', layoutDir]);
    await run('umoci', ['new', '--image', `${layoutDir}:base`]);
    await run('umoci', ['unpack', '--image', `${layoutDir}:base`, bundle]);
    await mkdir(join(bundle, 'rootfs', 'etc'));
    await writeFile(join(bundle, 'rootfs', 'etc', 'hello'), 'from umoci\n');
    await run('umoci', ['repack', '--image', `${layoutDir}:base`, bundle]);

    const layout = await OCILayout.open(layoutDir);
    const resolved = await layout.resolve('base');
    const manifest = parseManifest(await layout.readBlob(resolved.descriptor), { mediaType: resolved.descriptor.mediaType });
    assert.equal(manifest.layers.length, 1);
    const layer = manifest.layers[0] as Descriptor;
    assert.equal(layer.mediaType, MediaType.OCILayerGzip);
    // stream the layer through our fetcher, and check it is what umoci said it is
    const copy = join(dir, 'layer.tar.gz');
    await writeFile(copy, await layout.fetch(layer));
    assert.equal(digestOf(await readFile(copy)), layer.digest);
    assert.match(await run('tar', ['-tzf', copy]), /etc\/hello/);
  });

  test('umoci lists, stats and unpacks an image we wrote, to the tree the builder expects', async (t) => {
    const dir = tempDir(t);
    const image = await buildImage(TINY_SPEC, { dir });
    assert.match(await run('umoci', ['ls', '--layout', image.layoutDir]), /^tiny$/m);
    assert.match(await run('umoci', ['stat', '--image', `${image.layoutDir}:tiny`]), /layerpool fixture tiny layer 1/);
    const bundle = join(dir, 'bundle');
    await run('umoci', ['unpack', '--image', `${image.layoutDir}:tiny`, bundle]);
    const expected = JSON.parse(await readFile((image.manifests[0] as { expectedTreePath: string }).expectedTreePath, 'utf8')) as ExpectedTree;
    assert.deepEqual(diffTrees(expected.entries, await readTree(join(bundle, 'rootfs'))), []);
  });

  test('skopeo copies an image we wrote (verifying every digest), and we read its copy', async (t) => {
    const dir = tempDir(t);
    const image = await buildImage({ ...TINY_SPEC, name: 'multi', platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }] }, { dir });
    const copyDir = join(dir, 'copy');
    await skopeo('copy', '--all', `oci:${image.layoutDir}:multi`, `oci:${copyDir}:copied`);
    const copy = await OCILayout.open(copyDir);
    const resolved = await copy.resolve('copied');
    assert.equal(resolved.descriptor.digest, image.descriptor.digest);
    const index = parseIndex(await copy.readBlob(resolved.descriptor));
    assert.deepEqual(index.manifests.map((m) => m.platform), [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }]);
    for (const m of index.manifests) {
      const manifest = parseManifest(await copy.readBlob(m));
      for (const blob of [manifest.config, ...manifest.layers]) {
        assert.equal(digestOf(Buffer.from(await (await copy.fetch(blob)).toArray().then((c) => Buffer.concat(c)))), blob.digest);
      }
    }
    // and skopeo reads what we wrote as we wrote it
    const inspected = JSON.parse(await skopeo('inspect', '--raw', `oci:${image.layoutDir}:multi`)) as { manifests: unknown[] };
    assert.equal(inspected.manifests.length, 2);
  });
});
