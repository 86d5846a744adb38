/**
 * Lease records. A lease protects the resources attached to it from garbage
 * collection while a pull (or a user) works with them; GC rules live in src/gc.
 */
import { randomBytes } from 'node:crypto';
import { validateDigest } from '../digest.js';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { decodeLabels, isUniqueViolation, requireChanged, type MetadataDB } from './db.js';
import { labelField, parseFilters } from './filters.js';
import { validateLabels, type Labels } from './labels.js';
import { validateSnapshotterName } from './snapshots.js';

export interface LeaseRecord {
  id: string;
  labels: Labels;
  createdAt: Date;
}

/**
 * A resource a lease holds: `content` (id = digest), `ingests` (id = ingest ref) or
 * `snapshots/<snapshotter>` (id = snapshot key), as in containerd's lease API.
 */
export interface LeaseResource {
  type: string;
  id: string;
}

interface LeaseRow {
  id: string;
  labels: string;
  created_at: number;
}

const LEASE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$/;

function fromRow(row: LeaseRow): LeaseRecord {
  return { id: row.id, labels: decodeLabels(row.labels), createdAt: new Date(row.created_at) };
}

export function validateLeaseResource(resource: LeaseResource): void {
  if (typeof resource.id !== 'string' || resource.id.length === 0) {
    throw new InvalidArgumentError('lease resource id must be a non-empty string');
  }
  if (resource.type === 'content') {
    validateDigest(resource.id);
  } else if (resource.type.startsWith('snapshots/')) {
    validateSnapshotterName(resource.type.slice('snapshots/'.length));
  } else if (resource.type !== 'ingests') {
    throw new InvalidArgumentError(
      `invalid lease resource type ${JSON.stringify(resource.type)}: content, ingests or snapshots/<snapshotter>`,
    );
  }
}

/** A fresh lease id: sortable by time, unique by randomness. */
export function generateLeaseId(): string {
  return `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
}

export class LeaseStore {
  constructor(
    private readonly db: MetadataDB,
    readonly namespace: string,
  ) {}

  create(input: { id?: string; labels?: Labels } = {}): LeaseRecord {
    const id = input.id ?? generateLeaseId();
    if (!LEASE_ID.test(id)) throw new InvalidArgumentError(`invalid lease id ${JSON.stringify(id.slice(0, 100))}`);
    const labels = validateLabels(input.labels);
    try {
      this.db.transaction(() =>
        this.db.sqlite
          .prepare('INSERT INTO leases (namespace, id, labels, created_at) VALUES (?, ?, ?, ?)')
          .run(this.namespace, id, JSON.stringify(labels), Date.now()),
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw new AlreadyExistsError(`lease ${id} already exists`);
      throw err;
    }
    return this.get(id);
  }

  get(id: string): LeaseRecord {
    const row = this.db.sqlite
      .prepare('SELECT * FROM leases WHERE namespace = ? AND id = ?')
      .get(this.namespace, id) as LeaseRow | undefined;
    if (!row) throw new NotFoundError(`lease ${id} not found`);
    return fromRow(row);
  }

  /** Leases matching any filter (fields: id, labels.<key>), oldest first. */
  list(...filters: string[]): LeaseRecord[] {
    const match = parseFilters(filters);
    const rows = this.db.sqlite
      .prepare('SELECT * FROM leases WHERE namespace = ? ORDER BY created_at, id')
      .all(this.namespace) as LeaseRow[];
    return rows
      .map(fromRow)
      .filter((lease) => match((path) => (path[0] === 'id' ? lease.id : path[0] === 'labels' ? labelField(lease.labels, path) : undefined)));
  }

  /** Delete the lease and its resource list (the resources themselves are GC's business). */
  delete(id: string): void {
    this.db.transaction(() =>
      requireChanged(
        this.db.sqlite.prepare('DELETE FROM leases WHERE namespace = ? AND id = ?').run(this.namespace, id),
        `lease ${id}`,
      ),
    );
  }

  /** Attach a resource; attaching it twice is a no-op. */
  addResource(id: string, resource: LeaseResource): void {
    validateLeaseResource(resource);
    this.db.transaction(() => {
      this.get(id);
      this.db.sqlite
        .prepare('INSERT OR IGNORE INTO lease_resources (namespace, lease, type, id) VALUES (?, ?, ?, ?)')
        .run(this.namespace, id, resource.type, resource.id);
    });
  }

  deleteResource(id: string, resource: LeaseResource): void {
    this.db.transaction(() => {
      this.get(id);
      this.db.sqlite
        .prepare('DELETE FROM lease_resources WHERE namespace = ? AND lease = ? AND type = ? AND id = ?')
        .run(this.namespace, id, resource.type, resource.id);
    });
  }

  listResources(id: string): LeaseResource[] {
    this.get(id);
    return this.db.sqlite
      .prepare('SELECT type, id FROM lease_resources WHERE namespace = ? AND lease = ? ORDER BY type, id')
      .all(this.namespace, id) as LeaseResource[];
  }
}
