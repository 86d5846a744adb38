/**
 * Every case of the malicious-layer corpus (bench/hostile/corpus.ts) through the whole
 * pull path: Client.pull from an OCI layout, overlay snapshotter, worker pool, commit.
 * For each case: the promised outcome (a typed error, or the layer's snapshot holding
 * what it should), nothing outside the snapshot root created, changed or removed (a
 * sentinel directory next to the root that the layers aim at, the listings of the temp
 * dir and of `/`, the snapshotter's own folder), and after a rejection no extract-*
 * snapshot, no image record, no lease, and a good pull that still works.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BOMB_LIMIT_BYTES,
  diffIDOf,
  expectationOf,
  hostileCases,
  writeLayerImage,
  type ExpectedNode,
  type HostileCase,
  type HostileTarget,
} from '../../bench/hostile/corpus.js';
import { Client } from '../../src/client.js';
import { digestOf } from '../../src/digest.js';
import type { LayerpoolError } from '../../src/errors.js';
import { MediaType } from '../../src/images/mediatypes.js';
import { OCILayout } from '../../src/layout/index.js';
import { snapshotIdsInUse } from '../../src/metadata/snapshots.js';
import type { Snapshotter } from '../../src/snapshots/snapshotter.js';
import { describeTree, tarLayer, type NodeDescription } from '../helpers/layers.js';
import { snapshotKeys } from '../helpers/images.js';

const cases = hostileCases();

interface Corpus {
  base: string;
  root: string;
  target: HostileTarget;
  client: Client;
  snapshotter: Snapshotter;
  refs: Map<string, { hostile: string; good: string }>;
}

let corpus: Corpus;

/** What must never change: the sentinel tree (types, modes, owners, times, contents, xattrs) and two listings. */
function outsideState(c: Pick<Corpus, 'base' | 'target'>): string {
  return JSON.stringify({ outside: describeTree(c.target.outside), base: readdirSync(c.base).sort(), slash: readdirSync('/').sort() });
}

/** The snapshotter's folder holds only snapshot ids it knows, each with only fs/ (and work/). */
function assertSnapshotFolderClean(c: Corpus): void {
  const dir = join(c.root, 'snapshots', 'overlay');
  const known = snapshotIdsInUse(c.client.root.db, 'overlay');
  for (const name of readdirSync(dir)) {
    assert.ok(/^\d+$/.test(name) && known.has(Number(name)), `snapshots/overlay/${name} is a snapshot folder the database knows`);
    for (const child of readdirSync(join(dir, name))) assert.ok(child === 'fs' || child === 'work', `snapshots/overlay/${name}/${child} is fs or work`);
  }
  assert.deepEqual(readdirSync(c.root).filter((n) => !['lock', 'metadata.db', 'metadata.db-wal', 'metadata.db-shm', 'metadata.reserve', 'content', 'snapshots'].includes(n)), []);
}

/** The single layer of `chainID`'s snapshot, described, through a read-only view. */
async function layerTree(c: Corpus, chainID: string): Promise<Record<string, NodeDescription>> {
  const key = `hostile-view-${randomBytes(4).toString('hex')}`;
  const [mount] = await c.snapshotter.view(key, chainID);
  try {
    assert.ok(mount && mount.type === 'bind', 'a one-layer view is a bind of the layer folder');
    return describeTree(mount.source, { allocation: true });
  } finally {
    await c.snapshotter.remove(key);
  }
}

function assertNode(path: string, actual: NodeDescription | undefined, expected: ExpectedNode): void {
  assert.ok(actual, `${path} exists`);
  assert.equal(actual.type, expected.type, `${path} is a ${expected.type}`);
  if (expected.content !== undefined) assert.equal(actual.content, createHash('sha256').update(expected.content).digest('hex'), `${path} content`);
  if (expected.link !== undefined) assert.equal(actual.link, expected.link, `${path} link target`);
  if (expected.mode !== undefined) assert.equal(actual.mode, expected.mode, `${path} mode`);
  if (expected.uid !== undefined) assert.equal(actual.uid, expected.uid, `${path} uid`);
  if (expected.gid !== undefined) assert.equal(actual.gid, expected.gid, `${path} gid`);
  if (expected.rdev !== undefined) assert.equal(actual.rdev, expected.rdev, `${path} device number`);
  if (expected.allocatedAtMost !== undefined) {
    assert.ok((actual.allocated ?? Infinity) <= expected.allocatedAtMost, `${path} takes ${actual.allocated} bytes of disk, at most ${expected.allocatedAtMost}`);
  }
  if (expected.xattrs !== undefined) {
    const hex = Object.fromEntries(Object.entries(expected.xattrs).map(([k, v]) => [k, v.startsWith('hex:') ? v.slice(4) : Buffer.from(v).toString('hex')]));
    assert.deepEqual(actual.xattrs, hex, `${path} xattrs`);
  }
}

