/**
 * Ingest records: a write in progress into the content store, by ref. The row keeps
 * what the bytes are expected to be (digest, total) so a restart can resume the write
 * and GC can keep the expected blob's dependants alive.
 */
import { validateDigest } from '../digest.js';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { decodeLabels, isUniqueViolation, requireChanged, type MetadataDB } from './db.js';
import { labelField, parseFilters } from './filters.js';
import { validateLabels, type Labels } from './labels.js';

export interface IngestRecord {
  ref: string;
  /** Folder name under `root/content/ingest/`. */
  dir: string;
  expected?: string;
  total?: number;
  labels: Labels;
  expiresAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export interface IngestInput {
  ref: string;
  dir: string;
  expected?: string;
  total?: number;
  labels?: Labels;
  expiresAt?: Date;
}

interface IngestRow {
  ref: string;
  dir: string;
  expected: string | null;
  total: number | null;
  labels: string;
  expires_at: number | null;
  created_at: number;
  updated_at: number;
}

const MAX_REF = 4096;

function fromRow(row: IngestRow): IngestRecord {
  const record: IngestRecord = {
    ref: row.ref,
    dir: row.dir,
    labels: decodeLabels(row.labels),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
  if (row.expected !== null) record.expected = row.expected;
  if (row.total !== null) record.total = row.total;
  if (row.expires_at !== null) record.expiresAt = new Date(row.expires_at);
  return record;
}

export function validateIngestRef(ref: string): void {
  // eslint-disable-next-line no-control-regex
  if (typeof ref !== 'string' || ref.length === 0 || ref.length > MAX_REF || /[\u0000-\u001f\u007f]/.test(ref)) {
    throw new InvalidArgumentError(`invalid ingest ref ${JSON.stringify(String(ref).slice(0, 100))}`);
  }
}

/**
 * The ingest folder name is joined under `root/content/ingest/` and later removed
 * recursively: it must be one plain path component, never `..`, `/x` or `a/b`.
 */
function validateIngestDir(dir: string): void {
  if (typeof dir !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(dir)) {
    throw new InvalidArgumentError(`invalid ingest folder name ${JSON.stringify(String(dir).slice(0, 100))}`);
  }
}

function validateExpectation(expected: string | undefined, total: number | undefined): void {
  if (expected !== undefined) validateDigest(expected);
  if (total !== undefined && (!Number.isSafeInteger(total) || total < 0)) {
    throw new InvalidArgumentError(`invalid ingest total ${String(total)}`);
  }
}

export class IngestMetadata {
  constructor(
    private readonly db: MetadataDB,
    readonly namespace: string,
  ) {}

  find(ref: string): IngestRecord | undefined {
    const row = this.db.sqlite
      .prepare('SELECT * FROM ingests WHERE namespace = ? AND ref = ?')
      .get(this.namespace, ref) as IngestRow | undefined;
    return row && fromRow(row);
  }

  get(ref: string): IngestRecord {
    const record = this.find(ref);
    if (!record) throw new NotFoundError(`ingest ${ref} not found`);
    return record;
  }

  /** Ingests matching any filter (fields: ref, expected, labels.<key>). */
  list(...filters: string[]): IngestRecord[] {
    const match = parseFilters(filters);
    const rows = this.db.sqlite
      .prepare('SELECT * FROM ingests WHERE namespace = ? ORDER BY ref')
      .all(this.namespace) as IngestRow[];
    return rows.map(fromRow).filter((record) =>
      match((path) => {
        if (path[0] === 'ref') return record.ref;
        if (path[0] === 'expected') return record.expected;
        if (path[0] === 'labels') return labelField(record.labels, path);
        return undefined;
      }),
    );
  }

  create(input: IngestInput): IngestRecord {
    validateIngestRef(input.ref);
    validateIngestDir(input.dir);
    validateExpectation(input.expected, input.total);
    if (input.expiresAt !== undefined && !(input.expiresAt instanceof Date && Number.isFinite(input.expiresAt.getTime()))) {
      // An invalid Date would be stored as NULL: an ingest that never expires.
      throw new InvalidArgumentError(`ingest ${input.ref}: invalid expiry date`);
    }
    const labels = validateLabels(input.labels);
    const now = Date.now();
    try {
      this.db.transaction(() =>
        this.db.sqlite
          .prepare(
            `INSERT INTO ingests (namespace, ref, dir, expected, total, labels, expires_at, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            this.namespace,
            input.ref,
            input.dir,
            input.expected ?? null,
            input.total ?? null,
            JSON.stringify(labels),
            input.expiresAt?.getTime() ?? null,
            now,
            now,
          ),
      );
    } catch (err) {
      if (isUniqueViolation(err)) {
        if (this.find(input.ref) === undefined) {
          throw new AlreadyExistsError(`ingest folder ${input.dir} is already used by another ingest`);
        }
        throw new AlreadyExistsError(`ingest ${input.ref} already exists`);
      }
      throw err;
    }
    return this.get(input.ref);
  }

  /** Change what a resumed ingest is expected to become. */
  setExpectation(ref: string, expected: string | undefined, total: number | undefined): IngestRecord {
    validateExpectation(expected, total);
    this.db.transaction(() =>
      requireChanged(
        this.db.sqlite
          .prepare('UPDATE ingests SET expected = ?, total = ?, updated_at = ? WHERE namespace = ? AND ref = ?')
          .run(expected ?? null, total ?? null, Date.now(), this.namespace, ref),
        `ingest ${ref}`,
      ),
    );
    return this.get(ref);
  }

  delete(ref: string): void {
    this.db.transaction(() =>
      requireChanged(
        this.db.sqlite.prepare('DELETE FROM ingests WHERE namespace = ? AND ref = ?').run(this.namespace, ref),
        `ingest ${ref}`,
      ),
    );
  }
}

/** Folder names of every ingest in any namespace: the ones that must stay on disk. */
export function ingestDirsInUse(db: MetadataDB): Set<string> {
  const rows = db.sqlite.prepare('SELECT dir FROM ingests').all() as { dir: string }[];
  return new Set(rows.map((r) => r.dir));
}

/** Every ingest row, in every namespace, for start-up reconciliation. */
export function allIngests(db: MetadataDB): { namespace: string; ref: string; dir: string }[] {
  return db.sqlite.prepare('SELECT namespace, ref, dir FROM ingests').all() as { namespace: string; ref: string; dir: string }[];
}
