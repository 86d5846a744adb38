/**
 * Snapshot records: per namespace and snapshotter, a key, its parent, its kind and
 * labels. The numeric id names the snapshot's folder on disk (`root/snapshots/<sn>/<id>`),
 * so a commit (active key -> committed name) never moves data.
 */
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { decodeLabels, isForeignKeyViolation, isUniqueViolation, type MetadataDB } from './db.js';
import { labelField, parseFilters } from './filters.js';
import { applyLabelFieldpaths, validateLabels, type Labels } from './labels.js';

export type SnapshotKind = 'active' | 'view' | 'committed';

export interface SnapshotRecord {
  id: number;
  snapshotter: string;
  key: string;
  parent?: string;
  kind: SnapshotKind;
  labels: Labels;
  createdAt: Date;
  updatedAt: Date;
}

export interface SnapshotInput {
  snapshotter: string;
  key: string;
  parent?: string;
  kind: 'active' | 'view';
  labels?: Labels;
}

interface SnapshotRow {
  id: number;
  snapshotter: string;
  key: string;
  parent: string | null;
  kind: SnapshotKind;
  labels: string;
  created_at: number;
  updated_at: number;
}

const SNAPSHOTTER_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const MAX_KEY = 4096;

function fromRow(row: SnapshotRow): SnapshotRecord {
  const record: SnapshotRecord = {
    id: row.id,
    snapshotter: row.snapshotter,
    key: row.key,
    kind: row.kind,
    labels: decodeLabels(row.labels),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
  if (row.parent !== null) record.parent = row.parent;
  return record;
}

export function validateSnapshotterName(name: string): void {
  if (typeof name !== 'string' || !SNAPSHOTTER_NAME.test(name)) {
    throw new InvalidArgumentError(`invalid snapshotter name ${JSON.stringify(String(name).slice(0, 100))}`);
  }
}

function validateKey(key: string, what = 'snapshot key'): void {
  // eslint-disable-next-line no-control-regex
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY || /[\u0000-\u001f\u007f]/.test(key)) {
    throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(String(key).slice(0, 100))}`);
  }
}

/** Fields a filter can select on: key (alias name), parent, kind, snapshotter, labels.<key>. */
function snapshotField(record: SnapshotRecord, fieldpath: readonly string[]): string | undefined {
  switch (fieldpath[0]) {
    case 'key':
    case 'name':
      return record.key;
    case 'parent':
      return record.parent;
    case 'kind':
      return record.kind;
    case 'snapshotter':
      return record.snapshotter;
    case 'labels':
      return labelField(record.labels, fieldpath);
    default:
      return undefined;
  }
}

export class SnapshotMetadata {
  constructor(
    private readonly db: MetadataDB,
    readonly namespace: string,
  ) {}

  get(snapshotter: string, key: string): SnapshotRecord {
    const row = this.db.sqlite
      .prepare('SELECT * FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?')
      .get(this.namespace, snapshotter, key) as SnapshotRow | undefined;
    if (!row) throw new NotFoundError(`snapshot ${key} not found in snapshotter ${snapshotter}`);
    return fromRow(row);
  }

  /** Snapshots of one snapshotter matching any of the filters, oldest first. */
  list(snapshotter: string, ...filters: string[]): SnapshotRecord[] {
    const match = parseFilters(filters);
    const rows = this.db.sqlite
      .prepare('SELECT * FROM snapshots WHERE namespace = ? AND snapshotter = ? ORDER BY id')
      .all(this.namespace, snapshotter) as SnapshotRow[];
    return rows.map(fromRow).filter((record) => match((path) => snapshotField(record, path)));
  }

  children(snapshotter: string, key: string): SnapshotRecord[] {
    const rows = this.db.sqlite
      .prepare('SELECT * FROM snapshots WHERE namespace = ? AND snapshotter = ? AND parent = ? ORDER BY id')
      .all(this.namespace, snapshotter, key) as SnapshotRow[];
    return rows.map(fromRow);
  }

  /** Record a new active or view snapshot; its parent must exist and be committed. */
  create(input: SnapshotInput): SnapshotRecord {
    validateSnapshotterName(input.snapshotter);
    validateKey(input.key);
    if (input.kind !== 'active' && input.kind !== 'view') {
      throw new InvalidArgumentError(`snapshot ${input.key}: kind must be active or view, got ${String(input.kind)}`);
    }
    const labels = validateLabels(input.labels);
    return this.db.transaction(() => {
      if (input.parent !== undefined) {
        validateKey(input.parent, 'parent key');
        const parent = this.get(input.snapshotter, input.parent);
        if (parent.kind !== 'committed') {
          throw new FailedPreconditionError(`parent ${input.parent} of snapshot ${input.key} is not committed`);
        }
      }
      const now = Date.now();
      try {
        this.db.sqlite
          .prepare(
            `INSERT INTO snapshots (namespace, snapshotter, key, parent, kind, labels, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(this.namespace, input.snapshotter, input.key, input.parent ?? null, input.kind, JSON.stringify(labels), now, now);
      } catch (err) {
        if (isUniqueViolation(err)) throw new AlreadyExistsError(`snapshot ${input.key} already exists`);
        throw err;
      }
      return this.get(input.snapshotter, input.key);
    });
  }

  /**
   * Turn an active snapshot into a committed one named `name`, keeping its id (and so
   * its folder). Labels, when given, replace the active snapshot's. `options.parent`
   * rebases it onto another committed parent (a snapshotter whose layers do not depend
   * on their parent decides whether that is allowed).
   */
  commit(snapshotter: string, key: string, name: string, labels?: Labels, options: { parent?: string } = {}): SnapshotRecord {
    validateKey(name, 'snapshot name');
    const clean = labels === undefined ? undefined : validateLabels(labels);
    return this.db.transaction(() => {
      const active = this.get(snapshotter, key);
      if (active.kind !== 'active') {
        throw new FailedPreconditionError(`snapshot ${key} is ${active.kind}, only an active snapshot can be committed`);
      }
      if (options.parent !== undefined) {
        validateKey(options.parent, 'parent key');
        if (this.get(snapshotter, options.parent).kind !== 'committed') {
          throw new FailedPreconditionError(`parent ${options.parent} of snapshot ${name} is not committed`);
        }
      }
      const parent = options.parent ?? active.parent ?? null;
      try {
        this.db.sqlite
          .prepare(
            `UPDATE snapshots SET key = ?, kind = 'committed', parent = ?, labels = ?, updated_at = ?
             WHERE namespace = ? AND snapshotter = ? AND key = ?`,
          )
          .run(name, parent, JSON.stringify(clean ?? active.labels), Date.now(), this.namespace, snapshotter, key);
      } catch (err) {
        if (isUniqueViolation(err)) throw new AlreadyExistsError(`snapshot ${name} already exists`);
        throw err;
      }
      return this.get(snapshotter, name);
    });
  }

  /** Update labels (`labels`, `labels.<key>` field paths; none replaces all labels). */
  update(snapshotter: string, key: string, labels: Labels, fieldpaths?: readonly string[]): SnapshotRecord {
    return this.db.transaction(() => {
      const current = this.get(snapshotter, key);
      const { labels: next, rest } = applyLabelFieldpaths(current.labels, labels, fieldpaths);
      if (rest.length > 0) throw new InvalidArgumentError(`snapshot: cannot update field ${JSON.stringify(rest[0])}`);
      this.db.sqlite
        .prepare('UPDATE snapshots SET labels = ?, updated_at = ? WHERE id = ?')
        .run(JSON.stringify(next), Date.now(), current.id);
      return this.get(snapshotter, key);
    });
  }

  /** Delete the record and return it (its id names the folder to remove). Children forbid it. */
  remove(snapshotter: string, key: string): SnapshotRecord {
    return this.db.transaction(() => {
      const record = this.get(snapshotter, key);
      try {
        this.db.sqlite.prepare('DELETE FROM snapshots WHERE id = ?').run(record.id);
      } catch (err) {
        if (isForeignKeyViolation(err)) {
          throw new FailedPreconditionError(`snapshot ${key} has children; remove them first`);
        }
        throw err;
      }
      return record;
    });
  }
}

/** Every snapshot id of a snapshotter, in any namespace: the folders that must stay. */
export function snapshotIdsInUse(db: MetadataDB, snapshotter: string): Set<number> {
  const rows = db.sqlite.prepare('SELECT id FROM snapshots WHERE snapshotter = ?').all(snapshotter) as { id: number }[];
  return new Set(rows.map((r) => r.id));
}
