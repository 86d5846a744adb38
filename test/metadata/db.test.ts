import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ErrorCode } from '../../src/errors.js';
import { MetadataDB } from '../../src/metadata/index.js';
import { MIGRATIONS } from '../../src/metadata/schema.js';
import { countRows, desc, notFound, onCleanup, precondition, reopen, setup, tempDir, throwsCode } from './helpers.js';

const LATEST = MIGRATIONS.at(-1)?.version ?? 0;

/** A raw better-sqlite3 connection, closed after the test. */
function raw(t: import('node:test').TestContext, path: string, options?: Database.Options): Database.Database {
  const conn = new Database(path, options);
  onCleanup(t, () => conn.close());
  return conn;
}

describe('MetadataDB.open', () => {
  test('sets WAL journal mode, persistently in the file', (t) => {
    const { db, path } = setup(t);
    assert.equal(db.sqlite.pragma('journal_mode', { simple: true }), 'wal');
    // journal_mode=WAL is a property of the file: a plain connection sees it too.
    assert.equal(raw(t, path).pragma('journal_mode', { simple: true }), 'wal');
  });

  test('sets synchronous=FULL (2)', (t) => {
    const { db } = setup(t);
    assert.equal(db.sqlite.pragma('synchronous', { simple: true }), 2);
  });

  test('turns foreign keys on, and they are enforced', (t) => {
    const { db } = setup(t);
    assert.equal(db.sqlite.pragma('foreign_keys', { simple: true }), 1);
    assert.throws(
      () =>
        db.sqlite
          .prepare("INSERT INTO images (namespace, name, target, created_at, updated_at) VALUES ('nope', 'x', '{}', 0, 0)")
          .run(),
      (err: unknown) => (err as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY',
    );
  });

  test('sets the busy timeout from the options', (t) => {
    const dir = tempDir(t);
    const db = MetadataDB.open({ path: join(dir, 'm.db'), busyTimeoutMs: 1234 });
    onCleanup(t, () => db.close());
    assert.equal(db.sqlite.pragma('busy_timeout', { simple: true }), 1234);
  });

  test('migrates a new file to the latest schema version', (t) => {
    const { db, path } = setup(t);
    assert.ok(LATEST >= 1);
    assert.equal(db.schemaVersion, LATEST);
    assert.equal(raw(t, path).pragma('user_version', { simple: true }), LATEST);
    const tables = (
      db.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]
    ).map((r) => r.name);
    for (const table of ['content', 'images', 'ingests', 'lease_resources', 'leases', 'namespaces', 'snapshots']) {
      assert.ok(tables.includes(table), `table ${table} missing from ${tables.join(',')}`);
    }
  });

  test('migration versions are strictly increasing from 1', () => {
    MIGRATIONS.forEach((migration, i) => assert.equal(migration.version, i + 1));
  });

  test('reopening an existing database keeps its data and does not re-run migrations', (t) => {
    const { db, path } = setup(t, ['default', 'other']);
    db.namespace('default').images.create({ name: 'docker.io/library/alpine:3', target: desc('m1'), labels: { a: 'b' } });
    db.namespace('other').content.add({ digest: desc('blob').digest, size: 4 });
    db.close();

    // Re-running migration 1 would fail (its tables exist), so a clean reopen shows it
    // was skipped.
    const again = reopen(t, path);
    assert.equal(again.schemaVersion, LATEST);
    assert.deepEqual(
      again.namespaces.list().map((n) => n.name),
      ['default', 'other'],
    );
    const image = again.namespace('default').images.get('docker.io/library/alpine:3');
    assert.deepEqual(image.target, desc('m1'));
    assert.deepEqual(image.labels, { a: 'b' });
    assert.equal(again.namespace('other').content.info(desc('blob').digest).size, 4);
  });

  test('reopening runs no migration statements (schema objects are unchanged)', (t) => {
    const { db, path } = setup(t);
    const schema = () => db.sqlite.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all();
    const before = schema();
    db.close();
    const again = reopen(t, path);
    assert.deepEqual(again.sqlite.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all(), before);
  });

  test('a database whose user_version is newer than supported fails with FailedPrecondition', (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'metadata.db');
    const conn = new Database(path);
    conn.pragma(`user_version = ${LATEST + 1}`);
    conn.close();

    precondition(() => MetadataDB.open({ path }), /newer/);

    // Nothing was migrated into it and its version is untouched.
    const check = raw(t, path);
    assert.equal(check.pragma('user_version', { simple: true }), LATEST + 1);
    assert.deepEqual(check.prepare('SELECT name FROM sqlite_master').all(), []);
  });

  test('a failed open closes its connection (the file can be replaced and reopened)', (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'metadata.db');
    const conn = new Database(path);
    conn.pragma(`user_version = ${LATEST + 5}`);
    conn.close();
    precondition(() => MetadataDB.open({ path }));
    const fix = raw(t, path);
    fix.pragma('user_version = 0');
    const db = reopen(t, path);
    assert.equal(db.schemaVersion, LATEST);
  });

  test('a path in a missing directory fails with Unavailable', (t) => {
    const dir = tempDir(t);
    throwsCode(() => MetadataDB.open({ path: join(dir, 'no', 'such', 'dir', 'metadata.db') }), ErrorCode.Unavailable);
  });

  test('readonly open of a missing file fails with Unavailable and creates nothing', (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'metadata.db');
    throwsCode(() => MetadataDB.open({ path, readonly: true }), ErrorCode.Unavailable);
    assert.equal(existsSync(path), false);
  });

  test('readonly open sees the data and refuses writes', (t) => {
    const { db, path } = setup(t);
    db.namespace('default').images.create({ name: 'img', target: desc('m') });
    const ro = MetadataDB.open({ path, readonly: true });
    onCleanup(t, () => ro.close());
    assert.equal(ro.namespace('default').images.get('img').target.digest, desc('m').digest);
    assert.throws(() => ro.namespace('default').images.create({ name: 'img2', target: desc('m2') }));
    notFound(() => db.namespace('default').images.get('img2'));
  });

  test('close is idempotent', (t) => {
    const { db } = setup(t);
    db.close();
    db.close();
    assert.equal(db.sqlite.open, false);
  });
});

