/**
 * Mark and sweep over the whole metadata database, with containerd's rules.
 *
 *   roots:  images (unless expired), unexpired leases and their resources, objects
 *           labelled gc.root, unexpired ingests, ingests a writer has open
 *   edges:  image -> target; gc.ref.content[.name|/name] -> content;
 *           gc.ref.snapshot.<sn>[/name] -> snapshot; snapshot -> parent; ingest -> expected
 *   flat:   a flat lease keeps its resources but does not follow their labels
 *
 * Marking and deleting rows happen in ONE write transaction, so nothing created while
 * GC runs can be deleted by it (SQLite serialises writers, and this process's other work
 * waits on the event loop). Files go after the transaction: blobs through the content
 * store's file lock, snapshot folders renamed `<id>-removing` then deleted.
 */
import { performance } from 'node:perf_hooks';
import type { Descriptor } from '../descriptor.js';
import { logger } from '../log.js';
import type { MetadataDB } from '../metadata/db.js';
import { Label } from '../metadata/labels.js';
import type { Root } from '../root.js';

const log = logger('gc');

export interface GCStats {
  removed: { content: number; snapshots: number; ingests: number; leases: number; images: number };
  /** Bytes of blob files deleted (shared blobs still used elsewhere are not counted). */
  bytesFreed: number;
  markMs: number;
  /** Time the database was locked for marking and deleting rows: the pause others see. */
  pauseMs: number;
  /** Time spent deleting files after the transaction. */
  filesMs: number;
}

/** Removes the on-disk data of snapshots whose rows GC deleted. */
export interface SnapshotFolderRemover {
  removeSnapshotFolders(snapshotter: string, ids: number[]): Promise<void>;
}

export interface CollectorOptions {
  root: Root;
  /** Snapshot data removal; without it GC deletes rows and leaves folders to the snapshotters' cleanup. */
  snapshots?: SnapshotFolderRemover;
  /** "now" for expiry decisions; tests move time. */
  now?: () => Date;
}

type NodeKind = 'content' | 'snapshot' | 'ingest' | 'image' | 'lease';

interface ContentRow {
  namespace: string;
  digest: string;
  size: number;
  labels: string;
}
interface SnapshotRow {
  id: number;
  namespace: string;
  snapshotter: string;
  key: string;
  parent: string | null;
  labels: string;
}
interface IngestRow {
  namespace: string;
  ref: string;
  dir: string;
  expected: string | null;
  expires_at: number | null;
}
interface ImageRow {
  namespace: string;
  name: string;
  target: string;
  labels: string;
}
interface LeaseRow {
  namespace: string;
  id: string;
  labels: string;
}
interface ResourceRow {
  namespace: string;
  lease: string;
  type: string;
  id: string;
}

const nodeKey = (kind: NodeKind, namespace: string, id: string): string => `${kind}\u0000${namespace}\u0000${id}`;
const snapshotId = (snapshotter: string, key: string): string => `${snapshotter}/${key}`;

/**
 * The references a set of labels makes, as containerd reads them. `gc.ref.content` must
 * be followed by nothing, `.` or `/`: a key that only shares the prefix
 * (`gc.ref.contentX`) is not a reference.
 */
export function labelReferences(labels: Record<string, string>): { content: string[]; snapshots: string[]; root: boolean } {
  const content: string[] = [];
  const snapshots: string[] = [];
  let root = false;
  for (const [key, value] of Object.entries(labels)) {
    if (key === Label.gcRoot) {
      root = true;
    } else if (key.startsWith(Label.gcRefContent)) {
      const next = key[Label.gcRefContent.length];
      if (next === undefined || next === '.' || next === '/') content.push(value);
    } else if (key.startsWith(Label.gcRefSnapshotPrefix)) {
      const rest = key.slice(Label.gcRefSnapshotPrefix.length);
      const snapshotter = rest.split('/')[0] as string;
      if (snapshotter !== '') snapshots.push(snapshotId(snapshotter, value));
    }
  }
  return { content, snapshots, root };
}

/** A time label: undefined when absent; an unparsable value is logged and ignored (it still protects). */
function expiry(labels: Record<string, string>, what: string): Date | undefined {
  const value = labels[Label.gcExpire];
  if (value === undefined) return undefined;
  const when = new Date(value);
  if (Number.isNaN(when.getTime()) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) {
    log.info({ object: what, value }, 'ignoring invalid gc.expire value');
    return undefined;
  }
  return when;
}

export class Collector {
  private readonly root: Root;
  private readonly snapshots: SnapshotFolderRemover | undefined;
  private readonly now: () => Date;
  private running: Promise<GCStats> | undefined;

  constructor(options: CollectorOptions) {
    this.root = options.root;
    this.snapshots = options.snapshots;
    this.now = options.now ?? (() => new Date());
  }

