/**
 * Who pulls in a benchmark: layerpool (a library pull in a child process) and the peers
 * (bench/peers: containerd's ctr, skopeo + umoci), behind one interface so every scenario
 * runs them side by side on the same images from the same registry.
 *
 *   puller.open(dir) ─▶ session (fresh, empty state: a root, a daemon) ─▶ pull() ... ─▶ close()
 *
 * A cold run opens a session, drops the page cache, pulls once and closes; a warm run
 * pulls again in the same session.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError } from '../../src/errors.js';
import type { PublishedImage } from './images.js';
import { outputTail, runMeasured } from './proc.js';
import type { PullOnceResult } from './pull-once.js';

export interface PullRequest {
  image: PublishedImage;
  /** Pulls of the image started at once. Default 1. */
  concurrent?: number;
  syncFs?: boolean;
  /** Apply workers (layerpool only). */
  workers?: number;
  /** Layers downloading at once per pull. */
  maxConcurrentDownloads?: number;
  /** A re-pull of an image the session has already (asked of `unsupported` only). */
  warm?: boolean;
}

export interface PullSample {
  /** The figure compared across pullers, in ms: layerpool's pull wall time, a peer's process wall time. */
  ms: number;
  /** Wall time of the whole child process (start-up, open, pull, close), when `ms` is less. */
  processMs?: number;
  /** Peak RSS of everything that did the pull, KiB. */
  rssKb?: number;
  /** layerpool only: what the child reported. */
  detail?: PullOnceResult;
}

export interface PullerSession {
  pull(request: PullRequest): Promise<PullSample>;
  close(): Promise<void>;
}

export interface Puller {
  /** `layerpool`, `ctr`, `skopeo+umoci`. */
  readonly name: string;
  /** Why this puller cannot run on this machine, or undefined when it can. */
  unavailable(): Promise<string | undefined>;
  /** Why it cannot do this request (concurrency, options only layerpool has), or undefined. */
  unsupported(request: PullRequest): string | undefined;
  /** A fresh, empty session in `dir` (which it owns until close). */
  open(dir: string): Promise<PullerSession>;
}

export const PULL_DEFAULTS = { maxConcurrentDownloads: 3 } as const;

/** How to start a Node script of this repository: through tsx, or the built dist/. */
export interface NodeEntry {
  command: string;
  /** Arguments before the script's own (e.g. `--import tsx bench/lib/pull-once.ts`). */
  args: string[];
}

/** layerpool: each pull is `pull-once` in a child process, so its VmHWM is its own. */
export class LayerpoolPuller implements Puller {
  constructor(
    private readonly pullOnce: NodeEntry,
    private readonly cwd: string,
    /** `layerpool`, or `layerpool@<label>` for a baseline build run as a peer. */
    readonly name = 'layerpool',
  ) {}

  async unavailable(): Promise<string | undefined> {
    return undefined;
  }

  unsupported(): string | undefined {
    return undefined;
  }

  async open(dir: string): Promise<PullerSession> {
    const root = join(dir, 'root');
    return {
      pull: async (request) => {
        const args = [
          ...this.pullOnce.args,
          '--root', root,
          '--ref', request.image.ref,
          '--concurrent', String(request.concurrent ?? 1),
          '--max-downloads', String(request.maxConcurrentDownloads ?? PULL_DEFAULTS.maxConcurrentDownloads),
          ...(request.workers === undefined ? [] : ['--workers', String(request.workers)]),
          ...(request.syncFs ? ['--sync-fs'] : []),
        ];
        // The child reads its own VmHWM at the end: no GNU time wrapper needed.
        const run = await runMeasured(this.pullOnce.command, args, { cwd: this.cwd, rss: false });
        const last = run.stdout.trim().split('\n').at(-1) ?? '';
        if (run.code !== 0 || !last.startsWith('{')) {
          throw new FailedPreconditionError(`layerpool pull of ${request.image.ref} failed (exit ${run.code ?? run.signal}):\n${outputTail(run)}`);
        }
        const detail = JSON.parse(last) as PullOnceResult;
        return { ms: detail.pullMs, processMs: run.wallMs, ...(detail.vmHWMKb === undefined ? {} : { rssKb: detail.vmHWMKb }), detail };
      },
      close: () => rm(dir, { recursive: true, force: true }),
    };
  }
}
