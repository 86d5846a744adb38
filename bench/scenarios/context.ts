/**
 * What every scenario gets from the runner, and the measuring loop they share: rounds
 * of pulls by several contenders (layerpool and peers, or layerpool variants), in
 * rotating order so none always goes first, each cold pull from a fresh session with
 * the page cache dropped, failures recorded as notes instead of ending the session.
 */
import type { PresetName } from '../fixtures/index.js';
import type { PublishedImage } from '../lib/images.js';
import type { NodeEntry, Puller, PullerSession, PullRequest, PullSample } from '../lib/puller.js';
import type { BlobTraffic, BenchRegistry } from '../lib/registry.js';
import type { ImageFacts, ScenarioResult, Series } from '../lib/results.js';
import { ratio, summarize } from '../lib/stats.js';

export interface ScenarioContext {
  quick: boolean;
  runs: number;
  /** The repository (cwd of child processes). */
  repoDir: string;
  registry: BenchRegistry;
  /** A preset's first image, built and pushed once per session (scaled down when quick). */
  image(preset: PresetName): Promise<PublishedImage>;
  layerpool: Puller;
  /** Peers that can run here. */
  peers: Puller[];
  /** A fresh folder for one session, on the registry's filesystem. */
  sessionDir(label: string): string;
  /** Drop the page cache before a cold pull (does nothing where not permitted). */
  dropCaches(): void;
  /** `dist/src/cli/main.js` when the build made it. */
  cliPath: string | undefined;
  /** How to run a TypeScript script of the repository (bench/gc, bench/apply). */
  tsScript(path: string): NodeEntry;
  log(line: string): void;
}

export interface Scenario {
  id: string;
  title: string;
  what: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}

export interface Contender {
  label: string;
  puller: Puller;
  request: PullRequest;
}

export interface MeasuredSample extends PullSample {
  /** Registry blob traffic during this pull. */
  traffic: Map<string, BlobTraffic>;
}

export interface RoundsResult {
  samples: Map<string, MeasuredSample[]>;
  series: Series[];
  notes: string[];
  /** A layerpool contender failed: the scenario failed. */
  layerpoolFailed: boolean;
}

export function imageFacts(image: PublishedImage): ImageFacts {
  return { name: image.name, layers: image.layers, compressedBytes: image.compressedBytes, uncompressedBytes: image.uncompressedBytes };
}

/** A failure as one short note line (the full output is in the console log). */
function message(err: unknown): string {
  const text = (err instanceof Error ? err.message : String(err)).split('\n').slice(0, 4).join(' / ');
  return text.length > 240 ? `${text.slice(0, 240)}…` : text;
}

function seriesOf(contender: Contender, samples: MeasuredSample[]): Series {
  const rss = samples.flatMap((s) => (s.rssKb === undefined ? [] : [s.rssKb]));
  const processMs = samples.flatMap((s) => (s.processMs === undefined ? [] : [s.processMs]));
  return {
    label: contender.label,
    puller: contender.puller.name,
    samples: samples.map((s) => Math.round(s.ms * 10) / 10),
    summary: summarize(samples.map((s) => s.ms)),
    ...(rss.length > 0 ? { rssKb: summarize(rss) } : {}),
    ...(processMs.length > 0 ? { processMs: summarize(processMs) } : {}),
  };
}

/**
 * `runs` rounds; in each, every contender pulls once. Cold: each pull opens a fresh
 * session and drops the page cache first. Warm: each contender keeps one session, primed
 * by an untimed pull, and every timed pull finds the image present.
 */
export async function rounds(ctx: ScenarioContext, contenders: Contender[], mode: 'cold' | 'warm'): Promise<RoundsResult> {
  const notes: string[] = [];
  const active = contenders.filter((c) => {
    const why = c.puller.unsupported({ ...c.request, ...(mode === 'warm' ? { warm: true } : {}) });
    if (why !== undefined) notes.push(`${c.label}: skipped, ${why}`);
    return why === undefined;
  });
  const samples = new Map<string, MeasuredSample[]>(active.map((c) => [c.label, []]));
  const failed = new Set<string>();
  const warmSessions = new Map<string, PullerSession>();
  const pullOnce = async (contender: Contender): Promise<void> => {
    let session = warmSessions.get(contender.label);
    if (session === undefined) {
      session = await contender.puller.open(ctx.sessionDir(contender.label));
      if (mode === 'warm') {
        await session.pull(contender.request).catch(async (err: unknown) => {
          await session?.close();
          throw err;
        });
        warmSessions.set(contender.label, session);
      }
    }
    try {
      if (mode === 'cold') ctx.dropCaches();
      const offset = ctx.registry.logOffset();
      const sample = await session.pull(contender.request);
      samples.get(contender.label)?.push({ ...sample, traffic: ctx.registry.blobTraffic(offset) });
      ctx.log(`  ${contender.label.padEnd(24)} ${(sample.ms / 1000).toFixed(3)} s${sample.rssKb === undefined ? '' : `  ${Math.round(sample.rssKb / 1024)} MiB peak RSS`}`);
    } finally {
      if (mode === 'cold') await session.close();
    }
  };
  try {
    for (let run = 0; run < ctx.runs; run++) {
      ctx.log(` run ${run + 1}/${ctx.runs}`);
      // Rotate the order each round: nobody always meets a cold disk or another's writeback.
      const order = active.map((_, i) => active[(i + run) % active.length] as Contender);
      for (const contender of order) {
        if (failed.has(contender.label)) continue;
        try {
          await pullOnce(contender);
        } catch (err) {
          failed.add(contender.label);
          notes.push(`${contender.label}: failed, ${message(err)}`);
          ctx.log(`  ${contender.label} FAILED: ${(err as Error).message}`);
        }
      }
    }
  } finally {
    for (const session of warmSessions.values()) await session.close();
  }
  const series = active.flatMap((c) => {
    const list = samples.get(c.label) ?? [];
    return list.length > 0 ? [seriesOf(c, list)] : [];
  });
  return { samples, series, notes, layerpoolFailed: active.some((c) => c.puller.name === 'layerpool' && failed.has(c.label)) };
}

/** `<a> ÷ <b>` figures: how long `a` takes as a fraction of `b` (below 1: `a` is faster). */
export function ratioFigures(series: Series[], a: string, others: readonly string[]): Record<string, number> {
  const figures: Record<string, number> = {};
  const base = series.find((s) => s.label === a);
  for (const label of others) {
    const value = ratio(base?.summary, series.find((s) => s.label === label)?.summary);
    if (value !== undefined) figures[`${a} ÷ ${label}`] = Math.round(value * 1000) / 1000;
  }
  return figures;
}

/** The median sample of a contender (the run shown as a timeline). */
export function medianSample<T extends PullSample>(list: readonly T[]): T | undefined {
  const sorted = [...list].sort((x, y) => x.ms - y.ms);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}