  /** Run one collection; a call while one runs waits for the next one (never two at once). */
  async collect(): Promise<GCStats> {
    while (this.running) await this.running.catch(() => undefined);
    const run = this.run();
    this.running = run;
    try {
      return await run;
    } finally {
      this.running = undefined;
    }
  }

  private async run(): Promise<GCStats> {
    const db = this.root.db;
    const started = performance.now();
    let markMs = 0;
    const doomed = db.transaction(() => {
      const plan = this.mark(db);
      markMs = performance.now() - started;
      this.deleteRows(db, plan);
      return plan;
    });
    const pauseMs = performance.now() - started;

    const filesStarted = performance.now();
    let bytesFreed = 0;
    for (const digest of new Set(doomed.content.map((c) => c.digest))) {
      const size = await this.root.content.files.blobSize(digest);
      if (await this.root.content.removeBlobIfUnused(digest)) bytesFreed += size ?? 0;
    }
    for (const ingest of doomed.ingests) await this.root.content.files.removeIngest(ingest.dir);
    if (this.snapshots) {
      const bySnapshotter = new Map<string, number[]>();
      for (const s of doomed.snapshots) bySnapshotter.set(s.snapshotter, [...(bySnapshotter.get(s.snapshotter) ?? []), s.id]);
      for (const [snapshotter, ids] of bySnapshotter) await this.snapshots.removeSnapshotFolders(snapshotter, ids);
    }
    this.root.db.restoreReserve();
    const stats: GCStats = {
      removed: {
        content: doomed.content.length,
        snapshots: doomed.snapshots.length,
        ingests: doomed.ingests.length,
        leases: doomed.leases.length,
        images: doomed.images.length,
      },
      bytesFreed,
      markMs,
      pauseMs,
      filesMs: performance.now() - filesStarted,
    };
    log.debug(stats, 'garbage collection finished');
    return stats;
  }

