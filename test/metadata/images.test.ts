import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Descriptor } from '../../src/descriptor.js';
import { countRows, desc, dg, exists, INDEX, invalid, MANIFEST, notFound, setup } from './helpers.js';

const NAME = 'docker.io/library/alpine:3.19';

describe('ImageStore', () => {
  test('create stores name, target and labels; get returns them', (t) => {
    const { ns } = setup(t);
    const target: Descriptor = {
      ...desc('index', INDEX),
      annotations: { 'org.opencontainers.image.ref.name': '3.19' },
      platform: { architecture: 'amd64', os: 'linux' },
    };
    const created = ns.images.create({ name: NAME, target, labels: { 'containerd.io/gc.root': 'true' } });
    assert.equal(created.name, NAME);
    assert.deepEqual(created.target, target);
    assert.deepEqual(created.labels, { 'containerd.io/gc.root': 'true' });
    assert.ok(created.createdAt instanceof Date && !Number.isNaN(created.createdAt.getTime()));
    assert.equal(created.createdAt.getTime(), created.updatedAt.getTime());
    assert.deepEqual(ns.images.get(NAME), created);
  });

  test('create without labels stores an empty label set', (t) => {
    const { ns } = setup(t);
    assert.deepEqual(ns.images.create({ name: NAME, target: desc('m') }).labels, {});
  });

  test('names may hold registry, path, tag and digest punctuation', (t) => {
    const { ns } = setup(t);
    for (const name of ['localhost:5000/a/b/c:tag', `docker.io/library/alpine@${dg('x')}`, 'UPPER_case-name', '牛']) {
      assert.equal(ns.images.create({ name, target: desc(name) }).name, name);
    }
  });

  for (const [what, name] of [
    ['empty', ''],
    ['with a newline', 'a\nb'],
    ['with a NUL', 'a\u0000b'],
    ['with DEL', 'a\u007f'],
    ['longer than 4096 characters', 'a'.repeat(4097)],
  ] as const) {
    test(`create with a name ${what} fails with InvalidArgument`, (t) => {
      const { db, ns } = setup(t);
      invalid(() => ns.images.create({ name, target: desc('m') }));
      assert.equal(countRows(db, 'images'), 0);
    });
  }

  const BAD_TARGETS: [string, unknown][] = [
    ['a malformed digest', { mediaType: MANIFEST, digest: 'sha256:xyz', size: 1 }],
    ['an uppercase digest', { mediaType: MANIFEST, digest: dg('m').toUpperCase(), size: 1 }],
    ['a digest without algorithm', { mediaType: MANIFEST, digest: dg('m').slice(7), size: 1 }],
    ['an unsupported digest algorithm', { mediaType: MANIFEST, digest: `md5:${'a'.repeat(32)}`, size: 1 }],
    ['a missing digest', { mediaType: MANIFEST, size: 1 }],
    ['a negative size', { mediaType: MANIFEST, digest: dg('m'), size: -1 }],
    ['a fractional size', { mediaType: MANIFEST, digest: dg('m'), size: 1.5 }],
    ['a string size', { mediaType: MANIFEST, digest: dg('m'), size: '1' }],
    ['a NaN size', { mediaType: MANIFEST, digest: dg('m'), size: Number.NaN }],
    ['an empty mediaType', { mediaType: '', digest: dg('m'), size: 1 }],
    ['a missing mediaType', { digest: dg('m'), size: 1 }],
    ['a mediaType over 255 characters', { mediaType: 'a'.repeat(256), digest: dg('m'), size: 1 }],
    ['no target at all', undefined],
    ['a null target', null],
  ];
  for (const [what, target] of BAD_TARGETS) {
    test(`create with a target with ${what} fails with InvalidArgument`, (t) => {
      const { db, ns } = setup(t);
      invalid(() => ns.images.create({ name: NAME, target: target as Descriptor }));
      assert.equal(countRows(db, 'images'), 0);
    });
  }

  test('create with a size-0 target is accepted', (t) => {
    const { ns } = setup(t);
    assert.equal(ns.images.create({ name: NAME, target: { mediaType: MANIFEST, digest: dg(''), size: 0 } }).target.size, 0);
  });

  test('create with invalid labels fails with InvalidArgument', (t) => {
    const { db, ns } = setup(t);
    invalid(() => ns.images.create({ name: NAME, target: desc('m'), labels: { '': 'x' } }));
    assert.equal(countRows(db, 'images'), 0);
  });

  test('create of an existing name fails with AlreadyExists and keeps the original', (t) => {
    const { ns } = setup(t);
    ns.images.create({ name: NAME, target: desc('first'), labels: { v: '1' } });
    exists(() => ns.images.create({ name: NAME, target: desc('second') }), /already exists/);
    const image = ns.images.get(NAME);
    assert.equal(image.target.digest, dg('first'));
    assert.deepEqual(image.labels, { v: '1' });
  });

  test('get of a missing image fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.images.get(NAME));
  });

  test('list returns every image of the namespace sorted by name', (t) => {
    const { ns } = setup(t);
    for (const name of ['c', 'a', 'b']) ns.images.create({ name, target: desc(name) });
    assert.deepEqual(
      ns.images.list().map((i) => i.name),
      ['a', 'b', 'c'],
    );
  });

  test('update without field paths replaces target and labels', (t) => {
    const { ns } = setup(t);
    const created = ns.images.create({ name: NAME, target: desc('old'), labels: { a: '1', b: '2' } });
    const updated = ns.images.update({ name: NAME, target: desc('new'), labels: { c: '3' } });
    assert.deepEqual(updated.target, desc('new'));
    assert.deepEqual(updated.labels, { c: '3' });
    assert.equal(updated.createdAt.getTime(), created.createdAt.getTime());
    assert.ok(updated.updatedAt.getTime() >= created.updatedAt.getTime());
    assert.deepEqual(ns.images.get(NAME), updated);
  });

  test('update with field path "target" replaces only the target', (t) => {
    const { ns } = setup(t);
    ns.images.create({ name: NAME, target: desc('old'), labels: { a: '1' } });
    const updated = ns.images.update({ name: NAME, target: desc('new'), labels: { ignored: 'x' } }, ['target']);
    assert.deepEqual(updated.target, desc('new'));
    assert.deepEqual(updated.labels, { a: '1' });
  });

  test('update with field path "labels.<key>" sets that label and keeps target and other labels', (t) => {
    const { ns } = setup(t);
    ns.images.create({ name: NAME, target: desc('old'), labels: { a: '1', b: '2' } });
    const updated = ns.images.update(
      // The target given is not selected, so it is neither validated nor stored.
      { name: NAME, target: { mediaType: '', digest: 'bad', size: -1 }, labels: { a: 'x', b: 'not-selected' } },
      ['labels.a'],
    );
    assert.deepEqual(updated.target, desc('old'));
    assert.deepEqual(updated.labels, { a: 'x', b: '2' });
  });

  test('update with field path "labels.<key>" and an empty value deletes that label', (t) => {
    const { ns } = setup(t);
    ns.images.create({ name: NAME, target: desc('m'), labels: { 'containerd.io/gc.ref.content.m.0': dg('x'), keep: 'y' } });
    const updated = ns.images.update({ name: NAME, target: desc('m'), labels: {} }, ['labels.containerd.io/gc.ref.content.m.0']);
    assert.deepEqual(updated.labels, { keep: 'y' });
  });

  test('update with field path "labels" replaces all labels and keeps the target', (t) => {
    const { ns } = setup(t);
    ns.images.create({ name: NAME, target: desc('old'), labels: { a: '1', b: '2' } });
    const updated = ns.images.update({ name: NAME, target: desc('new'), labels: { z: '26' } }, ['labels']);
    assert.deepEqual(updated.labels, { z: '26' });
    assert.deepEqual(updated.target, desc('old'));
  });

  test('update with field paths "target" and "labels.<key>" applies both', (t) => {
    const { ns } = setup(t);
    ns.images.create({ name: NAME, target: desc('old'), labels: { a: '1', b: '2' } });
    const updated = ns.images.update({ name: NAME, target: desc('new'), labels: { b: '3' } }, ['target', 'labels.b']);
    assert.deepEqual(updated.target, desc('new'));
    assert.deepEqual(updated.labels, { a: '1', b: '3' });
  });

  test('update with an unknown field path fails with InvalidArgument and changes nothing', (t) => {
    const { ns } = setup(t);
    const created = ns.images.create({ name: NAME, target: desc('old'), labels: { a: '1' } });
    invalid(() => ns.images.update({ name: NAME, target: desc('new'), labels: { a: '2' } }, ['labels.a', 'name']));
    invalid(() => ns.images.update({ name: NAME, target: desc('new') }, ['createdAt']));
    assert.deepEqual(ns.images.get(NAME), created);
  });

  test('update with an invalid target fails with InvalidArgument and changes nothing', (t) => {
    const { ns } = setup(t);
    const created = ns.images.create({ name: NAME, target: desc('old') });
    invalid(() => ns.images.update({ name: NAME, target: { mediaType: MANIFEST, digest: 'sha256:nothex', size: 1 } }));
    invalid(() => ns.images.update({ name: NAME, target: { ...desc('new'), size: -5 } }, ['target']));
    invalid(() => ns.images.update({ name: NAME, target: { ...desc('new'), mediaType: '' } }));
    assert.deepEqual(ns.images.get(NAME), created);
  });

  test('update with invalid labels fails with InvalidArgument and changes nothing', (t) => {
    const { ns } = setup(t);
    const created = ns.images.create({ name: NAME, target: desc('old'), labels: { a: '1' } });
    invalid(() => ns.images.update({ name: NAME, target: desc('new'), labels: { 'a b': '1' } }));
    assert.deepEqual(ns.images.get(NAME), created);
  });

  test('update of a missing image fails with NotFound and creates nothing', (t) => {
    const { db, ns } = setup(t);
    notFound(() => ns.images.update({ name: NAME, target: desc('m') }));
    assert.equal(countRows(db, 'images'), 0);
  });

  test('put creates a missing image', (t) => {
    const { ns } = setup(t);
    const put = ns.images.put({ name: NAME, target: desc('m'), labels: { a: '1' } });
    assert.deepEqual(ns.images.get(NAME), put);
    assert.deepEqual(put.labels, { a: '1' });
  });

  test('put replaces target and labels of an existing image and keeps createdAt', (t) => {
    const { ns } = setup(t);
    const created = ns.images.create({ name: NAME, target: desc('old'), labels: { a: '1' } });
    const put = ns.images.put({ name: NAME, target: desc('new'), labels: { b: '2' } });
    assert.deepEqual(put.target, desc('new'));
    assert.deepEqual(put.labels, { b: '2' });
    assert.equal(put.createdAt.getTime(), created.createdAt.getTime());
    assert.equal(ns.images.list().length, 1);
  });

  test('put with an invalid target fails with InvalidArgument, for a new or an existing image', (t) => {
    const { db, ns } = setup(t);
    const bad = { mediaType: MANIFEST, digest: 'nope', size: 1 };
    invalid(() => ns.images.put({ name: 'new', target: bad }));
    ns.images.create({ name: NAME, target: desc('old') });
    invalid(() => ns.images.put({ name: NAME, target: bad }));
    assert.equal(countRows(db, 'images'), 1);
    assert.deepEqual(ns.images.get(NAME).target, desc('old'));
  });

  test('delete removes the image', (t) => {
    const { ns } = setup(t);
    ns.images.create({ name: NAME, target: desc('m') });
    ns.images.create({ name: 'other', target: desc('o') });
    ns.images.delete(NAME);
    notFound(() => ns.images.get(NAME));
    assert.deepEqual(
      ns.images.list().map((i) => i.name),
      ['other'],
    );
  });

  test('delete of a missing image fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.images.delete(NAME));
  });

  test('a deleted name can be created again', (t) => {
    const { ns } = setup(t);
    ns.images.create({ name: NAME, target: desc('1') });
    ns.images.delete(NAME);
    assert.deepEqual(ns.images.create({ name: NAME, target: desc('2') }).target, desc('2'));
  });

  test('the same name in two namespaces is two independent images', (t) => {
    const { db } = setup(t, ['one', 'two']);
    const one = db.namespace('one').images;
    const two = db.namespace('two').images;
    one.create({ name: NAME, target: desc('one'), labels: { ns: 'one' } });
    notFound(() => two.get(NAME));
    assert.deepEqual(two.list(), []);
    two.create({ name: NAME, target: desc('two'), labels: { ns: 'two' } });

    one.update({ name: NAME, target: desc('one-b'), labels: { changed: 'yes' } });
    assert.deepEqual(two.get(NAME).target, desc('two'));
    assert.deepEqual(two.get(NAME).labels, { ns: 'two' });

    one.delete(NAME);
    notFound(() => one.get(NAME));
    assert.deepEqual(two.get(NAME).target, desc('two'));
    notFound(() => one.delete(NAME));
    notFound(() => one.update({ name: NAME, target: desc('x') }));
  });

  test('records are returned as copies: mutating one does not change the store', (t) => {
    const { ns } = setup(t);
    const image = ns.images.create({ name: NAME, target: desc('m'), labels: { a: '1' } });
    image.labels['b'] = '2';
    image.target.size = 999;
    assert.deepEqual(ns.images.get(NAME).labels, { a: '1' });
    assert.equal(ns.images.get(NAME).target.size, desc('m').size);
  });
});
