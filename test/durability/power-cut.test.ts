/**
 * Power cut: what survives when the machine loses power right after a pull returns.
 *
 * Method. The root lives on an ext4 filesystem on a loop device attached with
 * `--direct-io=on`, so the loop driver writes its backing file with O_DIRECT. When the
 * pull returns, the backing file is copied with O_DIRECT reads (`dd iflag=direct`)
 * WITHOUT syncing or unmounting anything. The copy holds exactly the blocks the
 * filesystem had sent to its block device: file data still in the page cache (ext4
 * allocates and writes it back up to 30 s later) and metadata buffers not yet written are
 * not in it — which is what a power cut loses. (The filesystem's own page cache is not the
 * backing file's, so even a buffered read would not see them; O_DIRECT on both sides
 * keeps the host's cache out of the picture too.) The copy is then mounted — ext4 replays
 * its journal as after a crash — and every snapshot its metadata database calls committed
 * is compared with a fresh apply of its layer (test/durability/committed.ts).
 *
 * What this proves: with `syncFs: true`, everything the database records as committed
 * had reached the block device when the pull returned, in an order that ext4's journal
 * recovery turns into a complete tree. What it does not prove: behaviour with a disk
 * whose volatile write cache loses or reorders acknowledged writes (syncfs(2) and
 * SQLite's fsync send cache flushes that a real disk honours; the capture here assumes a
 * device that persists every write it acknowledged), torn sectors, or a power cut in the
 * middle of a pull (the copy is not an atomic snapshot while writes are in flight; process
 * kills mid-pull are covered by the crash rounds in test/durability/crash.test.ts).
 *
 * The same procedure without `syncFs` is the control: it shows that the capture does
 * lose what was not synced (committed snapshots with empty or missing files), so the
 * `syncFs: true` result is not vacuous.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { BuiltImage } from '../../bench/fixtures/index.js';
import { Client } from '../../src/client.js';
import { MetadataDB } from '../../src/metadata/db.js';
import { buildTestImage, expectedTree, plainLayer, testSpec } from '../helpers/images.js';
import { assertPulled } from '../pull/helpers.js';
import { checkCommittedSnapshots, layersByChain, type CommittedReport, type LayersByChain } from './committed.js';
import { makeLoopExt4, mountImage } from './loopfs.js';

const MiB = 1 << 20;
/** Attempts of the control run before concluding that the kernel flushed everything anyway. */
const CONTROL_ATTEMPTS = 3;

interface PowerCut {
  report: CommittedReport;
  /** The root on the mounted copy. */
  copiedRoot: string;
  /** Image records the copied database holds. */
  images: string[];
}

/** Pull onto a fresh loop filesystem, "cut the power" (copy the device's blocks), mount the copy and check it. */
async function pullThenCutPower(t: TestContext, image: BuiltImage, layers: LayersByChain, syncFs: boolean): Promise<PowerCut> {
  const fs = makeLoopExt4(t, { sizeMiB: 128, directIO: true });
  const dio = execFileSync('losetup', ['--list', '--noheadings', '--output', 'DIO', fs.device], { encoding: 'utf8' }).trim();
  assert.equal(dio, '1', `${fs.device} writes its backing file with direct I/O`);
  const root = join(fs.mountPoint, 'root');
  const scratch = mkdtempSync(join(tmpdir(), 'layerpool-power-cut-'));
  const copy = join(scratch, 'copy.img');
  const client = await Client.open({ root, gc: false, credentials: () => undefined });
  try {
    await client.pull(image.reference, { syncFs });
    // The power cut: no sync, no unmount, the client still open.
    execFileSync('dd', [`if=${fs.image}`, `of=${copy}`, 'bs=1M', 'iflag=direct', 'conv=sparse', 'status=none']);
  } finally {
    await client.close();
  }
  await fs.detach();
  const mountPoint = join(scratch, 'mnt');
  mountImage(t, copy, mountPoint);
  // Registered after the mount's own hook: the folder goes once the copy is unmounted.
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  const copiedRoot = join(mountPoint, 'root');
  const db = MetadataDB.open({ path: join(copiedRoot, 'metadata.db'), readonly: true });
  let images: string[];
  try {
    images = (db.sqlite.prepare('SELECT name FROM images').all() as { name: string }[]).map((r) => r.name);
  } finally {
    db.close();
  }
  return { report: await checkCommittedSnapshots(t, copiedRoot, layers), copiedRoot, images };
}

test('power cut right after a syncFs pull: every snapshot the database calls committed is complete; without syncFs the same cut loses data', async (t) => {
  const image = await buildTestImage(t, testSpec('power-cut', [
    plainLayer(60, 3 * MiB, { sizeDistribution: 'mixed', symlinks: 4, hardlinks: 3, xattrs: 2, seed: 'power-cut/0' }),
    plainLayer(40, 2 * MiB, { sizeDistribution: 'mixed', symlinks: 2, hardlinks: 2, whiteouts: 4, opaqueDirs: 1, seed: 'power-cut/1' }),
    plainLayer(30, 2 * MiB, { sizeDistribution: 'small', hardlinks: 1, whiteouts: 2, seed: 'power-cut/2' }),
  ]));
  const manifest = image.manifests[0]!;
  const layers = await layersByChain(image.layoutDir, image.manifests);

  const synced = await pullThenCutPower(t, image, layers, true);
  assert.equal(synced.report.committed.length, manifest.layers.length, 'the copy records every layer as committed');
  assert.deepEqual(synced.report.problems, [], 'every committed snapshot survived the power cut whole');
  assert.equal(synced.images.length, 1, 'the image record survived');
  // Opened normally (start-up repair runs on the copy), the image is there and unpacks to its expected tree.
  const reopened = await Client.open({ root: synced.copiedRoot, gc: false, credentials: () => undefined });
  try {
    await assertPulled(t, reopened, manifest, await expectedTree(manifest));
  } finally {
    await reopened.close();
  }

  const outcomes: string[] = [];
  let lost = false;
  for (let attempt = 1; attempt <= CONTROL_ATTEMPTS && !lost; attempt++) {
    const unsynced = await pullThenCutPower(t, image, layers, false);
    lost = unsynced.report.problems.length > 0;
    outcomes.push(
      `without syncFs, attempt ${attempt}: ${unsynced.report.committed.length} snapshot(s) committed in the copied database, ` +
        `${unsynced.report.problems.length} incomplete${lost ? `: ${unsynced.report.problems[0]?.slice(0, 300)}` : ''}`,
    );
  }
  for (const outcome of outcomes) t.diagnostic(outcome);
  assert.ok(lost, `the capture loses unsynced data (else the syncFs result proves nothing): ${outcomes.join(' | ')}`);
});
