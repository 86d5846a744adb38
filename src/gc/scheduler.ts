/**
 * When to collect, like containerd's gc scheduler: after enough deletions or mutations,
 * after a delay, never twice at once, and never so often that GC pauses take more than
 * `pauseThreshold` of the time (a pause of P ms is followed by at least P/threshold ms
 * without GC).
 */
import { logger } from '../log.js';
import type { Collector, GCStats } from './collector.js';

const log = logger('gc');

export interface SchedulerOptions {
  /** Upper bound of the fraction of time spent paused in GC. Default 0.02. */
  pauseThreshold?: number;
  /** Deletions that trigger a collection; 0 disables. Default 0 (containerd's default). */
  deletionThreshold?: number;
  /** Mutations that trigger a collection; 0 disables. Default 100. */
  mutationThreshold?: number;
  /** Delay between a trigger and the collection (ms). Default 0. */
  scheduleDelayMs?: number;
  /** First collection this long after start() (ms); negative disables. Default 100. */
  startupDelayMs?: number;
}

export const kSchedulerDefaults: Required<SchedulerOptions> = {
  pauseThreshold: 0.02,
  deletionThreshold: 0,
  mutationThreshold: 100,
  scheduleDelayMs: 0,
  startupDelayMs: 100,
};

export class GCScheduler {
  private readonly options: Required<SchedulerOptions>;
  private deletions = 0;
  private mutations = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private lastEnd = 0;
  private lastPauseMs = 0;
  private stopped = false;
  private inFlight: Promise<GCStats> | undefined;
  /** Stats of the last collection, for observability. */
  last: GCStats | undefined;

  constructor(
    private readonly collector: Collector,
    options: SchedulerOptions = {},
  ) {
    this.options = { ...kSchedulerDefaults, ...options };
  }

  start(): void {
    if (this.options.startupDelayMs >= 0) this.scheduleAt(Date.now() + this.options.startupDelayMs);
  }

  /** Record a change; enough of them schedule a collection. */
  notifyMutation(deletion = false): void {
    if (deletion) this.deletions += 1;
    this.mutations += 1;
    const { deletionThreshold, mutationThreshold, scheduleDelayMs } = this.options;
    if ((deletionThreshold > 0 && this.deletions >= deletionThreshold) || (mutationThreshold > 0 && this.mutations >= mutationThreshold)) {
      this.scheduleAt(Date.now() + scheduleDelayMs);
    }
  }

  notifyDeletion(): void {
    this.notifyMutation(true);
  }

  /** Collect now (after a running collection ends) and return its stats: `leases.delete({sync})`. */
  collect(): Promise<GCStats> {
    return this.run();
  }

  /** Stop scheduling and wait for a running collection. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight?.catch(() => undefined);
  }

  private scheduleAt(when: number): void {
    if (this.stopped) return;
    // The pause budget: after a pause of P, wait P/threshold before the next collection.
    const earliest = this.lastEnd + this.lastPauseMs / this.options.pauseThreshold;
    const at = Math.max(when, earliest);
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.run().catch((err: unknown) => log.error({ err }, 'scheduled garbage collection failed'));
    }, Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  private async run(): Promise<GCStats> {
    this.deletions = 0;
    this.mutations = 0;
    const run = this.collector.collect();
    this.inFlight = run;
    try {
      const stats = await run;
      this.last = stats;
      this.lastPauseMs = stats.pauseMs;
      this.lastEnd = Date.now();
      return stats;
    } finally {
      if (this.inFlight === run) this.inFlight = undefined;
    }
  }
}
