/**
 * The worker pool that applies layers (Piscina). One pool per Client; its size defaults
 * to the number of cores, since decompress + tar apply + hashing are CPU-bound and the
 * main thread mostly waits on the network.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { ApplyStats } from '../diff/types.js';
import { canceledFrom, deserializeError, UnavailableError } from '../errors.js';
import { logger } from '../log.js';
import type { ApplyTask, ApplyTaskResult } from '../../workers/apply.js';

const log = logger('pool');

export interface ApplyPoolOptions {
  /** Worker threads; default availableParallelism(). */
  size?: number;
  /** Memory cap per worker (MiB) for the V8 heap; bytes are streamed, so this stays small. Default 256. */
  maxOldGenerationSizeMb?: number;
}

/** Where the worker module is: workers/apply.ts under tsx, dist/workers/apply.js once built. */
function workerFilename(): string {
  const extension = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return new URL(`../../workers/apply.${extension}`, import.meta.url).href;
}

export class ApplyPool {
  private readonly piscina: Piscina;
  readonly size: number;

  constructor(options: ApplyPoolOptions = {}) {
    this.size = Math.max(1, options.size ?? availableParallelism());
    this.piscina = new Piscina({
      filename: workerFilename(),
      minThreads: this.size,
      maxThreads: this.size,
      // Tasks wait in the pool's queue; the coordinator bounds how many it sends.
      maxQueue: 'auto',
      idleTimeout: 30_000,
      resourceLimits: { maxOldGenerationSizeMb: options.maxOldGenerationSizeMb ?? 256 },
    });
    this.piscina.on('error', (err: unknown) => log.error({ err }, 'worker error'));
  }

  /**
   * Apply one layer in a worker. Cancelling the signal ends the task (Piscina stops the
   * worker and starts a fresh one); the coordinator then removes the prepared snapshot.
   */
  async apply(task: ApplyTask, signal?: AbortSignal): Promise<ApplyStats> {
    const transferList = task.feed ? [task.feed] : [];
    let result: ApplyTaskResult;
    try {
      result = (await this.piscina.run(task, { transferList, ...(signal ? { signal } : {}) })) as ApplyTaskResult;
    } catch (err) {
      if (signal?.aborted) throw canceledFrom(signal);
      // Only a worker that died (out of memory, a crash) throws: task errors are returned.
      throw new UnavailableError(`layer apply worker failed: ${(err as Error).message}`, { cause: err });
    }
    if ('error' in result) throw deserializeError(result.error);
    return result.stats;
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}
