import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { SnapshotMetadata } from '../../src/metadata/index.js';
import { snapshotIdsInUse, validateSnapshotterName } from '../../src/metadata/snapshots.js';
import { countRows, dg, exists, invalid, notFound, precondition, reopen, setup } from './helpers.js';

const SN = 'overlayfs';

/** Create an active snapshot and commit it under `name`. */
function committed(snapshots: SnapshotMetadata, name: string, parent?: string, snapshotter = SN) {
  const key = `extract-${name}`;
  snapshots.create({ snapshotter, key, kind: 'active', ...(parent === undefined ? {} : { parent }) });
  return snapshots.commit(snapshotter, key, name);
}

describe('SnapshotMetadata.create', () => {
  test('creates an active snapshot without a parent', (t) => {
    const { ns } = setup(t);
    const record = ns.snapshots.create({ snapshotter: SN, key: 'k', kind: 'active', labels: { a: '1' } });
    assert.equal(record.kind, 'active');
    assert.equal(record.key, 'k');
    assert.equal(record.snapshotter, SN);
    assert.equal('parent' in record, false);
    assert.deepEqual(record.labels, { a: '1' });
    assert.ok(Number.isSafeInteger(record.id) && record.id > 0);
    assert.deepEqual(ns.snapshots.get(SN, 'k'), record);
  });

  test('creates a view without a parent', (t) => {
    const { ns } = setup(t);
    const record = ns.snapshots.create({ snapshotter: SN, key: 'v', kind: 'view' });
    assert.equal(record.kind, 'view');
    assert.equal(record.parent, undefined);
  });

  test('creates an active snapshot on a committed parent', (t) => {
    const { ns } = setup(t);
    const base = committed(ns.snapshots, 'base');
    const child = ns.snapshots.create({ snapshotter: SN, key: 'child', parent: 'base', kind: 'active' });
    assert.equal(child.parent, 'base');
    assert.notEqual(child.id, base.id);
    assert.deepEqual(
      ns.snapshots.children(SN, 'base').map((s) => s.key),
      ['child'],
    );
  });

  test('creates a view on a committed parent', (t) => {
    const { ns } = setup(t);
    committed(ns.snapshots, 'base');
    const view = ns.snapshots.create({ snapshotter: SN, key: 'view', parent: 'base', kind: 'view' });
    assert.equal(view.parent, 'base');
    assert.equal(view.kind, 'view');
  });

  test('a missing parent fails with NotFound and creates nothing', (t) => {
    const { db, ns } = setup(t);
    notFound(() => ns.snapshots.create({ snapshotter: SN, key: 'child', parent: 'nope', kind: 'active' }));
    notFound(() => ns.snapshots.create({ snapshotter: SN, key: 'view', parent: 'nope', kind: 'view' }));
    assert.equal(countRows(db, 'snapshots'), 0);
  });

  test('an active parent fails with FailedPrecondition', (t) => {
    const { ns } = setup(t);
    ns.snapshots.create({ snapshotter: SN, key: 'active', kind: 'active' });
    precondition(() => ns.snapshots.create({ snapshotter: SN, key: 'child', parent: 'active', kind: 'active' }), /not committed/);
    notFound(() => ns.snapshots.get(SN, 'child'));
  });

  test('a view parent fails with FailedPrecondition', (t) => {
    const { ns } = setup(t);
    ns.snapshots.create({ snapshotter: SN, key: 'view', kind: 'view' });
    precondition(() => ns.snapshots.create({ snapshotter: SN, key: 'child', parent: 'view', kind: 'view' }));
    notFound(() => ns.snapshots.get(SN, 'child'));
  });

  test('a parent of another snapshotter is not found', (t) => {
    const { ns } = setup(t);
    committed(ns.snapshots, 'base', undefined, 'native');
    notFound(() => ns.snapshots.create({ snapshotter: SN, key: 'child', parent: 'base', kind: 'active' }));
  });

  test('a parent of another namespace is not found', (t) => {
    const { db } = setup(t, ['one', 'two']);
    committed(db.namespace('one').snapshots, 'base');
    notFound(() => db.namespace('two').snapshots.create({ snapshotter: SN, key: 'child', parent: 'base', kind: 'active' }));
  });

  test('an existing key fails with AlreadyExists', (t) => {
    const { ns } = setup(t);
    const first = ns.snapshots.create({ snapshotter: SN, key: 'k', kind: 'active', labels: { v: '1' } });
    exists(() => ns.snapshots.create({ snapshotter: SN, key: 'k', kind: 'view' }));
    assert.deepEqual(ns.snapshots.get(SN, 'k'), first);
  });

  test('the key of a committed snapshot is taken too', (t) => {
    const { ns } = setup(t);
    committed(ns.snapshots, 'base');
    exists(() => ns.snapshots.create({ snapshotter: SN, key: 'base', kind: 'active' }));
  });

  test('the same key in another snapshotter or namespace is a different snapshot', (t) => {
    const { db } = setup(t, ['one', 'two']);
    const a = db.namespace('one').snapshots.create({ snapshotter: SN, key: 'k', kind: 'active' });
    const b = db.namespace('one').snapshots.create({ snapshotter: 'native', key: 'k', kind: 'active' });
    const c = db.namespace('two').snapshots.create({ snapshotter: SN, key: 'k', kind: 'active' });
    assert.equal(new Set([a.id, b.id, c.id]).size, 3);
  });

  test('kind committed (or any other) cannot be created directly', (t) => {
    const { ns } = setup(t);
    for (const kind of ['committed', 'Active', '']) {
      invalid(() => ns.snapshots.create({ snapshotter: SN, key: 'k', kind: kind as 'active' }));
    }
  });

  for (const name of ['', 'Overlay', 'over lay', 'a/b', '../x', '-a', 'a-', 'a..b', 'sn\u0000', 'é']) {
    test(`snapshotter name ${JSON.stringify(name)} fails with InvalidArgument`, (t) => {
      const { db, ns } = setup(t);
      invalid(() => validateSnapshotterName(name));
      invalid(() => ns.snapshots.create({ snapshotter: name, key: 'k', kind: 'active' }));
      assert.equal(countRows(db, 'snapshots'), 0);
    });
  }

  test('snapshotter names of lowercase words joined by . _ - are accepted', (t) => {
    const { ns } = setup(t);
    for (const name of ['overlayfs', 'native', 'my-sn.v2', 'a_b', 'x1']) {
      validateSnapshotterName(name);
      assert.equal(ns.snapshots.create({ snapshotter: name, key: 'k', kind: 'active' }).snapshotter, name);
    }
  });

  for (const [what, key] of [
    ['empty', ''],
    ['with a newline', 'a\nb'],
    ['with a NUL', 'a\u0000'],
    ['longer than 4096 characters', 'k'.repeat(4097)],
  ] as const) {
    test(`a key ${what} fails with InvalidArgument`, (t) => {
      const { db, ns } = setup(t);
      invalid(() => ns.snapshots.create({ snapshotter: SN, key, kind: 'active' }));
      assert.equal(countRows(db, 'snapshots'), 0);
    });
  }

  test('a malformed parent key fails with InvalidArgument', (t) => {
    const { ns } = setup(t);
    invalid(() => ns.snapshots.create({ snapshotter: SN, key: 'k', parent: '', kind: 'active' }));
    invalid(() => ns.snapshots.create({ snapshotter: SN, key: 'k', parent: 'a\nb', kind: 'active' }));
  });

  test('keys may be chain IDs or paths', (t) => {
    const { ns } = setup(t);
    for (const key of [dg('chain'), 'extract-123-sha256:abc', 'default/1/k']) {
      assert.equal(ns.snapshots.create({ snapshotter: SN, key, kind: 'active' }).key, key);
    }
  });

  test('invalid labels fail with InvalidArgument', (t) => {
    const { db, ns } = setup(t);
    invalid(() => ns.snapshots.create({ snapshotter: SN, key: 'k', kind: 'active', labels: { '': 'v' } }));
    assert.equal(countRows(db, 'snapshots'), 0);
  });
});

