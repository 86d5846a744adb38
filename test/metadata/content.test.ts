import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf } from '../../src/digest.js';
import { digestsInUse, isDigestInUse } from '../../src/metadata/content.js';
import { countRows, dg, exists, invalid, notFound, reopen, setup } from './helpers.js';

const BAD_DIGESTS = [
  '',
  'sha256',
  'sha256:',
  `sha256:${'a'.repeat(63)}`,
  `sha256:${'a'.repeat(65)}`,
  `sha256:${'A'.repeat(64)}`,
  `sha256:${'g'.repeat(64)}`,
  'a'.repeat(64),
  `md5:${'a'.repeat(32)}`,
  `sha384:${'a'.repeat(96)}`,
  ` sha256:${'a'.repeat(64)}`,
  `sha256:${'a'.repeat(64)}\n`,
  `SHA256:${'a'.repeat(64)}`,
];

describe('ContentMetadata', () => {
  test('add records digest, size and labels; info returns them', (t) => {
    const { ns } = setup(t);
    const added = ns.content.add({ digest: dg('blob'), size: 4, labels: { 'containerd.io/gc.root': 'true', empty: '' } });
    assert.equal(added.digest, dg('blob'));
    assert.equal(added.size, 4);
    assert.deepEqual(added.labels, { 'containerd.io/gc.root': 'true' });
    assert.equal(added.createdAt.getTime(), added.updatedAt.getTime());
    assert.deepEqual(ns.content.info(dg('blob')), added);
  });

  test('sha512 digests are accepted', (t) => {
    const { ns } = setup(t);
    const digest = digestOf('blob', 'sha512');
    assert.equal(ns.content.add({ digest, size: 4 }).digest, digest);
    assert.equal(ns.content.has(digest), true);
  });

  test('size 0 is accepted', (t) => {
    const { ns } = setup(t);
    assert.equal(ns.content.add({ digest: dg(''), size: 0 }).size, 0);
  });

  test('sizes up to Number.MAX_SAFE_INTEGER round-trip exactly', (t) => {
    const { ns } = setup(t);
    assert.equal(ns.content.add({ digest: dg('big'), size: Number.MAX_SAFE_INTEGER }).size, Number.MAX_SAFE_INTEGER);
  });

  for (const size of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '4' as unknown as number]) {
    test(`add with size ${String(size)} (${typeof size}) fails with InvalidArgument`, (t) => {
      const { db, ns } = setup(t);
      invalid(() => ns.content.add({ digest: dg('blob'), size }));
      assert.equal(countRows(db, 'content'), 0);
    });
  }

  for (const digest of BAD_DIGESTS) {
    test(`malformed digest ${JSON.stringify(digest.length > 24 ? `${digest.slice(0, 12)}…${digest.slice(-4)}` : digest)} fails with InvalidArgument in add, info and delete`, (t) => {
      const { db, ns } = setup(t);
      invalid(() => ns.content.add({ digest, size: 1 }));
      invalid(() => ns.content.info(digest));
      invalid(() => ns.content.delete(digest));
      assert.equal(countRows(db, 'content'), 0);
    });
  }

  test('add with invalid labels fails with InvalidArgument and records nothing', (t) => {
    const { ns } = setup(t);
    invalid(() => ns.content.add({ digest: dg('blob'), size: 1, labels: { 'a\tb': 'x' } }));
    assert.equal(ns.content.has(dg('blob')), false);
  });

  test('add of a recorded digest fails with AlreadyExists and keeps the original', (t) => {
    const { ns } = setup(t);
    ns.content.add({ digest: dg('blob'), size: 4, labels: { v: '1' } });
    exists(() => ns.content.add({ digest: dg('blob'), size: 5 }));
    const info = ns.content.info(dg('blob'));
    assert.equal(info.size, 4);
    assert.deepEqual(info.labels, { v: '1' });
  });

  test('has tells whether the namespace records a digest', (t) => {
    const { ns } = setup(t);
    ns.content.add({ digest: dg('a'), size: 1 });
    assert.equal(ns.content.has(dg('a')), true);
    assert.equal(ns.content.has(dg('b')), false);
  });

  test('info of a missing digest fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.content.info(dg('missing')));
  });

  test('list returns every record sorted by digest', (t) => {
    const { ns } = setup(t);
    const digests = ['1', '2', '3', '4'].map(dg);
    for (const digest of digests) ns.content.add({ digest, size: 1 });
    assert.deepEqual(
      ns.content.list().map((c) => c.digest),
      [...digests].sort(),
    );
  });

  test('update without field paths replaces all labels and keeps size and createdAt', (t) => {
    const { ns } = setup(t);
    const added = ns.content.add({ digest: dg('a'), size: 7, labels: { a: '1', b: '2' } });
    const updated = ns.content.update({ digest: dg('a'), labels: { c: '3' } });
    assert.deepEqual(updated.labels, { c: '3' });
    assert.equal(updated.size, 7);
    assert.equal(updated.createdAt.getTime(), added.createdAt.getTime());
    assert.ok(updated.updatedAt.getTime() >= added.updatedAt.getTime());
  });

  test('update without labels or field paths clears the labels', (t) => {
    const { ns } = setup(t);
    ns.content.add({ digest: dg('a'), size: 7, labels: { a: '1' } });
    assert.deepEqual(ns.content.update({ digest: dg('a') }).labels, {});
  });

  test('update with "labels.<key>" field paths sets and deletes single labels', (t) => {
    const { ns } = setup(t);
    ns.content.add({ digest: dg('a'), size: 1, labels: { a: '1', b: '2' } });
    const updated = ns.content.update({ digest: dg('a'), labels: { a: '', c: '3' } }, ['labels.a', 'labels.c']);
    assert.deepEqual(updated.labels, { b: '2', c: '3' });
    assert.deepEqual(ns.content.info(dg('a')).labels, { b: '2', c: '3' });
  });

  test('update of a field other than labels fails with InvalidArgument and changes nothing', (t) => {
    const { ns } = setup(t);
    ns.content.add({ digest: dg('a'), size: 1, labels: { a: '1' } });
    invalid(() => ns.content.update({ digest: dg('a'), labels: { a: '2' } }, ['labels.a', 'size']));
    assert.deepEqual(ns.content.info(dg('a')).labels, { a: '1' });
  });

  test('update of a missing digest fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.content.update({ digest: dg('missing'), labels: {} }));
  });

  test('update with a malformed digest fails with InvalidArgument', (t) => {
    const { ns } = setup(t);
    invalid(() => ns.content.update({ digest: 'sha256:zz', labels: {} }));
  });

  test('delete removes the record', (t) => {
    const { ns } = setup(t);
    ns.content.add({ digest: dg('a'), size: 1 });
    ns.content.delete(dg('a'));
    assert.equal(ns.content.has(dg('a')), false);
    notFound(() => ns.content.info(dg('a')));
  });

  test('delete of a missing digest fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.content.delete(dg('missing')));
  });

  test('records of two namespaces are independent', (t) => {
    const { db } = setup(t, ['one', 'two']);
    const one = db.namespace('one').content;
    const two = db.namespace('two').content;
    one.add({ digest: dg('shared'), size: 6, labels: { ns: 'one' } });
    assert.equal(two.has(dg('shared')), false);
    notFound(() => two.info(dg('shared')));
    assert.deepEqual(two.list(), []);

    two.add({ digest: dg('shared'), size: 6, labels: { ns: 'two' } });
    one.update({ digest: dg('shared'), labels: { changed: 'yes' } });
    assert.deepEqual(two.info(dg('shared')).labels, { ns: 'two' });

    one.delete(dg('shared'));
    assert.equal(one.has(dg('shared')), false);
    assert.equal(two.has(dg('shared')), true);
  });

  test('isDigestInUse is true while any namespace records the digest', (t) => {
    const { db } = setup(t, ['one', 'two']);
    const one = db.namespace('one').content;
    const two = db.namespace('two').content;
    assert.equal(isDigestInUse(db, dg('x')), false);
    one.add({ digest: dg('x'), size: 1 });
    two.add({ digest: dg('x'), size: 1 });
    assert.equal(isDigestInUse(db, dg('x')), true);
    one.delete(dg('x'));
    assert.equal(isDigestInUse(db, dg('x')), true, 'namespace two still records it');
    two.delete(dg('x'));
    assert.equal(isDigestInUse(db, dg('x')), false);
  });

  test('digestsInUse is the distinct union of every namespace’s digests', (t) => {
    const { db } = setup(t, ['one', 'two']);
    assert.deepEqual(digestsInUse(db), new Set());
    db.namespace('one').content.add({ digest: dg('a'), size: 1 });
    db.namespace('one').content.add({ digest: dg('b'), size: 1 });
    db.namespace('two').content.add({ digest: dg('b'), size: 1 });
    db.namespace('two').content.add({ digest: dg('c'), size: 1 });
    assert.deepEqual(digestsInUse(db), new Set([dg('a'), dg('b'), dg('c')]));
    db.namespace('one').content.delete(dg('a'));
    assert.deepEqual(digestsInUse(db), new Set([dg('b'), dg('c')]));
  });

  test('records survive reopening the database', (t) => {
    const { db, ns, path } = setup(t);
    ns.content.add({ digest: dg('a'), size: 3, labels: { k: 'v' } });
    db.close();
    const info = reopen(t, path).namespace('default').content.info(dg('a'));
    assert.equal(info.size, 3);
    assert.deepEqual(info.labels, { k: 'v' });
  });
});
