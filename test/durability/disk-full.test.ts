/**
 * A full disk: a root on a 64 MiB loop-mounted ext4 that a filler file has left too
 * little room for the image. The pull must fail with ResourceExhausted and leave a root
 * that is consistent and resumable — no extract-* snapshot, every committed snapshot
 * complete, ingests only as resumable prefixes of the image's layers — and once space is
 * freed the same pull must succeed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkDisk } from '../../bench/stress/invariants.js';
import { Client } from '../../src/client.js';
import { isResourceExhausted } from '../../src/errors.js';
import { MetadataDB } from '../../src/metadata/db.js';
import { ingestRef } from '../../src/remote/fetch.js';
import { buildTestImage, expectedTree, plainLayer, testSpec } from '../helpers/images.js';
import { assertPulled } from '../pull/helpers.js';
import { checkCommittedSnapshots, layersByChain } from './committed.js';
import { makeLoopExt4 } from './loopfs.js';

const MiB = 1 << 20;

/**
 * Where the disk runs out: during the downloads (ingest writes fail), or once the blobs
 * are in and the unpacked layers (and the metadata database) need the rest.
 */
const SCENARIOS = [
  { when: 'while the layers download', room: (compressed: number) => Math.floor(compressed / 3) },
  { when: 'while the layers unpack', room: (compressed: number) => compressed + 4 * MiB },
];

for (const { when, room } of SCENARIOS) test(`a disk that fills ${when}: the pull fails with ResourceExhausted, leaves a consistent resumable root, and succeeds once space is freed`, async (t) => {
  const fs = makeLoopExt4(t, { sizeMiB: 64 });
  const image = await buildTestImage(t, testSpec('disk-full', [
    plainLayer(8, 6 * MiB, { sizeDistribution: 'large', seed: 'disk-full/0' }),
    plainLayer(8, 8 * MiB, { sizeDistribution: 'large', seed: 'disk-full/1' }),
    plainLayer(8, 8 * MiB, { sizeDistribution: 'large', seed: 'disk-full/2' }),
  ]));
  const manifest = image.manifests[0]!;
  const compressed = manifest.layers.reduce((n, l) => n + l.descriptor.size, 0);
  const uncompressed = manifest.layers.reduce((n, l) => n + l.uncompressedSize, 0);
  const root = join(fs.mountPoint, 'root');
  const filler = join(fs.mountPoint, 'filler');
  const leave = room(compressed);
  assert.ok(fs.available() > uncompressed + 2 * compressed, `the filesystem has room for the whole image once the filler goes (${fs.available()} bytes free)`);
  execFileSync('fallocate', ['-l', String(fs.available() - leave), filler]);

  const first = await Client.open({ root, gc: false, credentials: () => undefined });
  try {
    await assert.rejects(first.pull(image.reference), (err: Error) => {
      assert.ok(isResourceExhausted(err), `ResourceExhausted, got ${err.name}: ${err.message}`);
      assert.match(err.message, /no space left on device|ENOSPC/i);
      return true;
    });
    assert.deepEqual(first.leases.list(), [], 'the failed pull released its lease');
  } finally {
    await first.close();
  }

  const disk = await checkDisk(root);
  assert.deepEqual(disk.violations, [], 'files and rows agree, no staging or removal folders left');
  const db = MetadataDB.open({ path: join(root, 'metadata.db'), readonly: true });
  try {
    const extracts = db.sqlite.prepare("SELECT key FROM snapshots WHERE key LIKE 'extract-%'").all();
    assert.deepEqual(extracts, [], 'no extract-* snapshot is left');
    const refs = new Map(manifest.layers.map((l) => [ingestRef(l.descriptor), l.descriptor]));
    for (const { ref } of db.sqlite.prepare('SELECT ref FROM ingests').all() as { ref: string }[]) {
      assert.ok(refs.has(ref), `ingest ${ref} is a layer of the image, kept to resume`);
    }
  } finally {
    db.close();
  }
  const committed = await checkCommittedSnapshots(t, root, await layersByChain(image.layoutDir, image.manifests));
  assert.deepEqual(committed.problems, [], 'every committed snapshot holds its whole layer');
  assert.ok(committed.committed.length < manifest.layers.length, 'the image was not fully committed');

  rmSync(filler);
  const second = await Client.open({ root, gc: false, credentials: () => undefined });
  try {
    await second.pull(image.reference);
    await assertPulled(t, second, manifest, await expectedTree(manifest));
    assert.deepEqual(await second.content.listStatuses(), [], 'the resumed ingests were committed');
  } finally {
    await second.close();
  }
});
