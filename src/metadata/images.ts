/** Image records: a name pointing at a target descriptor (index or manifest), plus labels. */
import { validateDescriptor, type Descriptor } from '../descriptor.js';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { decodeLabels, isUniqueViolation, requireChanged, type MetadataDB } from './db.js';
import { labelField, parseFilters } from './filters.js';
import { applyLabelFieldpaths, validateLabels, type Labels } from './labels.js';

export interface ImageRecord {
  name: string;
  target: Descriptor;
  labels: Labels;
  createdAt: Date;
  updatedAt: Date;
}

export interface ImageInput {
  name: string;
  target: Descriptor;
  labels?: Labels;
}

interface ImageRow {
  name: string;
  target: string;
  labels: string;
  created_at: number;
  updated_at: number;
}

const MAX_NAME = 4096;

function fromRow(row: ImageRow): ImageRecord {
  return {
    name: row.name,
    target: JSON.parse(row.target) as Descriptor,
    labels: decodeLabels(row.labels),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

function validateName(name: string): void {
  // eslint-disable-next-line no-control-regex
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new InvalidArgumentError(`invalid image name ${JSON.stringify(String(name).slice(0, 100))}`);
  }
}

/** Fields a filter can select on: name, target.digest, target.mediatype, labels.<key>. */
function imageField(image: ImageRecord, fieldpath: readonly string[]): string | undefined {
  switch (fieldpath[0]) {
    case 'name':
      return image.name;
    case 'target':
      if (fieldpath[1] === 'digest') return image.target.digest;
      if (fieldpath[1] === 'mediatype' || fieldpath[1] === 'mediaType') return image.target.mediaType;
      return undefined;
    case 'labels':
      return labelField(image.labels, fieldpath);
    default:
      return undefined;
  }
}

export class ImageStore {
  constructor(
    private readonly db: MetadataDB,
    readonly namespace: string,
  ) {}

  get(name: string): ImageRecord {
    const row = this.db.sqlite
      .prepare('SELECT * FROM images WHERE namespace = ? AND name = ?')
      .get(this.namespace, name) as ImageRow | undefined;
    if (!row) throw new NotFoundError(`image ${name} not found`);
    return fromRow(row);
  }

  /** Images matching any of the filters (containerd syntax), by name. */
  list(...filters: string[]): ImageRecord[] {
    const match = parseFilters(filters);
    const rows = this.db.sqlite
      .prepare('SELECT * FROM images WHERE namespace = ? ORDER BY name')
      .all(this.namespace) as ImageRow[];
    return rows.map(fromRow).filter((image) => match((path) => imageField(image, path)));
  }

  create(input: ImageInput): ImageRecord {
    validateName(input.name);
    validateDescriptor(input.target, `image ${input.name} target`);
    const labels = validateLabels(input.labels);
    const now = Date.now();
    try {
      this.db.transaction(() =>
        this.db.sqlite
          .prepare('INSERT INTO images (namespace, name, target, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
          .run(this.namespace, input.name, JSON.stringify(input.target), JSON.stringify(labels), now, now),
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw new AlreadyExistsError(`image ${input.name} already exists`);
      throw err;
    }
    return this.get(input.name);
  }

  /**
   * Update an image. Field paths: `target`, `labels`, `labels.<key>`; none means target
   * and labels both replaced.
   */
  update(input: ImageInput, fieldpaths?: readonly string[]): ImageRecord {
    validateName(input.name);
    return this.db.transaction(() => {
      const current = this.get(input.name);
      const { labels, rest } = applyLabelFieldpaths(current.labels, input.labels, fieldpaths);
      let target = current.target;
      const replaceTarget = !fieldpaths || fieldpaths.length === 0 || rest.includes('target');
      for (const path of rest) {
        if (path !== 'target') throw new InvalidArgumentError(`image: cannot update field ${JSON.stringify(path)}`);
      }
      if (replaceTarget) target = validateDescriptor(input.target, `image ${input.name} target`);
      this.db.sqlite
        .prepare('UPDATE images SET target = ?, labels = ?, updated_at = ? WHERE namespace = ? AND name = ?')
        .run(JSON.stringify(target), JSON.stringify(labels), Date.now(), this.namespace, input.name);
      return this.get(input.name);
    });
  }

  /** Create, or replace target and labels of, the named image. */
  put(input: ImageInput): ImageRecord {
    return this.db.transaction(() => {
      try {
        return this.update(input);
      } catch (err) {
        if (err instanceof NotFoundError) return this.create(input);
        throw err;
      }
    });
  }

  delete(name: string): void {
    this.db.transaction(() =>
      requireChanged(
        this.db.sqlite.prepare('DELETE FROM images WHERE namespace = ? AND name = ?').run(this.namespace, name),
        `image ${name}`,
      ),
    );
  }
}
