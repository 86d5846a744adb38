/**
 * What must hold after any mix of pulls, deletions, leases, GC runs and crashes:
 *
 * Images (through an open Client): every image record's manifest and config are in the
 * content store, its top chain ID is a committed snapshot, and a view of the chain holds
 * exactly the fixture's expected tree. (Layer blobs may be gone: discardContent lets GC
 * free them once the snapshots exist, and a later pull does not fetch them again.)
 *
 * Disk (on a closed root, read-only: opening it would run start-up repair and hide what
 * is wrong): every blob file has a content row and every row its file, and every blob
 * hashes to its name; every ingest folder has a row and every row its folder; every
 * folder under root/snapshots/<sn>/ is a snapshot id with a row (no `new-*`, no
 * `*-removing`) and every row has its folder.
 */
import { readFile, readdir, mkdtemp, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Client } from '../../src/client.js';
import { BlobFiles } from '../../src/content/blobs.js';
import { hashFile } from '../../src/content/writer.js';
import { chainID } from '../../src/digest.js';
import { withLease } from '../../src/leases/manager.js';
import { mountAll, unmount } from '../../src/snapshots/mount.js';
import type { Mount, Snapshotter } from '../../src/snapshots/snapshotter.js';
import { diffTrees, readTree, type ExpectedTree } from '../fixtures/index.js';

/** A single read-only bind is a folder to read in place; anything else must be mounted. */
function bindSource(mounts: readonly Mount[]): string | undefined {
  const [only] = mounts;
  return mounts.length === 1 && only !== undefined && (only.type === 'bind' || only.options.includes('rbind') || only.options.includes('bind')) ? only.source : undefined;
}

/** Differences between the tree of snapshot `chain` and `expected` (through a temporary view). */
async function compareTree(snapshotter: Snapshotter, chain: string, expected: ExpectedTree, scratchDir: string, viewKey: string): Promise<string[]> {
  const mounts = await snapshotter.view(viewKey, chain);
  try {
    const source = bindSource(mounts);
    if (source !== undefined) return diffTrees(expected.entries, await readTree(source), 10);
    const target = await mkdtemp(join(scratchDir, 'view-'));
    await mountAll(mounts, target);
    try {
      return diffTrees(expected.entries, await readTree(target), 10);
    } finally {
      await unmount(target);
      await rm(target, { recursive: true, force: true });
    }
  } finally {
    await snapshotter.remove(viewKey);
  }
}

export interface ImageCheckOptions {
  /** Image record name → the fixture's expected tree file. */
  expectedTrees: ReadonlyMap<string, string>;
  /** Where temporary mount points go. */
  scratchDir: string;
}

/** Violations of the image invariants, one line each; empty when all hold. */
export async function checkImages(client: Client, options: ImageCheckOptions): Promise<string[]> {
  const violations: string[] = [];
  const trees = new Map<string, ExpectedTree>();
  const snapshotter = await client.snapshotter();
  let views = 0;
  for (const image of await client.listImages()) {
    const name = image.name();
    const treePath = options.expectedTrees.get(name);
    if (treePath === undefined) {
      violations.push(`image ${name}: a record nobody pulled`);
      continue;
    }
    try {
      const diffIDs = await image.rootFS();
      if (!(await image.isUnpacked())) {
        violations.push(`image ${name}: top chain ID ${chainID(diffIDs)} is not a committed ${snapshotter.name} snapshot`);
        continue;
      }
      let expected = trees.get(treePath);
      if (expected === undefined) {
        expected = JSON.parse(await readFile(treePath, 'utf8')) as ExpectedTree;
        trees.set(treePath, expected);
      }
      const viewKey = `stress-check-${process.pid}-${views++}`;
      // The view is garbage to GC (nothing references it): a lease holds it while it is read.
      const diff = await withLease(client.leases, async (lease) => {
        client.leases.addResource(lease, { type: `snapshots/${snapshotter.name}`, id: viewKey });
        return compareTree(snapshotter, chainID(diffIDs), expected, options.scratchDir, viewKey);
      });
      if (diff.length > 0) violations.push(`image ${name}: unpacked tree differs from the fixture: ${diff.join('; ')}`);
    } catch (err) {
      violations.push(`image ${name}: ${(err as Error).message}`);
    }
  }
  return violations;
}

export interface DiskReport {
  violations: string[];
  blobs: number;
  snapshots: number;
  /** Ingests left (resumable downloads of failed or killed pulls). */
  ingests: number;
}

async function listOrEmpty(dir: string): Promise<string[]> {
  return readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
}

async function digestOfFile(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    return (await hashFile(handle, (await handle.stat()).size, 'sha256')).digest();
  } finally {
    await handle.close();
  }
}

/** Files against rows of a root no process has open. */
export async function checkDisk(rootDir: string): Promise<DiskReport> {
  const violations: string[] = [];
  const db = new Database(join(rootDir, 'metadata.db'), { readonly: true, fileMustExist: true });
  try {
    const files = new BlobFiles(join(rootDir, 'content'));
    const rows = new Set((db.prepare('SELECT DISTINCT digest FROM content').all() as { digest: string }[]).map((r) => r.digest));
    const blobs = new Set(await files.listBlobs());
    for (const digest of blobs) if (!rows.has(digest)) violations.push(`blob file ${digest} has no content row`);
    for (const digest of blobs) {
      const actual = await digestOfFile(files.blobPath(digest));
      if (actual !== digest) violations.push(`blob file ${digest} hashes to ${actual}`);
    }
    for (const digest of rows) if (!blobs.has(digest)) violations.push(`content row ${digest} has no blob file`);

    const ingestRows = db.prepare('SELECT namespace, ref, dir FROM ingests').all() as { namespace: string; ref: string; dir: string }[];
    const ingestDirs = new Set(await listOrEmpty(files.ingestDir));
    for (const row of ingestRows) if (!ingestDirs.has(row.dir)) violations.push(`ingest ${row.namespace}/${row.ref} has no folder`);
    const known = new Set(ingestRows.map((r) => r.dir));
    for (const dir of ingestDirs) if (!known.has(dir)) violations.push(`ingest folder ${dir} has no row`);

    const snapshotRows = db.prepare('SELECT snapshotter, id, key FROM snapshots').all() as { snapshotter: string; id: number; key: string }[];
    const snapshotsDir = join(rootDir, 'snapshots');
    const snapshotters = new Set([...(await listOrEmpty(snapshotsDir)), ...snapshotRows.map((r) => r.snapshotter)]);
    for (const name of snapshotters) {
      const ids = new Map(snapshotRows.filter((r) => r.snapshotter === name).map((r) => [String(r.id), r.key]));
      const folders = new Set(await listOrEmpty(join(snapshotsDir, name)));
      for (const folder of folders) {
        if (folder.startsWith('new-')) violations.push(`snapshots/${name}/${folder}: a staging folder left behind`);
        else if (folder.endsWith('-removing')) violations.push(`snapshots/${name}/${folder}: a removal left behind`);
        else if (/^\d+$/.test(folder) && !ids.has(folder)) violations.push(`snapshots/${name}/${folder}: a snapshot folder without a row`);
      }
      for (const [id, key] of ids) if (!folders.has(id)) violations.push(`snapshot ${name}/${key} (id ${id}) has no folder`);
    }
    return { violations, blobs: blobs.size, snapshots: snapshotRows.length, ingests: ingestRows.length };
  } finally {
    db.close();
  }
}