describe('SnapshotMetadata.commit', () => {
  test('renames key to name, keeps the id and parent, and makes it committed', (t) => {
    const { ns } = setup(t);
    committed(ns.snapshots, 'base');
    const active = ns.snapshots.create({ snapshotter: SN, key: 'extract-1', parent: 'base', kind: 'active', labels: { a: '1' } });
    const result = ns.snapshots.commit(SN, 'extract-1', dg('chain'));
    assert.equal(result.id, active.id);
    assert.equal(result.key, dg('chain'));
    assert.equal(result.kind, 'committed');
    assert.equal(result.parent, 'base');
    assert.deepEqual(result.labels, { a: '1' });
    assert.equal(result.createdAt.getTime(), active.createdAt.getTime());
    notFound(() => ns.snapshots.get(SN, 'extract-1'));
    assert.deepEqual(ns.snapshots.get(SN, dg('chain')), result);
  });

  test('replaces the labels when labels are given', (t) => {
    const { ns } = setup(t);
    ns.snapshots.create({ snapshotter: SN, key: 'k', kind: 'active', labels: { a: '1' } });
    const result = ns.snapshots.commit(SN, 'k', 'name', { 'containerd.io/snapshot.ref': 'name', drop: '' });
    assert.deepEqual(result.labels, { 'containerd.io/snapshot.ref': 'name' });
  });

  test('a committed snapshot can be a parent', (t) => {
    const { ns } = setup(t);
    const base = committed(ns.snapshots, 'base');
    const child = committed(ns.snapshots, 'child', 'base');
    assert.equal(child.parent, 'base');
    assert.ok(child.id > base.id);
    assert.deepEqual(
      ns.snapshots.children(SN, 'base').map((s) => s.id),
      [child.id],
    );
  });

  test('committing a view fails with FailedPrecondition', (t) => {
    const { ns } = setup(t);
    ns.snapshots.create({ snapshotter: SN, key: 'v', kind: 'view' });
    precondition(() => ns.snapshots.commit(SN, 'v', 'name'), /view/);
    assert.equal(ns.snapshots.get(SN, 'v').kind, 'view');
    notFound(() => ns.snapshots.get(SN, 'name'));
  });

  test('committing a committed snapshot fails with FailedPrecondition', (t) => {
    const { ns } = setup(t);
    committed(ns.snapshots, 'base');
    precondition(() => ns.snapshots.commit(SN, 'base', 'again'), /committed/);
    assert.equal(ns.snapshots.get(SN, 'base').kind, 'committed');
  });

  test('committing to an existing name fails with AlreadyExists and leaves the active snapshot', (t) => {
    const { ns } = setup(t);
    const base = committed(ns.snapshots, 'base');
    const active = ns.snapshots.create({ snapshotter: SN, key: 'extract-2', kind: 'active' });
    exists(() => ns.snapshots.commit(SN, 'extract-2', 'base'));
    assert.deepEqual(ns.snapshots.get(SN, 'extract-2'), active);
    assert.deepEqual(ns.snapshots.get(SN, 'base'), base);
  });

  test('committing a missing key fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.snapshots.commit(SN, 'missing', 'name'));
  });

  test('committing to a malformed name fails with InvalidArgument', (t) => {
    const { ns } = setup(t);
    ns.snapshots.create({ snapshotter: SN, key: 'k', kind: 'active' });
    invalid(() => ns.snapshots.commit(SN, 'k', ''));
    invalid(() => ns.snapshots.commit(SN, 'k', 'a\u0000'));
    assert.equal(ns.snapshots.get(SN, 'k').kind, 'active');
  });

  test('committing with invalid labels fails with InvalidArgument', (t) => {
    const { ns } = setup(t);
    ns.snapshots.create({ snapshotter: SN, key: 'k', kind: 'active' });
    invalid(() => ns.snapshots.commit(SN, 'k', 'name', { 'bad key': 'x' }));
    assert.equal(ns.snapshots.get(SN, 'k').kind, 'active');
  });
});