function outcomeName(hostile: HostileCase, target: HostileTarget): string {
  const expect = expectationOf(hostile, target);
  return expect.kind === 'reject' ? `rejected with ${expect.code}` : expect.kind === 'safe' ? 'applied, confined to the snapshot' : 'applied to the exact expected tree';
}

describe('malicious-layer corpus through Client.pull (oci-layout source, overlay snapshotter)', () => {
  before(async () => {
    const base = mkdtempSync(join(tmpdir(), 'layerpool-hostile-'));
    const root = join(base, 'root');
    const layoutDir = join(base, 'layout');
    const target = { outside: join(base, 'outside') };
    mkdirSync(join(target.outside, 'keep'), { recursive: true });
    writeFileSync(join(target.outside, 'sentinel'), 'do not touch');
    writeFileSync(join(target.outside, 'keep', 'file'), 'do not touch either');
    await OCILayout.create(layoutDir);
    const refs = new Map<string, { hostile: string; good: string }>();
    for (const hostile of cases) {
      const blob = hostile.build(target);
      const good = tarLayer([{ name: 'good/', type: 'dir' }, { name: `good/${hostile.name}`, content: hostile.name }]);
      refs.set(hostile.name, {
        hostile: await writeLayerImage(layoutDir, hostile.name, { blob, mediaType: hostile.mediaType, diffID: diffIDOf(hostile, blob) }),
        good: await writeLayerImage(layoutDir, `good-${hostile.name}`, { blob: good, mediaType: MediaType.OCILayer, diffID: digestOf(good) }),
      });
    }
    const client = await Client.open({ root, gc: false, snapshotter: 'overlay', credentials: () => undefined });
    corpus = { base, root, target, client, snapshotter: await client.snapshotter('overlay'), refs };
  });

  after(async () => {
    await corpus?.client.close();
    if (corpus) rmSync(corpus.base, { recursive: true, force: true });
  });

  for (const hostile of cases) {
    test(`${hostile.name}: ${outcomeName(hostile, { outside: '/outside' })}, nothing outside the snapshot root touched`, async () => {
      const c = corpus;
      const refs = c.refs.get(hostile.name)!;
      const expect = expectationOf(hostile, c.target);
      const before = outsideState(c);
      let maxApplied = 0;
      const pull = c.client.pull(refs.hostile, {
        ...(hostile.applyOpts ? { applyOpts: hostile.applyOpts } : {}),
        progress: (event) => {
          if (event.type === 'layer' && event.applied !== undefined) maxApplied = Math.max(maxApplied, event.applied);
        },
      });

      if (expect.kind === 'reject') {
        await assert.rejects(pull, (err: LayerpoolError) => {
          assert.equal(err.code, expect.code, `${err.name}: ${err.message}`);
          assert.match(err.message, expect.message);
          return true;
        });
        assert.deepEqual((await snapshotKeys(c.snapshotter)).filter((k) => k.startsWith('extract-')), [], 'no extract-* snapshot is left');
        assert.equal((await c.client.listImages()).some((image) => image.name() === refs.hostile), false, 'no image record');
        assert.deepEqual(c.client.leases.list(), [], 'the pull released its lease');
        if (hostile.applyOpts?.maxUncompressedBytes !== undefined) {
          assert.ok(maxApplied > 0 && maxApplied <= BOMB_LIMIT_BYTES, `the apply stopped at the limit: ${maxApplied} bytes decompressed`);
        }
      } else {
        const { image } = await pull;
        assert.equal(image.name(), refs.hostile);
        const chainID = (await image.rootFS())[0]!;
        const tree = await layerTree(c, chainID);
        if (expect.kind === 'safe') {
          for (const path of expect.exists) assert.ok(tree[path], `${path} exists in the layer (has ${Object.keys(tree).join(', ')})`);
          for (const path of expect.absent) assert.equal(tree[path], undefined, `${path} does not exist in the layer`);
        } else {
          assert.deepEqual(Object.keys(tree).sort(), Object.keys(expect.tree).sort(), 'the layer holds exactly the expected paths');
          for (const [path, node] of Object.entries(expect.tree)) assertNode(path, tree[path], node);
        }
      }
      assert.equal(outsideState(c), before, 'nothing outside the snapshot root changed');
      assertSnapshotFolderClean(c);

      const good = await c.client.pull(refs.good);
      assert.equal(good.unpacked[0]?.layersApplied, 1, 'a good pull after it applies its layer');
      const goodTree = await layerTree(c, (await good.image.rootFS())[0]!);
      assertNode(`good/${hostile.name}`, goodTree[`good/${hostile.name}`], { type: 'file', content: hostile.name });
    });
  }
});
