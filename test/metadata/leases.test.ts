import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { generateLeaseId } from '../../src/metadata/index.js';
import { countRows, dg, exists, invalid, notFound, setup } from './helpers.js';

const LEASE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$/;

describe('LeaseStore', () => {
  test('create with a given id stores id and labels; get returns them', (t) => {
    const { ns } = setup(t);
    const lease = ns.leases.create({ id: 'pull-1', labels: { 'containerd.io/gc.expire': '2030-01-01T00:00:00Z', e: '' } });
    assert.equal(lease.id, 'pull-1');
    assert.deepEqual(lease.labels, { 'containerd.io/gc.expire': '2030-01-01T00:00:00Z' });
    assert.ok(lease.createdAt instanceof Date && !Number.isNaN(lease.createdAt.getTime()));
    assert.deepEqual(ns.leases.get('pull-1'), lease);
  });

  test('create without an id generates a valid, unique one', (t) => {
    const { ns } = setup(t);
    const a = ns.leases.create();
    const b = ns.leases.create({});
    assert.match(a.id, LEASE_ID);
    assert.match(b.id, LEASE_ID);
    assert.notEqual(a.id, b.id);
    assert.deepEqual(a.labels, {});
    assert.deepEqual(
      ns.leases
        .list()
        .map((l) => l.id)
        .sort(),
      [a.id, b.id].sort(),
    );
  });

  test('generateLeaseId returns valid ids that do not repeat', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const id = generateLeaseId();
      assert.match(id, LEASE_ID);
      ids.add(id);
    }
    assert.equal(ids.size, 200);
  });

  test('ids of letters, digits and . _ : - up to 255 characters are accepted', (t) => {
    const { ns } = setup(t);
    for (const id of ['a', '0', 'pull:docker.io_x-1', 'A'.repeat(255)]) assert.equal(ns.leases.create({ id }).id, id);
  });

  for (const id of ['', '-a', '.a', ':a', 'a b', 'a/b', 'a\u0000', 'a\n', 'é', 'a'.repeat(256)]) {
    test(`id ${JSON.stringify(id.length > 20 ? `${id.slice(0, 4)}…(${id.length})` : id)} fails with InvalidArgument`, (t) => {
      const { db, ns } = setup(t);
      invalid(() => ns.leases.create({ id }));
      assert.equal(countRows(db, 'leases'), 0);
    });
  }

  test('create with invalid labels fails with InvalidArgument', (t) => {
    const { db, ns } = setup(t);
    invalid(() => ns.leases.create({ id: 'l', labels: { 'a b': 'c' } }));
    assert.equal(countRows(db, 'leases'), 0);
  });

  test('create of an existing id fails with AlreadyExists and keeps the original', (t) => {
    const { ns } = setup(t);
    const first = ns.leases.create({ id: 'l', labels: { v: '1' } });
    exists(() => ns.leases.create({ id: 'l', labels: { v: '2' } }));
    assert.deepEqual(ns.leases.get('l'), first);
  });

  test('the same id in two namespaces is two leases', (t) => {
    const { db } = setup(t, ['one', 'two']);
    db.namespace('one').leases.create({ id: 'l', labels: { ns: 'one' } });
    db.namespace('two').leases.create({ id: 'l', labels: { ns: 'two' } });
    assert.deepEqual(db.namespace('one').leases.get('l').labels, { ns: 'one' });
    db.namespace('one').leases.delete('l');
    assert.deepEqual(db.namespace('two').leases.get('l').labels, { ns: 'two' });
  });

  test('get of a missing lease fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.leases.get('missing'));
  });

  test('list returns only this namespace’s leases and applies filters', (t) => {
    const { db } = setup(t, ['one', 'two']);
    const one = db.namespace('one').leases;
    one.create({ id: 'a', labels: { kind: 'pull' } });
    one.create({ id: 'b', labels: { kind: 'user' } });
    db.namespace('two').leases.create({ id: 'c', labels: { kind: 'pull' } });
    assert.deepEqual(
      one
        .list()
        .map((l) => l.id)
        .sort(),
      ['a', 'b'],
    );
    assert.deepEqual(
      one.list('labels.kind==pull').map((l) => l.id),
      ['a'],
    );
    assert.deepEqual(
      one.list('id==b').map((l) => l.id),
      ['b'],
    );
    assert.deepEqual(
      one
        .list('id==a', 'labels.kind==user')
        .map((l) => l.id)
        .sort(),
      ['a', 'b'],
    );
    assert.deepEqual(one.list('labels.kind==pull,id==b'), []);
  });

  test('delete removes the lease', (t) => {
    const { ns } = setup(t);
    ns.leases.create({ id: 'l' });
    ns.leases.delete('l');
    notFound(() => ns.leases.get('l'));
    assert.deepEqual(ns.leases.list(), []);
  });

  test('delete of a missing lease fails with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.leases.delete('missing'));
  });
});

