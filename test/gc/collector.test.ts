import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { digestOf } from '../../src/digest.js';
import { Collector } from '../../src/gc/collector.js';
import { LeaseManager } from '../../src/leases/manager.js';
import { Label } from '../../src/metadata/labels.js';
import type { Root } from '../../src/root.js';
import { openTestRoot } from '../helpers/root.js';

async function blob(root: Root, text: string, labels: Record<string, string> = {}, ns = 'default'): Promise<string> {
  const store = root.content.namespace(ns);
  const writer = await store.writer({ ref: `w-${text}`, labels });
  await writer.write(Buffer.from(text));
  return (await writer.commit()).digest;
}

const has = (root: Root, digest: string, ns = 'default') => root.db.namespace(ns).content.has(digest);
const fileExists = (root: Root, digest: string) => existsSync(root.content.files.blobPath(digest));

function snapshot(root: Root, key: string, parent?: string, labels: Record<string, string> = {}, ns = 'default') {
  const snaps = root.db.namespace(ns).snapshots;
  const active = `active-${key}`;
  snaps.create({ snapshotter: 'overlay', key: active, kind: 'active', labels, ...(parent === undefined ? {} : { parent }) });
  return snaps.commit('overlay', active, key);
}

const hasSnapshot = (root: Root, key: string, ns = 'default') =>
  root.db.namespace(ns).snapshots.list('overlay').some((s) => s.key === key);

function image(root: Root, name: string, target: string, labels: Record<string, string> = {}, ns = 'default') {
  root.db.namespace(ns).images.create({
    name,
    target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: target, size: 1 },
    labels,
  });
}

