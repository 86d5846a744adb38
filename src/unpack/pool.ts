/**
 * The worker pool that applies layers (Piscina). One pool per Client; its size defaults
 * to the number of cores, since decompress + tar apply + hashing are CPU-bound and the
 * main thread mostly waits on the network.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { ApplyStats } from '../diff/types.js';
import { canceledFrom, deserializeError, throwIfAborted, UnavailableError } from '../errors.js';
import { logger } from '../log.js';
import { onAbort } from '../sync/abort.js';
import type { ApplyTask, ApplyTaskResult } from '../../workers/apply.js';

const log = logger('pool');

export interface ApplyPoolOptions {
  /** Worker threads; default availableParallelism(). */
  size?: number;
  /** Memory cap per worker (MiB) for the V8 heap; bytes are streamed, so this stays small. Default 256. */
  maxOldGenerationSizeMb?: number;
  /** How long a cancelled apply may take to stop before its worker is terminated (ms). Default 10 s. */
  stopGraceMs?: number;
}

/** Where the worker module is: workers/apply.ts under tsx, dist/workers/apply.js once built. */
function workerFilename(): string {
  const extension = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return new URL(`../../workers/apply.${extension}`, import.meta.url).href;
}

export class ApplyPool {
  private readonly piscina: Piscina;
  private readonly stopGraceMs: number;
  readonly size: number;

  constructor(options: ApplyPoolOptions = {}) {
    this.size = Math.max(1, options.size ?? availableParallelism());
    this.stopGraceMs = options.stopGraceMs ?? 10_000;
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
   * Apply one layer in a worker. Cancelling `signal` asks the worker to stop through
   * `stop` (the task's feed): it closes its files and returns, so the coordinator can
   * remove the prepared snapshot and get its space back. Only a worker that has not
   * stopped after `stopGraceMs` (stuck in a syscall) is terminated: the task then fails
   * at once, while the thread ends whenever its syscall returns.
   */
  async apply(task: ApplyTask, options: { signal?: AbortSignal; stop: (reason: string) => void }): Promise<ApplyStats> {
    const { signal, stop } = options;
    throwIfAborted(signal);
    const terminate = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const unsubscribe = signal
      ? onAbort(signal, () => {
          stop(canceledFrom(signal).message);
          timer = setTimeout(() => {
            log.warn({ graceMs: this.stopGraceMs }, 'a cancelled layer apply did not stop: terminating its worker');
            terminate.abort();
          }, this.stopGraceMs);
        })
      : undefined;
    let result: ApplyTaskResult;
    try {
      result = (await this.piscina.run(task, { transferList: [task.feed], signal: terminate.signal })) as ApplyTaskResult;
    } catch (err) {
      if (signal?.aborted) throw canceledFrom(signal);
      // Only a worker that died (out of memory, a crash) throws: task errors are returned.
      throw new UnavailableError(`layer apply worker failed: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
      unsubscribe?.();
    }
    if (signal?.aborted) throw canceledFrom(signal);
    if ('error' in result) throw deserializeError(result.error);
    return result.stats;
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}
