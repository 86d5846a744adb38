/**
 * One measured library pull, in a process of its own so that its peak RSS (VmHWM: the
 * coordinator and its worker threads are one process) belongs to this pull alone:
 *
 *   node --import tsx bench/lib/pull-once.ts --root <dir> --ref <ref> [--concurrent 20]
 *        [--workers N] [--sync-fs] [--max-downloads N]
 *   node dist/bench/lib/pull-once.js ...                      (the built library)
 *
 * Opens a Client on the root, runs `--concurrent` pulls of the ref at once (one Client,
 * so they share dedup and the pool), closes it, and prints one JSON line (PullOnceResult).
 * The per-layer timings and progress events of a pull become the report's timeline.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client } from '../../src/client.js';
import { InvalidArgumentError } from '../../src/errors.js';
import type { PullProgressEvent } from '../../src/unpack/progress.js';
import type { UnpackResult } from '../../src/unpack/unpacker.js';
import { positiveInteger, runMain } from './cli.js';
import { readVmHWM } from './proc.js';

/** One layer of the timeline, times in ms from the start of the pull. */
export interface LayerTimeline {
  index: number;
  digest: string;
  compressedBytes: number;
  uncompressedBytes: number;
  /** First bytes seen → all bytes in the content store. Absent when the layer existed. */
  fetch?: [number, number];
  /** Worker apply (decompress + tar + diffID), streaming while the fetch runs. */
  apply?: [number, number];
  /** Its turn in chain order → committed. */
  commit?: [number, number];
}

export interface PullOnceResult {
  openMs: number;
  /** Wall time of the pulls (all of them, started together). */
  pullMs: number;
  /** Each pull's own `durationMs`. */
  pulls: number[];
  closeMs: number;
  layersApplied: number;
  bytesFetched: number;
  /** Worker threads of the apply pool. */
  workers: number;
  timeline: LayerTimeline[];
  /** Peak RSS of this process at the end, KiB. */
  vmHWMKb: number | undefined;
}

interface LayerMarks {
  firstBytes?: number;
  allBytes?: number;
}

/** Fetch marks from progress events: when bytes first arrived and when all were in. */
function recordFetches(marks: Map<number, LayerMarks>, pullStart: number): (event: PullProgressEvent) => void {
  return (event) => {
    if (event.type !== 'layer') return;
    const now = Math.round((performance.now() - pullStart) * 10) / 10;
    const mark = marks.get(event.index) ?? {};
    if (event.fetched > 0 && mark.firstBytes === undefined) mark.firstBytes = now;
    if (event.total > 0 && event.fetched >= event.total && mark.allBytes === undefined && event.status !== 'exists') mark.allBytes = now;
    marks.set(event.index, mark);
  };
}

function timelineOf(unpacked: UnpackResult | undefined, marks: Map<number, LayerMarks>, pullStart: number): LayerTimeline[] {
  if (unpacked === undefined) return [];
  // Tenths of a millisecond are plenty for a chart, and keep the results file small.
  const at = (t: number) => Math.round((t - pullStart) * 10) / 10;
  let previousCommit = 0;
  return unpacked.layers.map((layer) => {
    const mark = marks.get(layer.index) ?? {};
    const started = at(layer.startedAt);
    const applied = at(layer.appliedAt);
    const committed = at(layer.committedAt);
    // A commit waits for the layers below it: its lane starts when both it and they are done.
    const commitStart = Math.max(applied, previousCommit);
    previousCommit = committed;
    return {
      index: layer.index,
      digest: layer.digest,
      compressedBytes: layer.stats.compressedBytes,
      uncompressedBytes: layer.stats.uncompressedBytes,
      fetch: [mark.firstBytes ?? started, mark.allBytes ?? applied],
      apply: [started, applied],
      commit: [commitStart, committed],
    };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      root: { type: 'string' },
      ref: { type: 'string' },
      concurrent: { type: 'string' },
      workers: { type: 'string' },
      'sync-fs': { type: 'boolean' },
      'max-downloads': { type: 'string' },
    },
  });
  if (values.root === undefined || values.ref === undefined) throw new InvalidArgumentError('pull-once needs --root <dir> and --ref <ref>');
  const concurrent = values.concurrent === undefined ? 1 : positiveInteger('concurrent', values.concurrent);
  const workers = values.workers === undefined ? undefined : positiveInteger('workers', values.workers);
  const maxConcurrentDownloads = values['max-downloads'] === undefined ? undefined : positiveInteger('max-downloads', values['max-downloads']);

  const opened = performance.now();
  const client = await Client.open({ root: values.root, gc: false, ...(workers === undefined ? {} : { workers }) });
  const openMs = performance.now() - opened;
  const marks = Array.from({ length: concurrent }, () => new Map<number, LayerMarks>());
  const pullStart = performance.now();
  const results = await Promise.all(
    marks.map((pullMarks) =>
      client.pull(values.ref as string, {
        ...(values['sync-fs'] ? { syncFs: true } : {}),
        ...(maxConcurrentDownloads === undefined ? {} : { maxConcurrentDownloads }),
        progress: recordFetches(pullMarks, pullStart),
      }),
    ),
  );
  // Of concurrent pulls, one applies each layer and the others find it committed: the
  // timeline is the pull that applied the most.
  const applied = results.map((r) => r.unpacked[0]?.layers.length ?? 0);
  const busiest = applied.indexOf(Math.max(...applied));
  const pullMs = performance.now() - pullStart;
  const closing = performance.now();
  await client.close();
  const result: PullOnceResult = {
    openMs,
    pullMs,
    pulls: results.map((r) => r.durationMs),
    closeMs: performance.now() - closing,
    layersApplied: results.reduce((n, r) => n + r.unpacked.reduce((m, u) => m + u.layersApplied, 0), 0),
    bytesFetched: results.reduce((n, r) => n + r.unpacked.reduce((m, u) => m + u.bytesFetched, 0), 0),
    workers: workers ?? availableParallelism(),
    timeline: timelineOf(results[busiest]?.unpacked[0], marks[busiest] ?? new Map(), pullStart),
    vmHWMKb: readVmHWM('self'),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

runMain('pull-once', async () => {
  await main();
  return 0;
});
