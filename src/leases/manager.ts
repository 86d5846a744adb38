/**
 * Leases: what keeps a pull's half-made objects alive until the image record points at
 * them. A lease holds content, ingests and snapshots; while it is unexpired GC keeps
 * them (and, unless the lease is flat, everything they reference).
 */
import { InvalidArgumentError } from '../errors.js';
import type { MetadataDB } from '../metadata/db.js';
import { Label, type Labels } from '../metadata/labels.js';
import type { LeaseRecord, LeaseResource } from '../metadata/leases.js';

export interface LeaseOptions {
  /** Given id; default a fresh one. */
  id?: string;
  labels?: Labels;
  /** Expire this many milliseconds from now (sets `containerd.io/gc.expire`). */
  expireInMs?: number;
  /** Keep only the resources themselves, not what they reference (`containerd.io/gc.flat`). */
  flat?: boolean;
}

export interface DeleteLeaseOptions {
  /** Run a garbage collection before returning, so what only the lease kept is gone. */
  sync?: boolean;
}

/** What a lease manager needs from GC: a collection on demand. */
export interface GarbageCollector {
  collect(): Promise<unknown>;
  /** A deletion happened: the scheduler may run a collection soon. */
  notifyDeletion?(): void;
}

export interface LeaseManagerOptions {
  db: MetadataDB;
  namespace: string;
  gc?: GarbageCollector;
}

export class LeaseManager {
  private readonly db: MetadataDB;
  readonly namespace: string;
  private readonly gc: GarbageCollector | undefined;

  constructor(options: LeaseManagerOptions) {
    this.db = options.db;
    this.namespace = options.namespace;
    this.gc = options.gc;
  }

  private get store() {
    return this.db.namespace(this.namespace).leases;
  }

  create(options: LeaseOptions = {}): LeaseRecord {
    const labels: Labels = { ...(options.labels ?? {}) };
    if (options.expireInMs !== undefined) {
      if (!Number.isFinite(options.expireInMs) || options.expireInMs < 0) {
        throw new InvalidArgumentError(`lease expiry must be a non-negative duration, got ${String(options.expireInMs)}`);
      }
      labels[Label.gcExpire] = new Date(Date.now() + options.expireInMs).toISOString();
    }
    if (options.flat) labels[Label.gcFlat] = 'true';
    return this.store.create({ ...(options.id === undefined ? {} : { id: options.id }), labels });
  }

  get(id: string): LeaseRecord {
    return this.store.get(id);
  }

  list(...filters: string[]): LeaseRecord[] {
    return this.store.list(...filters);
  }

  async delete(id: string, options: DeleteLeaseOptions = {}): Promise<void> {
    this.store.delete(id);
    if (options.sync && this.gc) await this.gc.collect();
    else this.gc?.notifyDeletion?.();
  }

  addResource(id: string, resource: LeaseResource): void {
    this.store.addResource(id, resource);
  }

  deleteResource(id: string, resource: LeaseResource): void {
    this.store.deleteResource(id, resource);
  }

  listResources(id: string): LeaseResource[] {
    return this.store.listResources(id);
  }
}

export interface WithLeaseOptions extends LeaseOptions {
  /** Collect synchronously when the lease is released (default false: the scheduler decides). */
  syncOnRelease?: boolean;
}

/**
 * Run `fn` under a fresh lease and release it afterwards, whatever happens — containerd's
 * client.WithLease. The default expiry (24 h) bounds what a crashed process leaves
 * protected.
 */
export async function withLease<T>(
  leases: LeaseManager,
  fn: (leaseId: string) => Promise<T>,
  options: WithLeaseOptions = {},
): Promise<T> {
  const lease = leases.create({ expireInMs: 24 * 60 * 60 * 1000, ...options });
  try {
    return await fn(lease.id);
  } finally {
    await leases.delete(lease.id, { sync: options.syncOnRelease ?? false });
  }
}
