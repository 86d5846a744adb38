/**
 * What a benchmark session produces: `bench/results/<date>.json` holds a BenchResults,
 * from which the HTML report and the README table are drawn. Kept small: medians and the
 * few samples behind them, one timeline per cold pull scenario.
 */
import type { MachineInfo } from './machine.js';
import type { LayerTimeline } from './pull-once.js';
import type { Summary } from './stats.js';

export interface Series {
  /** `layerpool`, `ctr`, `skopeo+umoci`, or a variant (`layerpool ×20`, `workers=2`). */
  label: string;
  /** The puller behind it (for colours and ratios). */
  puller: string;
  /** Milliseconds, one per run. */
  samples: number[];
  summary: Summary;
  /** Peak RSS per run, KiB (when measured). */
  rssKb?: Summary;
  /** layerpool: wall time of the child process (node start-up + open + pull + close). */
  processMs?: Summary;
}

export interface ImageFacts {
  name: string;
  layers: number;
  compressedBytes: number;
  uncompressedBytes: number;
}

export interface ScenarioResult {
  id: string;
  title: string;
  /** What is measured and how, one or two sentences. */
  what: string;
  image?: ImageFacts;
  series: Series[];
  /** Derived figures: `overheadPct`, `ratioToOnePull`, `blobBytesServedRatio`, ... */
  figures: Record<string, number | string>;
  /** Skipped pullers, failures, caveats. */
  notes: string[];
  /** One layerpool cold pull (the median run), layer by layer. */
  timeline?: LayerTimeline[];
  /** Raw text of a sub-benchmark (apply, gc). */
  output?: string;
  failed?: boolean;
}

export interface BenchResults {
  /** ISO time the session started. */
  date: string;
  /** The exact command, for the README. */
  command: string;
  quick: boolean;
  runs: number;
  machine: MachineInfo;
  /** How layerpool pulls were run: the built dist/ or tsx. */
  via: 'dist' | 'tsx';
  pageCache: 'dropped between cold runs' | 'not dropped (needs root and a writable /proc/sys/vm/drop_caches)';
  notes: string[];
  scenarios: ScenarioResult[];
}
