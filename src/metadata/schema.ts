/**
 * The database schema as an ordered list of migrations. `PRAGMA user_version` records
 * how many have run; each runs in one transaction, so a crash during an upgrade leaves
 * the previous version. Never edit a released migration: append a new one.
 */
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'namespaces, images, content, snapshots, leases, ingests',
    sql: `
      CREATE TABLE namespaces (
        name       TEXT PRIMARY KEY,
        labels     TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE images (
        namespace  TEXT NOT NULL REFERENCES namespaces(name),
        name       TEXT NOT NULL,
        target     TEXT NOT NULL,
        labels     TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, name)
      ) STRICT;

      CREATE TABLE content (
        namespace  TEXT NOT NULL REFERENCES namespaces(name),
        digest     TEXT NOT NULL,
        size       INTEGER NOT NULL CHECK (size >= 0),
        labels     TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, digest)
      ) STRICT;
      -- blob files are shared by namespaces: "is this digest used anywhere" must be cheap
      CREATE INDEX content_by_digest ON content (digest);

      -- AUTOINCREMENT: an id (the snapshot's folder name) is never reused, so a folder
      -- left by a crash can never be mistaken for a later snapshot's.
      CREATE TABLE snapshots (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        namespace   TEXT NOT NULL REFERENCES namespaces(name),
        snapshotter TEXT NOT NULL,
        key         TEXT NOT NULL,
        parent      TEXT,
        kind        TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
        labels      TEXT NOT NULL DEFAULT '{}',
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        UNIQUE (namespace, snapshotter, key),
        FOREIGN KEY (namespace, snapshotter, parent) REFERENCES snapshots (namespace, snapshotter, key)
      ) STRICT;
      CREATE INDEX snapshots_by_parent ON snapshots (namespace, snapshotter, parent);

      CREATE TABLE leases (
        namespace  TEXT NOT NULL REFERENCES namespaces(name),
        id         TEXT NOT NULL,
        labels     TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, id)
      ) STRICT;

      -- type: 'content' (id = digest), 'ingests' (id = ref), 'snapshots/<snapshotter>' (id = key)
      CREATE TABLE lease_resources (
        namespace TEXT NOT NULL,
        lease     TEXT NOT NULL,
        type      TEXT NOT NULL,
        id        TEXT NOT NULL,
        PRIMARY KEY (namespace, lease, type, id),
        FOREIGN KEY (namespace, lease) REFERENCES leases (namespace, id) ON DELETE CASCADE
      ) STRICT;

      CREATE TABLE ingests (
        namespace  TEXT NOT NULL REFERENCES namespaces(name),
        ref        TEXT NOT NULL,
        dir        TEXT NOT NULL UNIQUE,
        expected   TEXT,
        total      INTEGER,
        labels     TEXT NOT NULL DEFAULT '{}',
        expires_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, ref)
      ) STRICT;
    `,
  },
];