describe('gc roots', () => {
  test('unreferenced content is removed, row and file', async (t) => {
    const root = await openTestRoot(t);
    const orphan = await blob(root, 'orphan');
    const stats = await new Collector({ root }).collect();
    assert.equal(has(root, orphan), false);
    assert.equal(fileExists(root, orphan), false);
    assert.equal(stats.removed.content, 1);
    assert.equal(stats.bytesFreed, 'orphan'.length);
  });

  test('an image keeps its target', async (t) => {
    const root = await openTestRoot(t);
    const manifest = await blob(root, 'manifest');
    image(root, 'img', manifest);
    await new Collector({ root }).collect();
    assert.equal(has(root, manifest), true);
    assert.equal(fileExists(root, manifest), true);
  });

  test('an image label reference keeps what it names', async (t) => {
    const root = await openTestRoot(t);
    const extra = await blob(root, 'extra');
    const target = await blob(root, 'target');
    image(root, 'img', target, { 'containerd.io/gc.ref.content.sbom': extra });
    await new Collector({ root }).collect();
    assert.equal(has(root, extra), true);
  });

  test('content labelled gc.root is kept without any reference', async (t) => {
    const root = await openTestRoot(t);
    const rooted = await blob(root, 'rooted', { [Label.gcRoot]: 'yes' });
    await new Collector({ root }).collect();
    assert.equal(has(root, rooted), true);
  });

  test('a snapshot labelled gc.root is kept, with its parents', async (t) => {
    const root = await openTestRoot(t);
    snapshot(root, 'base');
    snapshot(root, 'top', 'base', { [Label.gcRoot]: 'true' });
    snapshot(root, 'loose');
    await new Collector({ root }).collect();
    assert.equal(hasSnapshot(root, 'top'), true);
    assert.equal(hasSnapshot(root, 'base'), true);
    assert.equal(hasSnapshot(root, 'loose'), false);
  });

  test('an unexpired lease keeps its content and what that references', async (t) => {
    const root = await openTestRoot(t);
    const layer = await blob(root, 'layer');
    const manifest = await blob(root, 'manifest', { 'containerd.io/gc.ref.content.l.0': layer });
    const leases = new LeaseManager({ db: root.db, namespace: 'default' });
    leases.create({ id: 'pull', expireInMs: 60_000 });
    leases.addResource('pull', { type: 'content', id: manifest });
    await new Collector({ root }).collect();
    assert.equal(has(root, manifest), true);
    assert.equal(has(root, layer), true);
  });

  test('an expired lease protects nothing and is itself deleted', async (t) => {
    const root = await openTestRoot(t);
    const held = await blob(root, 'held');
    const leases = new LeaseManager({ db: root.db, namespace: 'default' });
    leases.create({ id: 'old', labels: { [Label.gcExpire]: '2001-01-01T00:00:00Z' } });
    leases.addResource('old', { type: 'content', id: held });
    const stats = await new Collector({ root }).collect();
    assert.equal(has(root, held), false);
    assert.deepEqual(leases.list().map((l) => l.id), []);
    assert.equal(stats.removed.leases, 1);
  });

  test('a lease expires by the clock: protected before, collected after', async (t) => {
    const root = await openTestRoot(t);
    const held = await blob(root, 'held');
    const leases = new LeaseManager({ db: root.db, namespace: 'default' });
    leases.create({ id: 'soon', expireInMs: 60_000 });
    leases.addResource('soon', { type: 'content', id: held });
    await new Collector({ root }).collect();
    assert.equal(has(root, held), true);
    await new Collector({ root, now: () => new Date(Date.now() + 120_000) }).collect();
    assert.equal(has(root, held), false);
  });

  test('an invalid gc.expire value is ignored: the lease still protects', async (t) => {
    const root = await openTestRoot(t);
    const held = await blob(root, 'held');
    const leases = new LeaseManager({ db: root.db, namespace: 'default' });
    leases.create({ id: 'bad-expiry', labels: { [Label.gcExpire]: 'next tuesday' } });
    leases.addResource('bad-expiry', { type: 'content', id: held });
    await new Collector({ root }).collect();
    assert.equal(has(root, held), true);
    assert.equal(leases.list().length, 1);
  });

  test('a flat lease keeps its resources but not what they reference', async (t) => {
    const root = await openTestRoot(t);
    const layer = await blob(root, 'layer');
    const manifest = await blob(root, 'manifest', { 'containerd.io/gc.ref.content.l.0': layer });
    const leases = new LeaseManager({ db: root.db, namespace: 'default' });
    leases.create({ id: 'flat', flat: true });
    leases.addResource('flat', { type: 'content', id: manifest });
    await new Collector({ root }).collect();
    assert.equal(has(root, manifest), true);
    assert.equal(has(root, layer), false);
  });

  test('a flat lease on a snapshot still keeps its parents (a snapshot needs them)', async (t) => {
    const root = await openTestRoot(t);
    const config = await blob(root, 'config');
    snapshot(root, 'base');
    snapshot(root, 'top', 'base', { 'containerd.io/gc.ref.content': config });
    const leases = new LeaseManager({ db: root.db, namespace: 'default' });
    leases.create({ id: 'flat', flat: true });
    leases.addResource('flat', { type: 'snapshots/overlay', id: 'top' });
    await new Collector({ root }).collect();
    assert.equal(hasSnapshot(root, 'top'), true);
    assert.equal(hasSnapshot(root, 'base'), true);
    assert.equal(has(root, config), false, 'labels are not followed under a flat lease');
  });

  test('a leased ingest is kept; an unleased ingest without expiry is removed with its folder', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const leases = new LeaseManager({ db: root.db, namespace: 'default' });
    leases.create({ id: 'pull' });
    for (const [ref, lease] of [['kept', 'pull'], ['dropped', undefined]] as const) {
      const w = await store.writer({ ref, ...(lease ? { lease } : {}) });
      await w.write(Buffer.from('partial'));
      await w.close();
    }
    const droppedDir = root.db.namespace('default').ingests.get('dropped').dir;
    const stats = await new Collector({ root }).collect();
    assert.equal((await store.status('kept')).offset, 7);
    await assert.rejects(store.status('dropped'));
    assert.equal(existsSync(join(root.content.files.ingestDir, droppedDir)), false);
    assert.equal(stats.removed.ingests, 1);
  });

  test('an ingest with a future expiry is a root; past its expiry it goes', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const w = await store.writer({ ref: 'timed', expiresAt: new Date(Date.now() + 60_000) });
    await w.close();
    await new Collector({ root }).collect();
    assert.equal((await store.status('timed')).ref, 'timed');
    await new Collector({ root, now: () => new Date(Date.now() + 120_000) }).collect();
    await assert.rejects(store.status('timed'));
  });

  test('an ingest a writer has open is never collected', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const writer = await store.writer({ ref: 'open', expected: digestOf('abc') });
    await writer.write(Buffer.from('ab'));
    await new Collector({ root }).collect();
    await writer.write(Buffer.from('c'));
    await writer.commit();
    assert.equal(has(root, digestOf('abc')), true, 'the write survived the collection and committed');
  });

  test("an ingest's expected digest keeps that content (an edge)", async (t) => {
    const root = await openTestRoot(t);
    const existing = await blob(root, 'expected');
    const store = root.content.namespace('default');
    const writer = await store.writer({ ref: 'again', expiresAt: new Date(Date.now() + 60_000) });
    await writer.close();
    root.db.namespace('default').ingests.setExpectation('again', existing, undefined);
    await new Collector({ root }).collect();
    assert.equal(has(root, existing), true);
  });
});