  private mark(db: MetadataDB) {
    const now = this.now().getTime();
    const sql = db.sqlite;
    const content = sql.prepare('SELECT namespace, digest, size, labels FROM content').all() as ContentRow[];
    const snapshots = sql.prepare('SELECT id, namespace, snapshotter, key, parent, labels FROM snapshots').all() as SnapshotRow[];
    const ingests = sql.prepare('SELECT namespace, ref, dir, expected, expires_at FROM ingests').all() as IngestRow[];
    const images = sql.prepare('SELECT namespace, name, target, labels FROM images').all() as ImageRow[];
    const leases = sql.prepare('SELECT namespace, id, labels FROM leases').all() as LeaseRow[];
    const resources = sql.prepare('SELECT namespace, lease, type, id FROM lease_resources').all() as ResourceRow[];

    const contentByKey = new Map(content.map((c) => [nodeKey('content', c.namespace, c.digest), c]));
    const snapshotByKey = new Map(snapshots.map((s) => [nodeKey('snapshot', s.namespace, snapshotId(s.snapshotter, s.key)), s]));
    const ingestByKey = new Map(ingests.map((i) => [nodeKey('ingest', i.namespace, i.ref), i]));
    const labelCache = new Map<string, Record<string, string>>();
    const labelsOf = (key: string, text: string) => {
      let parsed = labelCache.get(key);
      if (!parsed) labelCache.set(key, (parsed = JSON.parse(text) as Record<string, string>));
      return parsed;
    };

    // Two marks: `full` (references followed) and `flat` (kept, references not followed).
    const full = new Set<string>();
    const flat = new Set<string>();
    const queue: { key: string; flat: boolean }[] = [];
    const visit = (key: string, isFlat: boolean) => {
      if (full.has(key) || (isFlat && flat.has(key))) return;
      (isFlat ? flat : full).add(key);
      queue.push({ key, flat: isFlat });
    };
    const visitRefs = (namespace: string, labels: Record<string, string>) => {
      const refs = labelReferences(labels);
      for (const digest of refs.content) visit(nodeKey('content', namespace, digest), false);
      for (const snap of refs.snapshots) visit(nodeKey('snapshot', namespace, snap), false);
    };

    // Roots.
    const expiredLeases: LeaseRow[] = [];
    const liveLeases = new Map<string, boolean>();
    for (const lease of leases) {
      const labels = labelsOf(`lease:${lease.namespace}:${lease.id}`, lease.labels);
      const expires = expiry(labels, `lease ${lease.id}`);
      if (expires !== undefined && expires.getTime() < now) expiredLeases.push(lease);
      else liveLeases.set(`${lease.namespace}\u0000${lease.id}`, labels[Label.gcFlat] !== undefined);
    }
    for (const r of resources) {
      const isFlat = liveLeases.get(`${r.namespace}\u0000${r.lease}`);
      if (isFlat === undefined) continue;
      if (r.type === 'content') visit(nodeKey('content', r.namespace, r.id), isFlat);
      else if (r.type === 'ingests') visit(nodeKey('ingest', r.namespace, r.id), isFlat);
      else if (r.type.startsWith('snapshots/')) visit(nodeKey('snapshot', r.namespace, snapshotId(r.type.slice(10), r.id)), isFlat);
    }
    const expiredImages: ImageRow[] = [];
    for (const image of images) {
      const labels = labelsOf(`image:${image.namespace}:${image.name}`, image.labels);
      const expires = expiry(labels, `image ${image.name}`);
      if (expires !== undefined && expires.getTime() < now) {
        expiredImages.push(image);
        continue;
      }
      visit(nodeKey('content', image.namespace, (JSON.parse(image.target) as Descriptor).digest), false);
      visitRefs(image.namespace, labels);
    }
    for (const c of content) {
      if (labelReferences(labelsOf(`content:${c.namespace}:${c.digest}`, c.labels)).root) {
        visit(nodeKey('content', c.namespace, c.digest), false);
      }
    }
    for (const s of snapshots) {
      if (labelReferences(labelsOf(`snapshot:${s.id}`, s.labels)).root) {
        visit(nodeKey('snapshot', s.namespace, snapshotId(s.snapshotter, s.key)), false);
      }
    }
    for (const i of ingests) {
      const open = this.root.locks.isLocked(`ingest://${i.namespace}/${i.ref}`);
      if (open || (i.expires_at !== null && i.expires_at >= now)) visit(nodeKey('ingest', i.namespace, i.ref), false);
    }

    // Edges.
    while (queue.length > 0) {
      const { key, flat: isFlat } = queue.pop() as { key: string; flat: boolean };
      const c = contentByKey.get(key);
      if (c) {
        if (!isFlat) visitRefs(c.namespace, labelsOf(`content:${c.namespace}:${c.digest}`, c.labels));
        continue;
      }
      const s = snapshotByKey.get(key);
      if (s) {
        // A snapshot is useless without its parents, flat or not.
        if (s.parent !== null) visit(nodeKey('snapshot', s.namespace, snapshotId(s.snapshotter, s.parent)), isFlat);
        if (!isFlat) visitRefs(s.namespace, labelsOf(`snapshot:${s.id}`, s.labels));
        continue;
      }
      const i = ingestByKey.get(key);
      if (i?.expected) visit(nodeKey('content', i.namespace, i.expected), isFlat);
    }

    const marked = (key: string) => full.has(key) || flat.has(key);
    return {
      content: content.filter((c) => !marked(nodeKey('content', c.namespace, c.digest))),
      snapshots: snapshots.filter((s) => !marked(nodeKey('snapshot', s.namespace, snapshotId(s.snapshotter, s.key)))),
      ingests: ingests.filter((i) => !marked(nodeKey('ingest', i.namespace, i.ref))),
      leases: expiredLeases,
      images: expiredImages,
    };
  }

  private deleteRows(db: MetadataDB, plan: ReturnType<Collector['mark']>): void {
    const sql = db.sqlite;
    const deleteContent = sql.prepare('DELETE FROM content WHERE namespace = ? AND digest = ?');
    for (const c of plan.content) deleteContent.run(c.namespace, c.digest);
    const deleteIngest = sql.prepare('DELETE FROM ingests WHERE namespace = ? AND ref = ?');
    for (const i of plan.ingests) deleteIngest.run(i.namespace, i.ref);
    const deleteLease = sql.prepare('DELETE FROM leases WHERE namespace = ? AND id = ?');
    for (const l of plan.leases) deleteLease.run(l.namespace, l.id);
    const deleteImage = sql.prepare('DELETE FROM images WHERE namespace = ? AND name = ?');
    for (const m of plan.images) deleteImage.run(m.namespace, m.name);

    // Children before parents (foreign keys). Unmarked snapshots' children are unmarked
    // too (a marked child marks its parent), so deleting leaves first always terminates.
    const remaining = new Map(plan.snapshots.map((s) => [s.id, s]));
    const deleteSnapshot = sql.prepare('DELETE FROM snapshots WHERE id = ?');
    while (remaining.size > 0) {
      const parents = new Set<string>();
      for (const s of remaining.values()) {
        if (s.parent !== null) parents.add(`${s.namespace}\u0000${s.snapshotter}\u0000${s.parent}`);
      }
      let progressed = false;
      for (const s of [...remaining.values()]) {
        if (parents.has(`${s.namespace}\u0000${s.snapshotter}\u0000${s.key}`)) continue;
        deleteSnapshot.run(s.id);
        remaining.delete(s.id);
        progressed = true;
      }
      if (!progressed) throw new Error('snapshot parent cycle in metadata');
    }
  }
}
