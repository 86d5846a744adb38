import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { allIngests, ingestDirsInUse, validateIngestRef } from '../../src/metadata/ingests.js';
import { countRows, dg, exists, invalid, notFound, reopen, setup } from './helpers.js';

const DIR = 'a'.repeat(64);

describe('IngestMetadata', () => {
  test('create stores ref, dir, expectation, labels and expiry; get returns them', (t) => {
    const { ns } = setup(t);
    const expiresAt = new Date('2030-01-02T03:04:05.678Z');
    const record = ns.ingests.create({
      ref: 'docker.io/library/alpine:layer-sha256:abc',
      dir: DIR,
      expected: dg('blob'),
      total: 4,
      labels: { k: 'v', empty: '' },
      expiresAt,
    });
    assert.equal(record.ref, 'docker.io/library/alpine:layer-sha256:abc');
    assert.equal(record.dir, DIR);
    assert.equal(record.expected, dg('blob'));
    assert.equal(record.total, 4);
    assert.deepEqual(record.labels, { k: 'v' });
    assert.equal(record.expiresAt?.getTime(), expiresAt.getTime());
    assert.equal(record.createdAt.getTime(), record.updatedAt.getTime());
    assert.deepEqual(ns.ingests.get(record.ref), record);
  });

  test('create without expectation or expiry leaves those fields absent', (t) => {
    const { ns } = setup(t);
    const record = ns.ingests.create({ ref: 'r', dir: DIR });
    assert.equal('expected' in record, false);
    assert.equal('total' in record, false);
    assert.equal('expiresAt' in record, false);
    assert.deepEqual(record.labels, {});
  });

  test('total 0 is kept (an empty blob)', (t) => {
    const { ns } = setup(t);
    assert.equal(ns.ingests.create({ ref: 'r', dir: DIR, expected: dg(''), total: 0 }).total, 0);
  });

  test('find returns undefined for a missing ref; get fails with NotFound', (t) => {
    const { ns } = setup(t);
    assert.equal(ns.ingests.find('missing'), undefined);
    notFound(() => ns.ingests.get('missing'));
  });

  test('create of an existing ref fails with AlreadyExists and keeps the original', (t) => {
    const { ns } = setup(t);
    const first = ns.ingests.create({ ref: 'r', dir: 'd1', expected: dg('a') });
    exists(() => ns.ingests.create({ ref: 'r', dir: 'd2' }));
    assert.deepEqual(ns.ingests.get('r'), first);
  });

  test('create of an existing ref with the same folder fails with AlreadyExists naming the ref', (t) => {
    const { ns } = setup(t);
    ns.ingests.create({ ref: 'r', dir: DIR });
    exists(() => ns.ingests.create({ ref: 'r', dir: DIR }), /ingest r already exists/);
  });

  test('two ingests cannot share a folder: AlreadyExists naming the folder', (t) => {
    const { db, ns } = setup(t);
    ns.ingests.create({ ref: 'r1', dir: DIR });
    exists(() => ns.ingests.create({ ref: 'r2', dir: DIR }), /folder/);
    assert.equal(ns.ingests.find('r2'), undefined);
    assert.equal(countRows(db, 'ingests'), 1);
  });

  test('folders are unique across namespaces too (they share one ingest directory)', (t) => {
    const { db } = setup(t, ['one', 'two']);
    db.namespace('one').ingests.create({ ref: 'r', dir: DIR });
    exists(() => db.namespace('two').ingests.create({ ref: 'r', dir: DIR }), /folder/);
  });

  for (const [what, ref] of [
    ['empty', ''],
    ['with a newline', 'a\nb'],
    ['with a NUL', 'a\u0000b'],
    ['with DEL', 'a\u007f'],
    ['longer than 4096 characters', 'r'.repeat(4097)],
  ] as const) {
    test(`a ref ${what} fails with InvalidArgument`, (t) => {
      const { db, ns } = setup(t);
      invalid(() => validateIngestRef(ref));
      invalid(() => ns.ingests.create({ ref, dir: DIR }));
      assert.equal(countRows(db, 'ingests'), 0);
    });
  }

  test('refs may hold slashes, colons, spaces and unicode', (t) => {
    const { ns } = setup(t);
    for (const [i, ref] of ['a/b:c@d', 'with space', '牛', 'r'.repeat(4096)].entries()) {
      assert.equal(ns.ingests.create({ ref, dir: `d${i}` }).ref, ref);
    }
  });

  for (const [what, dir] of [
    ['empty', ''],
    ['"."', '.'],
    ['".."', '..'],
    ['with a slash', 'a/b'],
    ['climbing out', '../blobs'],
    ['absolute', '/tmp/x'],
    ['with a NUL', 'a\u0000'],
  ] as const) {
    test(`a folder name ${what} fails with InvalidArgument`, (t) => {
      const { db, ns } = setup(t);
      invalid(() => ns.ingests.create({ ref: 'r', dir }));
      assert.equal(countRows(db, 'ingests'), 0);
    });
  }

  test('a malformed expected digest fails with InvalidArgument', (t) => {
    const { db, ns } = setup(t);
    invalid(() => ns.ingests.create({ ref: 'r', dir: DIR, expected: 'sha256:abc' }));
    assert.equal(countRows(db, 'ingests'), 0);
  });

  for (const total of [-1, 1.5, Number.NaN, 2 ** 53]) {
    test(`total ${String(total)} fails with InvalidArgument`, (t) => {
      const { db, ns } = setup(t);
      invalid(() => ns.ingests.create({ ref: 'r', dir: DIR, total }));
      assert.equal(countRows(db, 'ingests'), 0);
    });
  }

  test('an invalid expiry date fails with InvalidArgument', (t) => {
    const { db, ns } = setup(t);
    invalid(() => ns.ingests.create({ ref: 'r', dir: DIR, expiresAt: new Date('not a date') }));
    assert.equal(countRows(db, 'ingests'), 0);
  });

  test('invalid labels fail with InvalidArgument', (t) => {
    const { db, ns } = setup(t);
    invalid(() => ns.ingests.create({ ref: 'r', dir: DIR, labels: { 'a\u0000': 'v' } }));
    assert.equal(countRows(db, 'ingests'), 0);
  });

  test('setExpectation sets, changes and clears expected digest and total', (t) => {
    const { ns } = setup(t);
    const created = ns.ingests.create({ ref: 'r', dir: DIR, labels: { k: 'v' } });
    let record = ns.ingests.setExpectation('r', dg('a'), 10);
    assert.equal(record.expected, dg('a'));
    assert.equal(record.total, 10);
    assert.equal(record.dir, DIR);
    assert.deepEqual(record.labels, { k: 'v' });
    assert.equal(record.createdAt.getTime(), created.createdAt.getTime());
    record = ns.ingests.setExpectation('r', dg('b'), undefined);
    assert.equal(record.expected, dg('b'));
    assert.equal('total' in record, false);
    record = ns.ingests.setExpectation('r', undefined, undefined);
    assert.equal('expected' in record, false);
    assert.deepEqual(ns.ingests.get('r'), record);
  });

  test('setExpectation with a malformed digest or total fails with InvalidArgument and changes nothing', (t) => {
    const { ns } = setup(t);
    const created = ns.ingests.create({ ref: 'r', dir: DIR, expected: dg('a'), total: 1 });
    invalid(() => ns.ingests.setExpectation('r', 'md5:abc', 1));
    invalid(() => ns.ingests.setExpectation('r', dg('b'), -1));
    assert.deepEqual(ns.ingests.get('r'), created);
  });

  test('setExpectation of a missing ref fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.ingests.setExpectation('missing', dg('a'), 1));
  });

  test('list returns the namespace’s ingests sorted by ref', (t) => {
    const { db } = setup(t, ['one', 'two']);
    const one = db.namespace('one').ingests;
    one.create({ ref: 'z', dir: 'd1' });
    one.create({ ref: 'a', dir: 'd2' });
    db.namespace('two').ingests.create({ ref: 'm', dir: 'd3' });
    assert.deepEqual(
      one.list().map((i) => i.ref),
      ['a', 'z'],
    );
    assert.deepEqual(
      one.list('ref==z').map((i) => i.ref),
      ['z'],
    );
  });

  test('delete removes the record', (t) => {
    const { ns } = setup(t);
    ns.ingests.create({ ref: 'r', dir: DIR });
    ns.ingests.delete('r');
    assert.equal(ns.ingests.find('r'), undefined);
    // The folder name is free again.
    ns.ingests.create({ ref: 'r2', dir: DIR });
  });

  test('delete of a missing ref fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.ingests.delete('missing'));
  });

  test('the same ref in two namespaces is two ingests', (t) => {
    const { db } = setup(t, ['one', 'two']);
    const one = db.namespace('one').ingests;
    const two = db.namespace('two').ingests;
    one.create({ ref: 'r', dir: 'd1', expected: dg('a') });
    assert.equal(two.find('r'), undefined);
    two.create({ ref: 'r', dir: 'd2' });
    one.setExpectation('r', dg('b'), 2);
    assert.equal(two.get('r').expected, undefined);
    one.delete('r');
    assert.equal(two.get('r').dir, 'd2');
  });

  test('ingestDirsInUse lists the folders of every namespace', (t) => {
    const { db } = setup(t, ['one', 'two']);
    assert.deepEqual(ingestDirsInUse(db), new Set());
    db.namespace('one').ingests.create({ ref: 'r', dir: 'd1' });
    db.namespace('two').ingests.create({ ref: 'r', dir: 'd2' });
    db.namespace('two').ingests.create({ ref: 's', dir: 'd3' });
    assert.deepEqual(ingestDirsInUse(db), new Set(['d1', 'd2', 'd3']));
    db.namespace('two').ingests.delete('r');
    assert.deepEqual(ingestDirsInUse(db), new Set(['d1', 'd3']));
  });

  test('allIngests lists namespace, ref and folder of every ingest', (t) => {
    const { db } = setup(t, ['one', 'two']);
    db.namespace('one').ingests.create({ ref: 'r', dir: 'd1', expected: dg('x') });
    db.namespace('two').ingests.create({ ref: 'r', dir: 'd2' });
    const all = allIngests(db).sort((a, b) => a.dir.localeCompare(b.dir));
    assert.deepEqual(all, [
      { namespace: 'one', ref: 'r', dir: 'd1' },
      { namespace: 'two', ref: 'r', dir: 'd2' },
    ]);
  });

  test('records survive reopening the database', (t) => {
    const { db, ns, path } = setup(t);
    const created = ns.ingests.create({ ref: 'r', dir: DIR, expected: dg('a'), total: 9, expiresAt: new Date(2_000_000_000_000) });
    db.close();
    assert.deepEqual(reopen(t, path).namespace('default').ingests.get('r'), created);
  });
});
