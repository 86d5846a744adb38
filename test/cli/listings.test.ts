import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { GCStats } from '../../src/gc/collector.js';
import type {
  ContentSummary,
  DiskUsageReport,
  ImageDetails,
  ImageSummary,
  ImageUsage,
  LeaseSummary,
  PruneSummary,
  SnapshotSummary,
  SnapshotUsage,
} from '../../src/server/types.js';
import { tempDir } from '../helpers/tmp.js';
import { buildCli, publishFixture, pulledRoot, runCli, runJSON, runOk } from './helpers.js';

before(() => buildCli());

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const ISO_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('layerpool listings with --json', () => {
  test('images ls, inspect and usage describe the pulled image', async (t) => {
    const { root, published } = await pulledRoot(t);
    const [image, ...others] = await runJSON<ImageSummary[]>(t, ['--root', root, 'images', 'ls']);
    assert.equal(others.length, 0);
    assert.equal(image!.name, published.ref);
    assert.equal(image!.digest, published.image.descriptor.digest);
    assert.equal(image!.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.deepEqual(image!.platforms, ['linux/amd64']);
    assert.ok(image!.size > published.image.compressedBytes, 'layers plus manifest and config');
    assert.match(image!.createdAt, ISO_DATE);

    const details = await runJSON<ImageDetails>(t, ['--root', root, 'images', 'inspect', published.ref]);
    const manifest = published.image.manifests[0]!;
    assert.equal(details.manifestDigest, manifest.descriptor.digest);
    assert.equal(details.configDigest, manifest.config.digest);
    assert.equal(details.unpacked, true);
    assert.equal(details.snapshotter, 'overlay');
    assert.deepEqual(details.layers.map((l) => [l.digest, l.diffID, l.present]), manifest.layers.map((l) => [l.descriptor.digest, l.diffID, true]));
    assert.equal(details.chainID, details.layers.at(-1)!.chainID);
    assert.deepEqual(details.config['Cmd'], ['/bin/sh']);

    const [usage] = await runJSON<ImageUsage[]>(t, ['--root', root, 'images', 'usage']);
    assert.equal(usage!.name, published.ref);
    assert.equal(usage!.content, image!.size);
    assert.ok(usage!.snapshots > 0);
  });

  test('content, snapshots and leases listings carry their documented fields', async (t) => {
    const { root, published } = await pulledRoot(t);

    const blobs = await runJSON<ContentSummary[]>(t, ['--root', root, 'content', 'ls']);
    assert.equal(blobs.length, 4, 'manifest, config, two layers');
    for (const blob of blobs) {
      assert.match(blob.digest, DIGEST);
      assert.ok(blob.size > 0);
      assert.match(blob.updatedAt, ISO_DATE);
    }
    const layer = published.image.manifests[0]!.layers[0]!;
    const withDiffID = await runJSON<ContentSummary[]>(t, ['--root', root, 'content', 'ls', '--filter', 'labels."containerd.io/uncompressed"']);
    assert.ok(withDiffID.some((b) => b.digest === layer.descriptor.digest && b.labels['containerd.io/uncompressed'] === layer.diffID));
    const bytes = await runOk(t, ['--root', root, 'content', 'get', published.image.manifests[0]!.config.digest]);
    assert.deepEqual(JSON.parse(bytes.stdout).rootfs.diff_ids, published.image.manifests[0]!.layers.map((l) => l.diffID));

    const snapshots = await runJSON<SnapshotSummary[]>(t, ['--root', root, 'snapshots', 'ls']);
    assert.equal(snapshots.length, 2);
    assert.deepEqual(snapshots.map((s) => [s.snapshotter, s.kind]), [['overlay', 'committed'], ['overlay', 'committed']]);
    assert.equal(snapshots[1]!.parent, snapshots[0]!.key);
    const tree = await runJSON<{ key: string; kind: string; children: { key: string }[] }[]>(t, ['--root', root, 'snapshots', 'tree']);
    assert.deepEqual(tree.map((n) => [n.key, n.children.map((c) => c.key)]), [[snapshots[0]!.key, [snapshots[1]!.key]]]);
    const usage = await runJSON<SnapshotUsage[]>(t, ['--root', root, 'snapshots', 'usage', snapshots[1]!.key]);
    assert.equal(usage.length, 1);
    assert.ok(usage[0]!.size > 0 && usage[0]!.inodes > 0);

    const created = await runJSON<LeaseSummary>(t, ['--root', root, 'leases', 'create', '--id', 'build-1', '--expire', '1h', '--label', 'team=ci']);
    assert.equal(created.id, 'build-1');
    assert.ok(Math.abs(Date.parse(created.expiresAt!) - Date.now() - 3_600_000) < 60_000);
    const leases = await runJSON<LeaseSummary[]>(t, ['--root', root, 'leases', 'ls']);
    assert.deepEqual(leases.map((l) => [l.id, l.flat, l.labels['team'], l.resources]), [['build-1', false, 'ci', []]]);
    await runOk(t, ['--root', root, 'leases', 'rm', 'build-1']);
    assert.deepEqual(await runJSON(t, ['--root', root, 'leases', 'ls']), []);
  });

  test('a view snapshot has mounts; the mount command is printed for it', async (t) => {
    const { root, published } = await pulledRoot(t);
    await runOk(t, ['--root', root, 'mount', published.ref, `${root}/mnt`]);
    try {
      const [view] = await runJSON<SnapshotSummary[]>(t, ['--root', root, 'snapshots', 'ls', '--filter', 'kind==view']);
      const mounts = await runJSON<{ command: string; mounts: { type: string }[] }>(t, ['--root', root, 'snapshots', 'mounts', view!.key, '/mnt/x']);
      assert.deepEqual(mounts.mounts.map((m) => m.type), ['overlay']);
      assert.match(mounts.command, /^mount -t overlay overlay -o ro,index=off,lowerdir=\S+ \/mnt\/x$/);
      const committed = await runCli(t, ['--root', root, 'snapshots', 'mounts', view!.parent!]);
      assert.equal(committed.code, 8, 'a committed snapshot has no mounts: failed precondition');
    } finally {
      await runOk(t, ['--root', root, 'unmount', `${root}/mnt`]);
    }
  });
});

describe('layerpool push', () => {
  test('pushes a pulled image under another name; a fresh root pulls it back', async (t) => {
    const { root, published } = await pulledRoot(t);
    const copy = `${published.registry.host}/cli/copy:v2`;
    const pushed = await runJSON<{ digest: string }>(t, ['--root', root, 'push', copy, '--source', published.ref]);
    assert.equal(pushed.digest, published.image.descriptor.digest);
    const fresh = tempDir(t);
    await runOk(t, ['--root', fresh, 'pull', copy]);
    const [image] = await runJSON<ImageSummary[]>(t, ['--root', fresh, 'images', 'ls']);
    assert.deepEqual([image!.name, image!.digest], [copy, published.image.descriptor.digest]);
  });
});

describe('layerpool removal and garbage collection', () => {
  test('images rm then gc frees the blobs and the snapshots', async (t) => {
    const { root, published } = await pulledRoot(t);
    await runOk(t, ['--root', root, 'images', 'rm', published.ref]);
    const stats = await runJSON<GCStats>(t, ['--root', root, 'gc']);
    assert.equal(stats.removed.content, 4);
    assert.equal(stats.removed.snapshots, 2);
    assert.ok(stats.bytesFreed >= published.image.compressedBytes);
    assert.deepEqual(await runJSON(t, ['--root', root, 'content', 'ls']), []);
    assert.deepEqual(await runJSON(t, ['--root', root, 'snapshots', 'ls']), []);
  });

  test('content prune frees the layer blobs of an unpacked image and keeps its snapshots', async (t) => {
    const { root, published } = await pulledRoot(t);
    const pruned = await runJSON<PruneSummary>(t, ['--root', root, 'content', 'prune']);
    assert.equal(pruned.manifests, 1);
    assert.equal(pruned.gc.removed.content, 2);
    const left = (await runJSON<ContentSummary[]>(t, ['--root', root, 'content', 'ls'])).map((b) => b.digest).sort();
    const manifest = published.image.manifests[0]!;
    assert.deepEqual(left, [manifest.descriptor.digest, manifest.config.digest].sort());
    assert.equal((await runJSON<SnapshotSummary[]>(t, ['--root', root, 'snapshots', 'ls'])).length, 2);
    const again = await runOk(t, ['--root', root, 'pull', published.ref]);
    assert.match(again.stdout, / 0\/2 layers applied, 0B fetched/, 'the layers are not fetched again');
  });

  test('du splits each image into the bytes only it uses and the bytes it shares', async (t) => {
    const [a, b] = await publishFixture(t, 'shared-base', { scale: 0.05 });
    const root = tempDir(t);
    await runOk(t, ['--root', root, 'pull', a!.ref]);
    await runOk(t, ['--root', root, 'pull', b!.ref]);
    const report = await runJSON<DiskUsageReport>(t, ['--root', root, 'du']);
    assert.deepEqual(report.images.map((i) => i.name).sort(), [a!.ref, b!.ref].sort());
    const sharedLayers = a!.image.manifests[0]!.layers.slice(0, 2).reduce((n, l) => n + l.descriptor.size, 0);
    for (const image of report.images) {
      assert.equal(image.content.shared, sharedLayers, `${image.name}: the two base layers are shared`);
      assert.ok(image.content.unique > 0 && image.snapshots.unique > 0 && image.snapshots.shared > 0);
      assert.equal(image.total.total, image.total.unique + image.total.shared);
      assert.equal(image.total.total, image.content.total + image.snapshots.total);
    }
    const [first, second] = report.images;
    assert.equal(report.referenced.content, first!.content.total + second!.content.total - sharedLayers);
    assert.equal(report.contentStore, report.referenced.content);
  });
});