describe('gc edges', () => {
  for (const key of ['containerd.io/gc.ref.content', 'containerd.io/gc.ref.content.l.0', 'containerd.io/gc.ref.content/config']) {
    test(`${key} is a content reference`, async (t) => {
      const root = await openTestRoot(t);
      const child = await blob(root, 'child');
      const parent = await blob(root, 'parent', { [key]: child });
      image(root, 'img', parent);
      await new Collector({ root }).collect();
      assert.equal(has(root, child), true);
    });
  }

  test('a key that only shares the prefix (gc.ref.contentX) is not a reference', async (t) => {
    const root = await openTestRoot(t);
    const child = await blob(root, 'child');
    const parent = await blob(root, 'parent', { 'containerd.io/gc.ref.contentX': child });
    image(root, 'img', parent);
    await new Collector({ root }).collect();
    assert.equal(has(root, child), false);
  });

  for (const key of ['containerd.io/gc.ref.snapshot.overlay', 'containerd.io/gc.ref.snapshot.overlay/layer-top']) {
    test(`${key} keeps the snapshot and its parent chain`, async (t) => {
      const root = await openTestRoot(t);
      snapshot(root, 'c1');
      snapshot(root, 'c2', 'c1');
      snapshot(root, 'c3', 'c2');
      const config = await blob(root, 'config', { [key]: 'c3' });
      image(root, 'img', config);
      await new Collector({ root }).collect();
      assert.deepEqual(['c1', 'c2', 'c3'].map((k) => hasSnapshot(root, k)), [true, true, true]);
    });
  }

  test('a snapshot reference names a snapshotter: another snapshotter is not kept', async (t) => {
    const root = await openTestRoot(t);
    const snaps = root.db.namespace('default').snapshots;
    snaps.create({ snapshotter: 'native', key: 'a', kind: 'active' });
    snaps.commit('native', 'a', 'c3');
    const config = await blob(root, 'config', { 'containerd.io/gc.ref.snapshot.overlay': 'c3' });
    image(root, 'img', config);
    await new Collector({ root }).collect();
    assert.deepEqual(snaps.list('native'), []);
  });

  test('a snapshot label can reference content', async (t) => {
    const root = await openTestRoot(t);
    const data = await blob(root, 'data');
    snapshot(root, 'top', undefined, { [Label.gcRoot]: '1', 'containerd.io/gc.ref.content': data });
    await new Collector({ root }).collect();
    assert.equal(has(root, data), true);
  });

  test('references do not cross namespaces', async (t) => {
    const root = await openTestRoot(t);
    const other = await blob(root, 'shared name', {}, 'other');
    const parent = await blob(root, 'parent', { 'containerd.io/gc.ref.content': other });
    image(root, 'img', parent);
    await new Collector({ root }).collect();
    assert.equal(has(root, other, 'other'), false);
  });

  test('a blob kept in one namespace keeps its file when another namespace drops it', async (t) => {
    const root = await openTestRoot(t);
    const digest = await blob(root, 'both', {}, 'default');
    await blob(root, 'both', {}, 'other');
    image(root, 'img', digest, {}, 'other');
    await new Collector({ root }).collect();
    assert.equal(has(root, digest, 'default'), false);
    assert.equal(has(root, digest, 'other'), true);
    assert.equal(fileExists(root, digest), true);
  });
});

