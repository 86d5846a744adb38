/**
 * Namespaces isolate images, content, snapshots and leases of different users of one
 * root (as `k8s.io` and `moby` share one containerd). A blob written in two namespaces
 * is stored once on disk.
 */
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { decodeLabels, isUniqueViolation, requireChanged, type MetadataDB } from './db.js';
import { applyLabelFieldpaths, validateLabels, type Labels } from './labels.js';

export interface Namespace {
  name: string;
  labels: Labels;
  createdAt: Date;
  updatedAt: Date;
}

interface NamespaceRow {
  name: string;
  labels: string;
  created_at: number;
  updated_at: number;
}

// containerd's namespace rule: label-like, at most 76 characters.
const NAME = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const MAX_NAME = 76;

const OBJECT_TABLES = ['images', 'content', 'snapshots', 'leases', 'ingests'] as const;

function fromRow(row: NamespaceRow): Namespace {
  return {
    name: row.name,
    labels: decodeLabels(row.labels),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

export class NamespaceStore {
  constructor(private readonly db: MetadataDB) {}

  static validateName(name: string): void {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME || !NAME.test(name)) {
      throw new InvalidArgumentError(
        `invalid namespace ${JSON.stringify(String(name).slice(0, 100))}: letters and digits separated by . _ or -, at most ${MAX_NAME} characters`,
      );
    }
  }

  exists(name: string): boolean {
    return this.db.sqlite.prepare('SELECT 1 FROM namespaces WHERE name = ?').get(name) !== undefined;
  }

  create(name: string, labels?: Labels): Namespace {
    NamespaceStore.validateName(name);
    const clean = validateLabels(labels);
    const now = Date.now();
    try {
      this.db.transaction(() =>
        this.db.sqlite
          .prepare('INSERT INTO namespaces (name, labels, created_at, updated_at) VALUES (?, ?, ?, ?)')
          .run(name, JSON.stringify(clean), now, now),
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw new AlreadyExistsError(`namespace ${name} already exists`);
      throw err;
    }
    return this.get(name);
  }

  /** Create the namespace unless it exists; returns it either way. */
  ensure(name: string, labels?: Labels): Namespace {
    NamespaceStore.validateName(name);
    return this.db.transaction(() => (this.exists(name) ? this.get(name) : this.create(name, labels)));
  }

  get(name: string): Namespace {
    const row = this.db.sqlite.prepare('SELECT * FROM namespaces WHERE name = ?').get(name) as NamespaceRow | undefined;
    if (!row) throw new NotFoundError(`namespace ${name} not found`);
    return fromRow(row);
  }

  list(): Namespace[] {
    return (this.db.sqlite.prepare('SELECT * FROM namespaces ORDER BY name').all() as NamespaceRow[]).map(fromRow);
  }

  updateLabels(name: string, labels: Labels, fieldpaths?: readonly string[]): Namespace {
    return this.db.transaction(() => {
      const current = this.get(name);
      const { labels: next, rest } = applyLabelFieldpaths(current.labels, labels, fieldpaths);
      if (rest.length > 0) throw new InvalidArgumentError(`namespace: cannot update field ${rest[0]}`);
      this.db.sqlite
        .prepare('UPDATE namespaces SET labels = ?, updated_at = ? WHERE name = ?')
        .run(JSON.stringify(next), Date.now(), name);
      return this.get(name);
    });
  }

  /** Delete an empty namespace; one that still holds objects is FailedPrecondition. */
  delete(name: string): void {
    this.db.transaction(() => {
      for (const table of OBJECT_TABLES) {
        if (this.db.sqlite.prepare(`SELECT 1 FROM ${table} WHERE namespace = ? LIMIT 1`).get(name) !== undefined) {
          throw new FailedPreconditionError(`namespace ${name} must be empty to be deleted, but it still has ${table}`);
        }
      }
      requireChanged(this.db.sqlite.prepare('DELETE FROM namespaces WHERE name = ?').run(name), `namespace ${name}`);
    });
  }
}
