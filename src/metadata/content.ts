/**
 * Content records: which blobs a namespace has, with their size and labels. The bytes
 * live in the content store (`root/content/blobs`), shared by every namespace.
 */
import { validateDigest } from '../digest.js';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { decodeLabels, isUniqueViolation, requireChanged, type MetadataDB } from './db.js';
import { labelField, parseFilters } from './filters.js';
import { applyLabelFieldpaths, validateLabels, type Labels } from './labels.js';

export interface ContentInfo {
  digest: string;
  size: number;
  labels: Labels;
  createdAt: Date;
  updatedAt: Date;
}

export interface ContentInput {
  digest: string;
  size: number;
  labels?: Labels;
}

interface ContentRow {
  digest: string;
  size: number;
  labels: string;
  created_at: number;
  updated_at: number;
}

function fromRow(row: ContentRow): ContentInfo {
  return {
    digest: row.digest,
    size: row.size,
    labels: decodeLabels(row.labels),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** Fields a filter can select on: digest, size, labels.<key>. */
function contentField(info: ContentInfo, fieldpath: readonly string[]): string | undefined {
  switch (fieldpath[0]) {
    case 'digest':
      return info.digest;
    case 'size':
      return String(info.size);
    case 'labels':
      return labelField(info.labels, fieldpath);
    default:
      return undefined;
  }
}

export class ContentMetadata {
  constructor(
    private readonly db: MetadataDB,
    readonly namespace: string,
  ) {}

  has(digest: string): boolean {
    return (
      this.db.sqlite.prepare('SELECT 1 FROM content WHERE namespace = ? AND digest = ?').get(this.namespace, digest) !==
      undefined
    );
  }

  info(digest: string): ContentInfo {
    validateDigest(digest);
    const row = this.db.sqlite
      .prepare('SELECT * FROM content WHERE namespace = ? AND digest = ?')
      .get(this.namespace, digest) as ContentRow | undefined;
    if (!row) throw new NotFoundError(`content ${digest} not found`);
    return fromRow(row);
  }

  list(...filters: string[]): ContentInfo[] {
    const match = parseFilters(filters);
    const rows = this.db.sqlite
      .prepare('SELECT * FROM content WHERE namespace = ? ORDER BY digest')
      .all(this.namespace) as ContentRow[];
    return rows.map(fromRow).filter((info) => match((path) => contentField(info, path)));
  }

  /** Record a blob in this namespace; AlreadyExists if it is recorded already. */
  add(input: ContentInput): ContentInfo {
    validateDigest(input.digest);
    if (!Number.isSafeInteger(input.size) || input.size < 0) {
      throw new InvalidArgumentError(`content ${input.digest}: invalid size ${String(input.size)}`);
    }
    const labels = validateLabels(input.labels);
    const now = Date.now();
    try {
      this.db.transaction(() =>
        this.db.sqlite
          .prepare('INSERT INTO content (namespace, digest, size, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
          .run(this.namespace, input.digest, input.size, JSON.stringify(labels), now, now),
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw new AlreadyExistsError(`content ${input.digest} already exists`);
      throw err;
    }
    return this.info(input.digest);
  }

  /** Update labels (`labels`, `labels.<key>` field paths; none replaces all labels). */
  update(input: { digest: string; labels?: Labels }, fieldpaths?: readonly string[]): ContentInfo {
    return this.db.transaction(() => {
      const current = this.info(input.digest);
      const { labels, rest } = applyLabelFieldpaths(current.labels, input.labels, fieldpaths);
      if (rest.length > 0) throw new InvalidArgumentError(`content: cannot update field ${JSON.stringify(rest[0])}`);
      this.db.sqlite
        .prepare('UPDATE content SET labels = ?, updated_at = ? WHERE namespace = ? AND digest = ?')
        .run(JSON.stringify(labels), Date.now(), this.namespace, input.digest);
      return this.info(input.digest);
    });
  }

  delete(digest: string): void {
    validateDigest(digest);
    this.db.transaction(() =>
      requireChanged(
        this.db.sqlite.prepare('DELETE FROM content WHERE namespace = ? AND digest = ?').run(this.namespace, digest),
        `content ${digest}`,
      ),
    );
  }
}

/** True if any namespace still records this blob (so its file must stay). */
export function isDigestInUse(db: MetadataDB, digest: string): boolean {
  return db.sqlite.prepare('SELECT 1 FROM content WHERE digest = ? LIMIT 1').get(digest) !== undefined;
}

/** Every digest recorded in any namespace. */
export function digestsInUse(db: MetadataDB): Set<string> {
  const rows = db.sqlite.prepare('SELECT DISTINCT digest FROM content').all() as { digest: string }[];
  return new Set(rows.map((r) => r.digest));
}