describe('gc of images', () => {
  test('deleting an image frees exactly what only it used', async (t) => {
    const root = await openTestRoot(t);
    const base = await blob(root, 'base layer');
    const onlyA = await blob(root, 'layer only in a');
    const onlyB = await blob(root, 'layer only in b');
    const manifestA = await blob(root, 'manifest a', { 'containerd.io/gc.ref.content.l.0': base, 'containerd.io/gc.ref.content.l.1': onlyA });
    const manifestB = await blob(root, 'manifest b', { 'containerd.io/gc.ref.content.l.0': base, 'containerd.io/gc.ref.content.l.1': onlyB });
    snapshot(root, 'chain-base');
    snapshot(root, 'chain-a', 'chain-base');
    snapshot(root, 'chain-b', 'chain-base');
    const configA = await blob(root, 'config a', { 'containerd.io/gc.ref.snapshot.overlay': 'chain-a' });
    const configB = await blob(root, 'config b', { 'containerd.io/gc.ref.snapshot.overlay': 'chain-b' });
    root.db.namespace('default').content.update({ digest: manifestA, labels: { 'containerd.io/gc.ref.content.config': configA } }, ['labels.containerd.io/gc.ref.content.config']);
    root.db.namespace('default').content.update({ digest: manifestB, labels: { 'containerd.io/gc.ref.content.config': configB } }, ['labels.containerd.io/gc.ref.content.config']);
    image(root, 'a', manifestA);
    image(root, 'b', manifestB);

    let stats = await new Collector({ root }).collect();
    assert.equal(stats.removed.content + stats.removed.snapshots, 0, 'both images complete: nothing to collect');

    root.db.namespace('default').images.delete('a');
    stats = await new Collector({ root }).collect();
    assert.deepEqual([has(root, manifestA), has(root, configA), has(root, onlyA)], [false, false, false]);
    assert.deepEqual([has(root, manifestB), has(root, configB), has(root, onlyB), has(root, base)], [true, true, true, true]);
    assert.deepEqual(['chain-base', 'chain-a', 'chain-b'].map((k) => hasSnapshot(root, k)), [true, false, true]);
    assert.deepEqual(stats.removed, { content: 3, snapshots: 1, ingests: 0, leases: 0, images: 0 });
  });

  test('an image whose gc.expire has passed is removed with what it kept', async (t) => {
    const root = await openTestRoot(t);
    const target = await blob(root, 'target');
    image(root, 'temporary', target, { [Label.gcExpire]: '2000-01-01T00:00:00Z' });
    const stats = await new Collector({ root }).collect();
    assert.equal(stats.removed.images, 1);
    assert.equal(has(root, target), false);
  });
});

describe('gc runs', () => {
  test('leases.delete({sync: true}) has collected when it returns', async (t) => {
    const root = await openTestRoot(t);
    const collector = new Collector({ root });
    const leases = new LeaseManager({ db: root.db, namespace: 'default', gc: collector });
    leases.create({ id: 'pull' });
    const store = root.content.namespace('default');
    const w = await store.writer({ ref: 'x', lease: 'pull' });
    await w.write(Buffer.from('leased only'));
    const digest = (await w.commit()).digest;
    await leases.delete('pull', { sync: true });
    assert.equal(has(root, digest), false);
    assert.equal(readdirSync(join(root.content.files.blobsDir, 'sha256')).length, 0);
  });

  test('concurrent collections run one at a time and all complete', async (t) => {
    const root = await openTestRoot(t);
    for (let i = 0; i < 20; i++) await blob(root, `b${i}`);
    const collector = new Collector({ root });
    const results = await Promise.all([collector.collect(), collector.collect(), collector.collect()]);
    assert.equal(results.reduce((n, s) => n + s.removed.content, 0), 20, 'each blob removed exactly once');
  });
});