describe('SnapshotMetadata.remove and ids', () => {
  test('remove deletes the record and returns it with its id', (t) => {
    const { ns } = setup(t);
    const created = ns.snapshots.create({ snapshotter: SN, key: 'k', kind: 'active', labels: { a: '1' } });
    const removed = ns.snapshots.remove(SN, 'k');
    assert.deepEqual(removed, created);
    notFound(() => ns.snapshots.get(SN, 'k'));
  });

  test('remove of a missing snapshot fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.snapshots.remove(SN, 'missing'));
  });

  test('remove of a snapshot with children fails with FailedPrecondition and removes nothing', (t) => {
    const { ns } = setup(t);
    committed(ns.snapshots, 'base');
    ns.snapshots.create({ snapshotter: SN, key: 'child', parent: 'base', kind: 'active' });
    precondition(() => ns.snapshots.remove(SN, 'base'), /children/);
    assert.equal(ns.snapshots.get(SN, 'base').kind, 'committed');
    assert.equal(ns.snapshots.get(SN, 'child').parent, 'base');
  });

  test('a view child also blocks removal of its parent', (t) => {
    const { ns } = setup(t);
    committed(ns.snapshots, 'base');
    ns.snapshots.create({ snapshotter: SN, key: 'view', parent: 'base', kind: 'view' });
    precondition(() => ns.snapshots.remove(SN, 'base'));
  });

  test('a parent can be removed once its children are gone', (t) => {
    const { ns } = setup(t);
    committed(ns.snapshots, 'base');
    committed(ns.snapshots, 'mid', 'base');
    ns.snapshots.create({ snapshotter: SN, key: 'top', parent: 'mid', kind: 'active' });
    precondition(() => ns.snapshots.remove(SN, 'mid'));
    ns.snapshots.remove(SN, 'top');
    ns.snapshots.remove(SN, 'mid');
    ns.snapshots.remove(SN, 'base');
    assert.deepEqual(ns.snapshots.list(SN), []);
  });

  test('children of a same-named snapshot in another snapshotter do not block removal', (t) => {
    const { ns } = setup(t);
    committed(ns.snapshots, 'base');
    committed(ns.snapshots, 'base', undefined, 'native');
    ns.snapshots.create({ snapshotter: 'native', key: 'child', parent: 'base', kind: 'active' });
    ns.snapshots.remove(SN, 'base');
    assert.equal(ns.snapshots.get('native', 'base').kind, 'committed');
  });

  test('ids are never reused after removal', (t) => {
    const { ns } = setup(t);
    const first = ns.snapshots.create({ snapshotter: SN, key: 'a', kind: 'active' });
    ns.snapshots.remove(SN, 'a');
    // Without AUTOINCREMENT SQLite would hand out the highest id again.
    const second = ns.snapshots.create({ snapshotter: SN, key: 'b', kind: 'active' });
    assert.ok(second.id > first.id, `id ${second.id} reused (first was ${first.id})`);
    ns.snapshots.remove(SN, 'b');
    const third = ns.snapshots.create({ snapshotter: SN, key: 'a', kind: 'active' });
    assert.ok(third.id > second.id);
  });

  test('ids are never reused after removal across a reopen', (t) => {
    const { db, ns, path } = setup(t);
    const first = ns.snapshots.create({ snapshotter: SN, key: 'a', kind: 'active' });
    ns.snapshots.remove(SN, 'a');
    db.close();
    const again = reopen(t, path).namespace('default');
    const second = again.snapshots.create({ snapshotter: SN, key: 'a', kind: 'active' });
    assert.ok(second.id > first.id);
  });

  test('ids are unique across namespaces and snapshotters', (t) => {
    const { db } = setup(t, ['one', 'two']);
    const ids = [
      db.namespace('one').snapshots.create({ snapshotter: SN, key: 'k', kind: 'active' }).id,
      db.namespace('two').snapshots.create({ snapshotter: SN, key: 'k', kind: 'active' }).id,
      db.namespace('one').snapshots.create({ snapshotter: 'native', key: 'k', kind: 'active' }).id,
    ];
    assert.equal(new Set(ids).size, 3);
  });

  test('snapshotIdsInUse lists the ids of one snapshotter in every namespace', (t) => {
    const { db } = setup(t, ['one', 'two']);
    const a = db.namespace('one').snapshots.create({ snapshotter: SN, key: 'a', kind: 'active' });
    const b = db.namespace('two').snapshots.create({ snapshotter: SN, key: 'b', kind: 'active' });
    const c = db.namespace('one').snapshots.create({ snapshotter: 'native', key: 'c', kind: 'active' });
    assert.deepEqual(snapshotIdsInUse(db, SN), new Set([a.id, b.id]));
    assert.deepEqual(snapshotIdsInUse(db, 'native'), new Set([c.id]));
    assert.deepEqual(snapshotIdsInUse(db, 'other'), new Set());
    db.namespace('one').snapshots.remove(SN, 'a');
    assert.deepEqual(snapshotIdsInUse(db, SN), new Set([b.id]));
  });

  test('snapshotIdsInUse keeps the id of a snapshot through its commit', (t) => {
    const { ns, db } = setup(t);
    const active = ns.snapshots.create({ snapshotter: SN, key: 'k', kind: 'active' });
    ns.snapshots.commit(SN, 'k', 'name');
    assert.deepEqual(snapshotIdsInUse(db, SN), new Set([active.id]));
  });
});