describe('MetadataDB.transaction', () => {
  test('returns the callback value', (t) => {
    const { db } = setup(t);
    assert.equal(
      db.transaction(() => 42),
      42,
    );
  });

  test('a throw inside rolls back the earlier writes made in it', (t) => {
    const { db, ns } = setup(t);
    assert.throws(
      () =>
        db.transaction(() => {
          ns.images.create({ name: 'a', target: desc('a') });
          ns.content.add({ digest: desc('a').digest, size: 1 });
          assert.equal(ns.images.list().length, 1, 'visible inside the transaction');
          throw new Error('boom');
        }),
      /boom/,
    );
    notFound(() => ns.images.get('a'));
    assert.equal(ns.content.has(desc('a').digest), false);
    assert.equal(countRows(db, 'images'), 0);
  });

  test('a failing statement inside rolls back the earlier writes made in it', (t) => {
    const { db, ns } = setup(t);
    ns.images.create({ name: 'existing', target: desc('e') });
    throwsCode(
      () =>
        db.transaction(() => {
          ns.images.create({ name: 'new', target: desc('n') });
          ns.images.create({ name: 'existing', target: desc('x') }); // AlreadyExists
        }),
      ErrorCode.AlreadyExists,
    );
    notFound(() => ns.images.get('new'));
    assert.equal(ns.images.get('existing').target.digest, desc('e').digest);
  });

  test('is not in a transaction after a rollback (the next write commits on its own)', (t) => {
    const { db, ns } = setup(t);
    assert.throws(() =>
      db.transaction(() => {
        ns.images.create({ name: 'a', target: desc('a') });
        throw new Error('x');
      }),
    );
    assert.equal(db.sqlite.inTransaction, false);
    ns.images.create({ name: 'b', target: desc('b') });
    assert.equal(db.sqlite.inTransaction, false);
  });

  test('a nested transaction that fails rolls back only its own writes', (t) => {
    const { db, ns } = setup(t);
    db.transaction(() => {
      ns.images.create({ name: 'outer', target: desc('o') });
      assert.throws(() =>
        db.transaction(() => {
          ns.images.create({ name: 'inner', target: desc('i') });
          throw new Error('inner fails');
        }),
      );
      ns.images.create({ name: 'outer2', target: desc('o2') });
    });
    assert.deepEqual(
      ns.images.list().map((i) => i.name),
      ['outer', 'outer2'],
    );
  });

  test('a failing outer transaction rolls back writes its nested transactions made', (t) => {
    const { db, ns } = setup(t);
    assert.throws(() =>
      db.transaction(() => {
        db.transaction(() => ns.images.create({ name: 'inner', target: desc('i') }));
        throw new Error('outer fails');
      }),
    );
    assert.equal(ns.images.list().length, 0);
  });

  test('writes of a committed transaction are visible to another connection', (t) => {
    const { db, ns, path } = setup(t);
    const other = reopen(t, path);
    db.transaction(() => ns.images.create({ name: 'a', target: desc('a') }));
    assert.equal(other.namespace('default').images.get('a').name, 'a');
  });

  test('uncommitted writes are invisible to another connection', (t) => {
    const { db, ns, path } = setup(t);
    const other = reopen(t, path);
    db.transaction(() => {
      ns.images.create({ name: 'a', target: desc('a') });
      notFound(() => other.namespace('default').images.get('a'));
    });
    assert.equal(other.namespace('default').images.get('a').name, 'a');
  });
});

describe('MetadataDB.readSnapshot', () => {
  test('sees one consistent view while another connection commits', (t) => {
    const { db, ns, path } = setup(t);
    ns.images.create({ name: 'a', target: desc('a') });
    const writer = reopen(t, path).namespace('default');

    const seen = db.readSnapshot(() => {
      const first = ns.images.list().map((i) => i.name);
      writer.images.create({ name: 'b', target: desc('b') });
      writer.images.delete('a');
      const second = ns.images.list().map((i) => i.name);
      return { first, second };
    });
    assert.deepEqual(seen.first, ['a']);
    assert.deepEqual(seen.second, ['a'], 'a write committed by another connection leaked into the snapshot');
    // After the snapshot ends, the new state is visible.
    assert.deepEqual(
      ns.images.list().map((i) => i.name),
      ['b'],
    );
  });

  test('returns the callback value and leaves no transaction open', (t) => {
    const { db } = setup(t);
    assert.equal(
      db.readSnapshot(() => 'v'),
      'v',
    );
    assert.equal(db.sqlite.inTransaction, false);
  });

  test('inside a transaction, sees that transaction’s own writes', (t) => {
    const { db, ns } = setup(t);
    db.transaction(() => {
      ns.images.create({ name: 'a', target: desc('a') });
      assert.deepEqual(
        db.readSnapshot(() => ns.images.list().map((i) => i.name)),
        ['a'],
      );
    });
  });
});
