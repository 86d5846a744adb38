import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { NamespaceStore } from '../../src/metadata/index.js';
import { countRows, desc, dg, exists, invalid, notFound, precondition, setup } from './helpers.js';

const GOOD_NAMES = ['default', 'k8s.io', 'moby', 'a', 'A', '0', 'a-b_c.d', 'ns1', 'x'.repeat(76), 'a.b.c', 'Mixed-Case_1'];
const BAD_NAMES = [
  '',
  'x'.repeat(77),
  '-a',
  'a-',
  '.a',
  'a.',
  '_a',
  'a__b',
  'a..b',
  'a-.b',
  'a b',
  ' a',
  'a/b',
  'a:b',
  'é',
  'a\u0000',
  'a\n',
];

describe('namespace names', () => {
  for (const name of GOOD_NAMES) {
    test(`accepts ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)}`, (t) => {
      const { db } = setup(t, ['seed']);
      assert.equal(db.namespaces.create(name).name, name);
      assert.equal(db.namespace(name).namespace, name);
    });
  }

  for (const name of BAD_NAMES) {
    test(`rejects ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)} with InvalidArgument`, (t) => {
      const { db } = setup(t, ['seed']);
      invalid(() => db.namespaces.create(name));
      invalid(() => db.namespaces.ensure(name));
      invalid(() => NamespaceStore.validateName(name));
      assert.equal(countRows(db, 'namespaces'), 1);
    });
  }

  test('the limit is 76 characters exactly', () => {
    NamespaceStore.validateName('a'.repeat(76));
    invalid(() => NamespaceStore.validateName('a'.repeat(77)));
  });
});