describe('SnapshotMetadata.list, children and update', () => {
  test('list returns one snapshotter’s snapshots, oldest first', (t) => {
    const { ns } = setup(t);
    ns.snapshots.create({ snapshotter: SN, key: 'z', kind: 'active' });
    ns.snapshots.create({ snapshotter: SN, key: 'a', kind: 'view' });
    ns.snapshots.create({ snapshotter: 'native', key: 'n', kind: 'active' });
    assert.deepEqual(
      ns.snapshots.list(SN).map((s) => s.key),
      ['z', 'a'],
    );
    assert.deepEqual(
      ns.snapshots.list('native').map((s) => s.key),
      ['n'],
    );
  });

  test('list is scoped to the namespace', (t) => {
    const { db } = setup(t, ['one', 'two']);
    db.namespace('one').snapshots.create({ snapshotter: SN, key: 'k', kind: 'active' });
    assert.deepEqual(db.namespace('two').snapshots.list(SN), []);
  });

  test('children lists direct children only', (t) => {
    const { ns } = setup(t);
    committed(ns.snapshots, 'base');
    committed(ns.snapshots, 'mid', 'base');
    ns.snapshots.create({ snapshotter: SN, key: 'top', parent: 'mid', kind: 'active' });
    ns.snapshots.create({ snapshotter: SN, key: 'view', parent: 'base', kind: 'view' });
    assert.deepEqual(
      ns.snapshots.children(SN, 'base').map((s) => s.key),
      ['mid', 'view'],
    );
    assert.deepEqual(
      ns.snapshots.children(SN, 'mid').map((s) => s.key),
      ['top'],
    );
    assert.deepEqual(ns.snapshots.children(SN, 'top'), []);
  });

  test('update replaces labels, or sets single labels by field path', (t) => {
    const { ns } = setup(t);
    const created = ns.snapshots.create({ snapshotter: SN, key: 'k', kind: 'active', labels: { a: '1', b: '2' } });
    assert.deepEqual(ns.snapshots.update(SN, 'k', { c: '3' }).labels, { c: '3' });
    const updated = ns.snapshots.update(SN, 'k', { d: '4', c: '' }, ['labels.d', 'labels.c']);
    assert.deepEqual(updated.labels, { d: '4' });
    assert.equal(updated.id, created.id);
    assert.equal(updated.kind, 'active');
  });

  test('update of a field other than labels fails with InvalidArgument', (t) => {
    const { ns } = setup(t);
    ns.snapshots.create({ snapshotter: SN, key: 'k', kind: 'active', labels: { a: '1' } });
    invalid(() => ns.snapshots.update(SN, 'k', {}, ['kind']));
    assert.deepEqual(ns.snapshots.get(SN, 'k').labels, { a: '1' });
  });

  test('update of a missing snapshot fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.snapshots.update(SN, 'missing', {}));
  });

  test('get of a missing snapshot fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.snapshots.get(SN, 'missing'));
  });
});
