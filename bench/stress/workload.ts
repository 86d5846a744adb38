/**
 * The stress workload: a mix of operations chosen by a seeded PRNG — pulls of a rotating
 * set of images (shared and unique layers, some with discardContent), image deletions,
 * leases that are created and expire or are deleted, and GC runs — by several concurrent
 * workers until a deadline or an operation budget. The operations go to a StressTarget:
 * the library (one Client) or the service (CLI processes talking to `layerpool serve`).
 */
import type { Client } from '../../src/client.js';
import { isNotFound } from '../../src/errors.js';
import { Rng } from '../fixtures/prng.js';
import type { PublishedImage } from '../lib/images.js';

export const WORKLOAD_DEFAULTS = {
  /** Relative weights of the operations. */
  weights: { pull: 10, delete: 3, lease: 3, gc: 1 },
  /** Probability that a pull lets GC free its layer blobs afterwards. */
  discardContent: 0.15,
  /** A lease lives at most this long. */
  maxLeaseMs: 2_000,
  /** One pull may not take longer (the images are small). */
  pullTimeoutMs: 120_000,
} as const;

export type Operation = keyof typeof WORKLOAD_DEFAULTS.weights;

/**
 * Named operation mixes: `default`, and `gc-heavy`, where deletions and collections are
 * as frequent as pulls, so a crash lands in a GC sweep (rows gone, folders being removed)
 * as often as in a pull.
 */
export const WORKLOAD_MIXES: Record<string, Record<Operation, number>> = {
  default: WORKLOAD_DEFAULTS.weights,
  'gc-heavy': { pull: 4, delete: 4, lease: 2, gc: 5 },
};

/** Where the operations go. Deleting a missing image or lease is NotFound. */
export interface StressTarget {
  pull(ref: string, options: { maxConcurrentDownloads: number; discardContent: boolean }): Promise<void>;
  deleteImage(name: string, options: { sync: boolean }): Promise<void>;
  /** A lease expiring in `expireInMs`, protecting `digest` when given; returns its id. */
  createLease(expireInMs: number, digest: string | undefined): Promise<string>;
  deleteLease(id: string, options: { sync: boolean }): Promise<void>;
  gc(): Promise<void>;
}

/** The library: one Client shared by every worker. */
export function libraryTarget(client: Client): StressTarget {
  return {
    pull: async (ref, options) => {
      await client.pull(ref, { ...options, signal: AbortSignal.timeout(WORKLOAD_DEFAULTS.pullTimeoutMs) });
    },
    deleteImage: (name, options) => client.deleteImage(name, options),
    createLease: async (expireInMs, digest) => {
      const lease = client.leases.create({ expireInMs });
      if (digest !== undefined) client.leases.addResource(lease.id, { type: 'content', id: digest });
      return lease.id;
    },
    deleteLease: (id, options) => client.leases.delete(id, options),
    gc: async () => {
      await client.gc();
    },
  };
}

export interface WorkloadCounters {
  pulls: number;
  pullsFailed: number;
  deletes: number;
  leases: number;
  gcs: number;
  /** Failed operations by error code (`LP_ERR_*`, or the error's name). */
  errors: Record<string, number>;
}

export function newCounters(): WorkloadCounters {
  return { pulls: 0, pullsFailed: 0, deletes: 0, leases: 0, gcs: 0, errors: {} };
}

export function formatCounters(c: WorkloadCounters): string {
  return `${c.pulls} pulls (${c.pullsFailed} failed), ${c.deletes} deletes, ${c.leases} leases, ${c.gcs} GCs`;
}

export interface WorkloadOptions {
  target: StressTarget;
  images: readonly PublishedImage[];
  seed: string;
  /** Concurrent workers. */
  concurrency: number;
  /** Stop starting operations at this time (Date.now() scale). */
  deadline: number;
  /** Stop after this many operations in all. */
  maxOperations: number;
  counters: WorkloadCounters;
  /** Relative weights of the operations (WORKLOAD_MIXES); default WORKLOAD_DEFAULTS.weights. */
  weights?: Record<Operation, number>;
  /** Told about every failed operation. */
  onError?: (operation: Operation, err: unknown) => void;
}

function pickOperation(rng: Rng, weights: Record<Operation, number>): Operation {
  const entries = Object.entries(weights) as [Operation, number][];
  let roll = rng.int(entries.reduce((n, [, w]) => n + w, 0));
  for (const [operation, weight] of entries) {
    if (roll < weight) return operation;
    roll -= weight;
  }
  return 'pull';
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : ((err as Error).name ?? 'Error');
}

/** Deleting what another worker deleted first is the normal race, not a failure. */
function ignoreNotFound(err: unknown): void {
  if (!isNotFound(err)) throw err;
}

async function operate(operation: Operation, rng: Rng, options: WorkloadOptions): Promise<void> {
  const { target, images, counters } = options;
  const image = rng.pick(images);
  switch (operation) {
    case 'pull':
      counters.pulls++;
      await target.pull(image.ref, { maxConcurrentDownloads: rng.range(1, 3), discardContent: rng.chance(WORKLOAD_DEFAULTS.discardContent) });
      return;
    case 'delete':
      counters.deletes++;
      await target.deleteImage(image.ref, { sync: rng.chance(0.3) }).catch(ignoreNotFound);
      return;
    case 'lease': {
      counters.leases++;
      const id = await target.createLease(rng.int(WORKLOAD_DEFAULTS.maxLeaseMs), image.built.manifests[0]?.descriptor.digest);
      // Half the leases are deleted (some with a collection), the rest expire on their own.
      if (rng.chance(0.5)) {
        await new Promise((resolve) => setTimeout(resolve, rng.int(200)));
        await target.deleteLease(id, { sync: rng.chance(0.3) }).catch(ignoreNotFound);
      }
      return;
    }
    case 'gc':
      counters.gcs++;
      await target.gc();
      return;
  }
}

/** Run the workers to the deadline or the operation budget; resolves when all have stopped. */
export async function runWorkload(options: WorkloadOptions): Promise<void> {
  let started = 0;
  const worker = async (index: number): Promise<void> => {
    const rng = new Rng(`${options.seed}/worker-${index}`);
    while (Date.now() < options.deadline && started < options.maxOperations) {
      started++;
      const operation = pickOperation(rng, options.weights ?? WORKLOAD_DEFAULTS.weights);
      try {
        await operate(operation, rng, options);
      } catch (err) {
        if (operation === 'pull') options.counters.pullsFailed++;
        const code = errorCode(err);
        options.counters.errors[code] = (options.counters.errors[code] ?? 0) + 1;
        options.onError?.(operation, err);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, i) => worker(i)));
}