describe('NamespaceStore', () => {
  test('create returns the namespace with its labels and times', (t) => {
    const { db } = setup(t, ['seed']);
    const before = Date.now();
    const ns = db.namespaces.create('team-a', { owner: 'alice', empty: '' });
    assert.equal(ns.name, 'team-a');
    assert.deepEqual(ns.labels, { owner: 'alice' });
    assert.ok(ns.createdAt instanceof Date);
    assert.ok(ns.createdAt.getTime() >= before - 1000);
    assert.equal(ns.createdAt.getTime(), ns.updatedAt.getTime());
    assert.deepEqual(db.namespaces.get('team-a'), ns);
  });

  test('create of an existing name fails with AlreadyExists and keeps the original', (t) => {
    const { db } = setup(t, ['seed']);
    db.namespaces.create('dup', { v: '1' });
    exists(() => db.namespaces.create('dup', { v: '2' }), /dup/);
    assert.deepEqual(db.namespaces.get('dup').labels, { v: '1' });
  });

  test('create with invalid labels fails with InvalidArgument and creates nothing', (t) => {
    const { db } = setup(t, ['seed']);
    invalid(() => db.namespaces.create('bad-labels', { 'has space': 'x' }));
    assert.equal(db.namespaces.exists('bad-labels'), false);
  });

  test('ensure creates a missing namespace', (t) => {
    const { db } = setup(t, ['seed']);
    const ns = db.namespaces.ensure('new', { a: '1' });
    assert.deepEqual(ns.labels, { a: '1' });
    assert.equal(db.namespaces.exists('new'), true);
  });

  test('ensure returns an existing namespace unchanged', (t) => {
    const { db } = setup(t, ['seed']);
    const created = db.namespaces.create('kept', { a: '1' });
    const ensured = db.namespaces.ensure('kept', { a: '2', b: '3' });
    assert.deepEqual(ensured, created);
  });

  test('exists is false for a missing namespace', (t) => {
    const { db } = setup(t, ['seed']);
    assert.equal(db.namespaces.exists('seed'), true);
    assert.equal(db.namespaces.exists('missing'), false);
  });

  test('get of a missing namespace fails with NotFound', (t) => {
    const { db } = setup(t, ['seed']);
    notFound(() => db.namespaces.get('missing'));
  });

  test('list returns every namespace sorted by name', (t) => {
    const { db } = setup(t, ['seed']);
    db.namespaces.create('zeta');
    db.namespaces.create('alpha');
    assert.deepEqual(
      db.namespaces.list().map((n) => n.name),
      ['alpha', 'seed', 'zeta'],
    );
  });

  test('db.namespace of a missing namespace fails with InvalidArgument', (t) => {
    const { db } = setup(t, ['seed']);
    invalid(() => db.namespace('missing'), /missing/);
  });

  test('db.namespace of a malformed name fails with InvalidArgument', (t) => {
    const { db } = setup(t, ['seed']);
    invalid(() => db.namespace('not valid!'));
    invalid(() => db.namespace(''));
  });

  test('db.namespace fails once the namespace is deleted, even after a cached lookup', (t) => {
    const { db } = setup(t, ['seed']);
    db.namespaces.create('temp');
    assert.equal(db.namespace('temp').namespace, 'temp');
    db.namespaces.delete('temp');
    invalid(() => db.namespace('temp'));
  });

  test('db.namespace returns stores bound to that namespace', (t) => {
    const { db } = setup(t, ['one', 'two']);
    const one = db.namespace('one');
    assert.equal(one.namespace, 'one');
    assert.equal(one.images.namespace, 'one');
    assert.equal(one.content.namespace, 'one');
    assert.equal(one.snapshots.namespace, 'one');
    assert.equal(one.leases.namespace, 'one');
    assert.equal(one.ingests.namespace, 'one');
    assert.equal(db.namespace('two').images.namespace, 'two');
  });

  test('delete removes an empty namespace', (t) => {
    const { db } = setup(t, ['seed']);
    db.namespaces.create('gone');
    db.namespaces.delete('gone');
    notFound(() => db.namespaces.get('gone'));
    assert.deepEqual(
      db.namespaces.list().map((n) => n.name),
      ['seed'],
    );
  });

  test('delete of a missing namespace fails with NotFound', (t) => {
    const { db } = setup(t, ['seed']);
    notFound(() => db.namespaces.delete('missing'));
  });

  const fillers: Record<string, (ns: ReturnType<typeof setup>['ns']) => void> = {
    images: (ns) => ns.images.create({ name: 'img', target: desc('m') }),
    content: (ns) => ns.content.add({ digest: dg('blob'), size: 4 }),
    snapshots: (ns) => ns.snapshots.create({ snapshotter: 'overlayfs', key: 'k', kind: 'active' }),
    leases: (ns) => ns.leases.create({ id: 'lease-1' }),
    ingests: (ns) => ns.ingests.create({ ref: 'ref-1', dir: 'dir1' }),
  };
  for (const [table, fill] of Object.entries(fillers)) {
    test(`delete of a namespace that still has ${table} fails with FailedPrecondition naming them`, (t) => {
      const { db, ns } = setup(t, ['full', 'other']);
      fill(ns);
      precondition(() => db.namespaces.delete('full'), new RegExp(`\\b${table}\\b`));
      assert.equal(db.namespaces.exists('full'), true);
      // Another namespace's objects do not block an empty one.
      db.namespaces.delete('other');
      assert.equal(db.namespaces.exists('other'), false);
    });
  }

  test('a namespace can be deleted once its objects are gone', (t) => {
    const { db, ns } = setup(t, ['full']);
    ns.images.create({ name: 'img', target: desc('m') });
    precondition(() => db.namespaces.delete('full'));
    ns.images.delete('img');
    db.namespaces.delete('full');
    assert.equal(db.namespaces.exists('full'), false);
  });

  describe('updateLabels', () => {
    test('without field paths replaces all labels', (t) => {
      const { db } = setup(t, ['seed']);
      db.namespaces.create('n', { a: '1', b: '2' });
      assert.deepEqual(db.namespaces.updateLabels('n', { c: '3' }).labels, { c: '3' });
      assert.deepEqual(db.namespaces.get('n').labels, { c: '3' });
    });

    test('field path "labels" replaces all labels', (t) => {
      const { db } = setup(t, ['seed']);
      db.namespaces.create('n', { a: '1', b: '2' });
      assert.deepEqual(db.namespaces.updateLabels('n', { c: '3' }, ['labels']).labels, { c: '3' });
    });

    test('field path "labels.<key>" sets one label and keeps the others', (t) => {
      const { db } = setup(t, ['seed']);
      db.namespaces.create('n', { a: '1', b: '2' });
      const updated = db.namespaces.updateLabels('n', { a: 'changed', b: 'ignored', c: 'ignored' }, ['labels.a']);
      assert.deepEqual(updated.labels, { a: 'changed', b: '2' });
    });

    test('field path "labels.<key>" with an empty or missing value deletes that label', (t) => {
      const { db } = setup(t, ['seed']);
      db.namespaces.create('n', { a: '1', b: '2', c: '3' });
      const updated = db.namespaces.updateLabels('n', { a: '' }, ['labels.a', 'labels.b']);
      assert.deepEqual(updated.labels, { c: '3' });
    });

    test('an unknown field path fails with InvalidArgument and changes nothing', (t) => {
      const { db } = setup(t, ['seed']);
      db.namespaces.create('n', { a: '1' });
      invalid(() => db.namespaces.updateLabels('n', { a: '2' }, ['labels.a', 'name']));
      assert.deepEqual(db.namespaces.get('n').labels, { a: '1' });
    });

    test('invalid labels fail with InvalidArgument and change nothing', (t) => {
      const { db } = setup(t, ['seed']);
      db.namespaces.create('n', { a: '1' });
      invalid(() => db.namespaces.updateLabels('n', { a: 'x'.repeat(5000) }));
      assert.deepEqual(db.namespaces.get('n').labels, { a: '1' });
    });

    test('on a missing namespace fails with NotFound', (t) => {
      const { db } = setup(t, ['seed']);
      notFound(() => db.namespaces.updateLabels('missing', { a: '1' }));
    });

    test('keeps createdAt and does not move updatedAt backwards', (t) => {
      const { db } = setup(t, ['seed']);
      const created = db.namespaces.create('n');
      const updated = db.namespaces.updateLabels('n', { a: '1' });
      assert.equal(updated.createdAt.getTime(), created.createdAt.getTime());
      assert.ok(updated.updatedAt.getTime() >= created.updatedAt.getTime());
    });
  });
});