describe('lease resources', () => {
  test('content, snapshots/<snapshotter> and ingests resources are attached and listed', (t) => {
    const { ns } = setup(t);
    ns.leases.create({ id: 'l' });
    ns.leases.addResource('l', { type: 'snapshots/overlayfs', id: 'extract-1-sha256:abc' });
    ns.leases.addResource('l', { type: 'content', id: dg('blob') });
    ns.leases.addResource('l', { type: 'ingests', id: 'docker.io/library/alpine:layer-1' });
    ns.leases.addResource('l', { type: 'content', id: dg('another') });
    assert.deepEqual(ns.leases.listResources('l'), [
      ...[dg('another'), dg('blob')].sort().map((id) => ({ type: 'content', id })),
      { type: 'ingests', id: 'docker.io/library/alpine:layer-1' },
      { type: 'snapshots/overlayfs', id: 'extract-1-sha256:abc' },
    ]);
  });

  test('resources need not exist yet (a lease protects what is about to be written)', (t) => {
    const { ns } = setup(t);
    ns.leases.create({ id: 'l' });
    ns.leases.addResource('l', { type: 'content', id: dg('not-yet-written') });
    assert.equal(ns.content.has(dg('not-yet-written')), false);
    assert.equal(ns.leases.listResources('l').length, 1);
  });

  test('a content resource with a malformed digest fails with InvalidArgument', (t) => {
    const { db, ns } = setup(t);
    ns.leases.create({ id: 'l' });
    invalid(() => ns.leases.addResource('l', { type: 'content', id: 'sha256:nothex' }));
    invalid(() => ns.leases.addResource('l', { type: 'content', id: 'blob' }));
    assert.equal(countRows(db, 'lease_resources'), 0);
  });

  for (const type of ['blob', 'snapshots', 'snapshots/', 'snapshots/Overlay', 'snapshots/a b', 'Content', 'ingest', '']) {
    test(`resource type ${JSON.stringify(type)} fails with InvalidArgument`, (t) => {
      const { db, ns } = setup(t);
      ns.leases.create({ id: 'l' });
      invalid(() => ns.leases.addResource('l', { type, id: 'x' }));
      assert.equal(countRows(db, 'lease_resources'), 0);
    });
  }

  test('a resource with an empty id fails with InvalidArgument', (t) => {
    const { ns } = setup(t);
    ns.leases.create({ id: 'l' });
    invalid(() => ns.leases.addResource('l', { type: 'ingests', id: '' }));
    invalid(() => ns.leases.addResource('l', { type: 'snapshots/overlayfs', id: '' }));
  });

  test('adding the same resource twice is a no-op', (t) => {
    const { db, ns } = setup(t);
    ns.leases.create({ id: 'l' });
    ns.leases.addResource('l', { type: 'content', id: dg('a') });
    ns.leases.addResource('l', { type: 'content', id: dg('a') });
    assert.deepEqual(ns.leases.listResources('l'), [{ type: 'content', id: dg('a') }]);
    assert.equal(countRows(db, 'lease_resources'), 1);
  });

  test('the same id under two types is two resources', (t) => {
    const { ns } = setup(t);
    ns.leases.create({ id: 'l' });
    ns.leases.addResource('l', { type: 'snapshots/overlayfs', id: 'k' });
    ns.leases.addResource('l', { type: 'snapshots/native', id: 'k' });
    assert.equal(ns.leases.listResources('l').length, 2);
  });

  test('adding to a missing lease fails with NotFound', (t) => {
    const { db, ns } = setup(t);
    notFound(() => ns.leases.addResource('missing', { type: 'content', id: dg('a') }));
    assert.equal(countRows(db, 'lease_resources'), 0);
  });

  test('deleteResource removes only that resource', (t) => {
    const { ns } = setup(t);
    ns.leases.create({ id: 'l' });
    ns.leases.addResource('l', { type: 'content', id: dg('a') });
    ns.leases.addResource('l', { type: 'content', id: dg('b') });
    ns.leases.addResource('l', { type: 'ingests', id: dg('a') });
    ns.leases.deleteResource('l', { type: 'content', id: dg('a') });
    assert.deepEqual(ns.leases.listResources('l'), [
      { type: 'content', id: dg('b') },
      { type: 'ingests', id: dg('a') },
    ]);
  });

  test('deleting a resource the lease does not hold is a no-op', (t) => {
    const { ns } = setup(t);
    ns.leases.create({ id: 'l' });
    ns.leases.addResource('l', { type: 'content', id: dg('a') });
    ns.leases.deleteResource('l', { type: 'content', id: dg('zzz') });
    assert.equal(ns.leases.listResources('l').length, 1);
  });

  test('deleteResource and listResources on a missing lease fail with NotFound', (t) => {
    const { ns } = setup(t);
    notFound(() => ns.leases.deleteResource('missing', { type: 'content', id: dg('a') }));
    notFound(() => ns.leases.listResources('missing'));
  });

  test('deleting a lease deletes its resource rows', (t) => {
    const { db, ns } = setup(t);
    ns.leases.create({ id: 'l' });
    ns.leases.create({ id: 'kept' });
    ns.leases.addResource('l', { type: 'content', id: dg('a') });
    ns.leases.addResource('l', { type: 'ingests', id: 'ref' });
    ns.leases.addResource('kept', { type: 'content', id: dg('a') });
    ns.leases.delete('l');
    assert.equal(countRows(db, 'lease_resources', 'lease = ?', 'l'), 0);
    assert.equal(countRows(db, 'lease_resources', 'lease = ?', 'kept'), 1);
    // A new lease with the old id starts empty.
    ns.leases.create({ id: 'l' });
    assert.deepEqual(ns.leases.listResources('l'), []);
  });

  test('resources of same-id leases in two namespaces are independent', (t) => {
    const { db } = setup(t, ['one', 'two']);
    const one = db.namespace('one').leases;
    const two = db.namespace('two').leases;
    one.create({ id: 'l' });
    two.create({ id: 'l' });
    one.addResource('l', { type: 'content', id: dg('a') });
    assert.deepEqual(two.listResources('l'), []);
    two.addResource('l', { type: 'content', id: dg('b') });
    one.delete('l');
    assert.deepEqual(two.listResources('l'), [{ type: 'content', id: dg('b') }]);
  });

  test('a resource added in a transaction that fails is not kept', (t) => {
    const { db, ns } = setup(t);
    ns.leases.create({ id: 'l' });
    assert.throws(() =>
      db.transaction(() => {
        ns.leases.addResource('l', { type: 'content', id: dg('a') });
        throw new Error('pull failed');
      }),
    );
    assert.deepEqual(ns.leases.listResources('l'), []);
  });
});
