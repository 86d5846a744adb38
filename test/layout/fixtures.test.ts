import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  buildImage,
  buildPreset,
  diffTrees,
  FIXTURE_EPOCH,
  presetSpecs,
  readTree,
  type BuiltImage,
  type BuiltManifest,
  type ExpectedTree,
  type ImageSpec,
} from '../../bench/fixtures/index.js';
import { isInvalidArgument } from '../../src/errors.js';
import { parseImageConfig, parseIndex, parseManifest } from '../../src/images/manifest.js';
import { layerCompression, MediaType } from '../../src/images/mediatypes.js';
import { OCILayout } from '../../src/layout/index.js';
import { tempDir } from '../helpers/tmp.js';
import { decompressWithCLI, extractLayersWithGnuTar } from './helpers.js';

function digests(images: BuiltImage[]): string[] {
  return images.flatMap((image) => [image.descriptor.digest, ...image.manifests.flatMap((m) => [m.descriptor.digest, m.config.digest, ...m.layers.flatMap((l) => [l.descriptor.digest, l.diffID])])]);
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function expectedTree(manifest: BuiltManifest): Promise<ExpectedTree> {
  return JSON.parse(await readFile(manifest.expectedTreePath, 'utf8')) as ExpectedTree;
}

/** Decompress every layer with the system tools, check the diffIDs, extract with GNU tar. */
async function unpackWithSystemTools(dir: string, image: BuiltImage, manifest: BuiltManifest): Promise<string> {
  const layout = await OCILayout.open(image.layoutDir);
  const tars: string[] = [];
  for (const [i, layer] of manifest.layers.entries()) {
    const tarPath = join(dir, `layer-${i}.tar`);
    await decompressWithCLI(layout.blobPath(layer.descriptor.digest), layer.compression, tarPath);
    assert.equal(await sha256File(tarPath), layer.diffID, `layer ${i} (${layer.compression}) diffID`);
    tars.push(tarPath);
  }
  const root = join(dir, 'rootfs');
  await extractLayersWithGnuTar(tars, root);
  return root;
}

// Every kind of entry, every compression, so that system tools check all of them.
const SPECIAL_SPEC: ImageSpec = {
  name: 'special',
  seed: 'special',
  format: 'oci',
  compression: 'gzip',
  layers: [
    { files: 30, totalBytes: 300_000, sizeDistribution: 'mixed', dirs: 8, symlinks: 5, hardlinks: 4, whiteouts: 0, opaqueDirs: 0, xattrs: 3, compression: 'zstd' },
    { files: 10, totalBytes: 50_000, sizeDistribution: 'small', dirs: 3, symlinks: 2, hardlinks: 2, whiteouts: 6, opaqueDirs: 2, xattrs: 2, compression: 'lz4' },
    { files: 3, totalBytes: 3 << 20, sizeDistribution: 'large', dirs: 1, symlinks: 0, hardlinks: 0, whiteouts: 2, opaqueDirs: 1, compression: 'none' },
    { files: 4, totalBytes: 20_000, sizeDistribution: 'small', dirs: 1, symlinks: 1, hardlinks: 1, whiteouts: 4, opaqueDirs: 0, devices: 3 },
  ],
};

describe('fixture builds are deterministic', () => {
  test('tiny built twice in different directories has identical digests', async (t) => {
    const a = await buildPreset('tiny', tempDir(t));
    const b = await buildPreset('tiny', tempDir(t));
    assert.equal(a.cached, false);
    assert.deepEqual(digests(b.images), digests(a.images));
    assert.deepEqual(await readFile(a.images[0]?.manifests[0]?.expectedTreePath as string, 'utf8'), await readFile(b.images[0]?.manifests[0]?.expectedTreePath as string, 'utf8'));
  });

  test('multi-platform built twice has identical digests', async (t) => {
    const a = await buildPreset('multi-platform', tempDir(t));
    const b = await buildPreset('multi-platform', tempDir(t), { force: true });
    assert.deepEqual(digests(b.images), digests(a.images));
  });

  test('many-files at a reduced size built twice has identical digests', async (t) => {
    const a = await buildPreset('many-files', tempDir(t), { scale: 0.02 });
    const b = await buildPreset('many-files', tempDir(t), { scale: 0.02 });
    assert.deepEqual(digests(b.images), digests(a.images));
    const tree = await expectedTree(a.images[0]?.manifests[0] as BuiltManifest);
    assert.ok(Object.values(tree.entries).filter((e) => e.type === 'file').length >= 1000);
  });

  test('a different seed gives different layers', async (t) => {
    const spec = presetSpecs('tiny')[0] as ImageSpec;
    const a = await buildImage(spec, { dir: tempDir(t) });
    const b = await buildImage({ ...spec, seed: 'other' }, { dir: tempDir(t) });
    assert.notEqual(a.manifests[0]?.layers[0]?.diffID, b.manifests[0]?.layers[0]?.diffID);
  });
});

describe('fixture build cache', () => {
  test('a second build of the same preset reuses the first; force and another scale do not', async (t) => {
    const out = tempDir(t);
    const first = await buildPreset('tiny', out);
    const again = await buildPreset('tiny', out);
    assert.equal(again.cached, true);
    assert.equal(again.dir, first.dir);
    assert.deepEqual(again.images, first.images);
    assert.equal((await buildPreset('tiny', out, { force: true })).cached, false);
    const smaller = await buildPreset('tiny', out, { scale: 0.5 });
    assert.equal(smaller.cached, false);
    assert.notEqual(smaller.dir, first.dir);
  });

  test('two builds of one preset racing in one directory both succeed with the same result', async (t) => {
    const out = tempDir(t);
    const [a, b] = await Promise.all([buildPreset('tiny', out), buildPreset('tiny', out)]);
    assert.deepEqual(digests(a.images), digests(b.images));
    assert.deepEqual(digests((await buildPreset('tiny', out)).images), digests(a.images));
  });
});

describe('expected trees match what the layers mean', () => {
  test('tiny: GNU tar extraction plus whiteouts gives the expected tree', async (t) => {
    const dir = tempDir(t);
    const built = await buildPreset('tiny', join(dir, 'out'));
    const image = built.images[0] as BuiltImage;
    const manifest = image.manifests[0] as BuiltManifest;
    const expected = await expectedTree(manifest);
    const kinds = new Set(Object.values(expected.entries).map((e) => e.type));
    assert.ok(kinds.has('symlink') && kinds.has('dir') && kinds.has('file'));
    assert.ok(Object.values(expected.entries).some((e) => e.hardlink !== undefined), 'tiny has a hard link');
    const root = await unpackWithSystemTools(dir, image, manifest);
    assert.deepEqual(diffTrees(expected.entries, await readTree(root)), []);
    assert.equal(expected.mtime, FIXTURE_EPOCH.getTime() / 1000);
    assert.equal(expected.platform, 'linux/amd64');
  });

  test('zstd, lz4 and plain layers with xattrs and device nodes unpack with system tools to the expected tree', async (t) => {
    const dir = tempDir(t);
    const image = await buildImage(SPECIAL_SPEC, { dir: join(dir, 'out') });
    const manifest = image.manifests[0] as BuiltManifest;
    const expected = await expectedTree(manifest);
    const entries = Object.values(expected.entries);
    for (const kind of ['char', 'block', 'fifo'] as const) assert.ok(entries.some((e) => e.type === kind), `has a ${kind}`);
    assert.ok(entries.some((e) => e.xattrs !== undefined), 'has xattrs');
    assert.ok(Object.keys(expected.entries).some((p) => p.length > 100), 'has paths that need PAX');
    const root = await unpackWithSystemTools(dir, image, manifest);
    assert.deepEqual(diffTrees(expected.entries, await readTree(root)), []);
  });

  test('readTree and diffTrees report a changed, a missing and an extra path', async (t) => {
    const dir = tempDir(t);
    const built = await buildPreset('tiny', join(dir, 'out'));
    const image = built.images[0] as BuiltImage;
    const manifest = image.manifests[0] as BuiltManifest;
    const root = await unpackWithSystemTools(dir, image, manifest);
    const actual = await readTree(root);
    const expected = (await expectedTree(manifest)).entries;
    const [file] = Object.keys(actual).filter((p) => actual[p]?.type === 'file' && actual[p]?.hardlink === undefined);
    const changed = { ...actual, [file as string]: { ...actual[file as string], mode: 0o111 } as (typeof actual)[string], extra: { type: 'dir', mode: 0o755, uid: 0, gid: 0 } as const };
    delete changed[Object.keys(actual).find((p) => actual[p]?.type === 'symlink') as string];
    const diff = diffTrees(expected, changed);
    assert.equal(diff.length, 3, diff.join('\n'));
  });
});

describe('fixture media types and digests', () => {
  test('OCI and Docker formats use their own media types for every compression', async (t) => {
    const layers = (['gzip', 'zstd', 'none'] as const).map((compression) => ({ files: 2, totalBytes: 2000, sizeDistribution: 'small' as const, dirs: 1, symlinks: 0, hardlinks: 0, whiteouts: 0, opaqueDirs: 0, compression }));
    const docker = await buildImage({ name: 'docker', seed: 's', format: 'docker', compression: 'gzip', layers, platforms: [{ os: 'linux', architecture: 'amd64' }] }, { dir: tempDir(t) });
    assert.equal(docker.descriptor.mediaType, MediaType.DockerManifestList);
    const dm = docker.manifests[0] as BuiltManifest;
    assert.equal(dm.descriptor.mediaType, MediaType.DockerManifest);
    assert.equal(dm.config.mediaType, MediaType.DockerConfig);
    assert.deepEqual(dm.layers.map((l) => l.descriptor.mediaType), [MediaType.DockerLayerGzip, MediaType.DockerLayerZstd, MediaType.DockerLayer]);

    const oci = await buildImage({ name: 'oci', seed: 's', format: 'oci', compression: 'lz4', layers: [...layers, { ...(layers[0] as ImageSpec['layers'][number]), compression: undefined }] }, { dir: tempDir(t) });
    assert.equal(oci.descriptor.mediaType, MediaType.OCIManifest);
    const om = oci.manifests[0] as BuiltManifest;
    assert.equal(om.config.mediaType, MediaType.OCIConfig);
    assert.deepEqual(om.layers.map((l) => layerCompression(l.descriptor.mediaType)), ['gzip', 'zstd', 'none', 'lz4']);
    // the stored documents say the same as the returned descriptors
    const layout = await OCILayout.open(oci.layoutDir);
    const manifest = parseManifest(await layout.readBlob(om.descriptor), { mediaType: MediaType.OCIManifest });
    assert.deepEqual(manifest.layers, om.layers.map((l) => l.descriptor));
  });

  test('Docker format refuses lz4 layers, and malformed specs are InvalidArgument', async (t) => {
    const layer = { files: 1, totalBytes: 10, sizeDistribution: 'small' as const, dirs: 0, symlinks: 0, hardlinks: 0, whiteouts: 0, opaqueDirs: 0 };
    await assert.rejects(buildImage({ name: 'x', seed: 's', format: 'docker', compression: 'lz4', layers: [layer] }, { dir: tempDir(t) }), isInvalidArgument);
    await assert.rejects(buildImage({ name: 'x', seed: 's', format: 'oci', compression: 'gzip', layers: [] }, { dir: tempDir(t) }), isInvalidArgument);
    await assert.rejects(buildImage({ name: 'x', seed: 's', format: 'oci', compression: 'gzip', layers: [{ ...layer, files: -1 }] }, { dir: tempDir(t) }), isInvalidArgument);
    await assert.rejects(buildImage({ name: 'Bad Name', seed: 's', format: 'oci', compression: 'gzip', layers: [layer] }, { dir: tempDir(t) }), isInvalidArgument);
  });

  test('the config lists the diffIDs, the platform and one history entry per layer', async (t) => {
    const built = await buildPreset('multi-platform', tempDir(t));
    const image = built.images[0] as BuiltImage;
    const layout = await OCILayout.open(image.layoutDir);
    const index = parseIndex(await layout.readBlob(image.descriptor));
    assert.deepEqual(index.manifests.map((m) => m.platform), [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }]);
    for (const manifest of image.manifests) {
      const config = parseImageConfig(await layout.readBlob(manifest.config));
      assert.deepEqual(config.rootfs.diff_ids, manifest.layers.map((l) => l.diffID));
      assert.equal(config.architecture, manifest.platform.architecture);
      assert.equal(config.history?.length, manifest.layers.length);
      assert.equal((await expectedTree(manifest)).platform, `linux/${manifest.platform.architecture}`);
    }
    // the layer with a fixed seed is shared; the others differ per platform
    const [amd64, arm64] = image.manifests as [BuiltManifest, BuiltManifest];
    assert.equal(amd64.layers[0]?.descriptor.digest, arm64.layers[0]?.descriptor.digest);
    assert.notEqual(amd64.layers[1]?.descriptor.digest, arm64.layers[1]?.descriptor.digest);
  });

  test('shared-base: two images in one layout share their first two layers', async (t) => {
    const built = await buildPreset('shared-base', tempDir(t), { scale: 0.1 });
    const [a, b] = built.images as [BuiltImage, BuiltImage];
    assert.equal(a.layoutDir, b.layoutDir);
    const la = (a.manifests[0] as BuiltManifest).layers.map((l) => l.descriptor.digest);
    const lb = (b.manifests[0] as BuiltManifest).layers.map((l) => l.descriptor.digest);
    assert.deepEqual(la.slice(0, 2), lb.slice(0, 2));
    assert.notEqual(la[2], lb[2]);
    const names = (await (await OCILayout.open(a.layoutDir)).listImages()).map((i) => i.name);
    assert.deepEqual(names, ['shared-base-a', 'shared-base-b']);
  });
});
