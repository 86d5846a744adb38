/**
 * Pull scenarios: cold pulls of each fixture size side by side with the peers, 20
 * concurrent pulls of one image (with the registry's blob traffic), syncFs on vs off,
 * a warm re-pull, and apply-pool scaling.
 */
import { availableParallelism } from 'node:os';
import type { PresetName } from '../fixtures/index.js';
import type { ScenarioResult } from '../lib/results.js';
import { ratio } from '../lib/stats.js';
import type { PublishedImage } from '../lib/images.js';
import { imageFacts, medianSample, ratioFigures, rounds, type Contender, type MeasuredSample, type RoundsResult, type Scenario, type ScenarioContext } from './context.js';

const CONCURRENT_PULLS = 20;

/** A scenario's result from its rounds: their series and notes, the image, derived figures. */
function fromRounds(
  scenario: Omit<Scenario, 'run'>,
  image: PublishedImage,
  measured: RoundsResult,
  figures: Record<string, number>,
  more: Pick<ScenarioResult, 'timeline'> & { notes?: string[] } = {},
): ScenarioResult {
  return {
    id: scenario.id,
    title: scenario.title,
    what: scenario.what,
    image: imageFacts(image),
    series: measured.series,
    figures,
    notes: [...(more.notes ?? []), ...measured.notes],
    ...(more.timeline === undefined || more.timeline.length === 0 ? {} : { timeline: more.timeline }),
    ...(measured.layerpoolFailed ? { failed: true } : {}),
  };
}

/** layerpool and every peer pull the same image, one label each. */
function sideBySide(ctx: ScenarioContext, image: PublishedImage, mode: 'cold' | 'warm'): Promise<RoundsResult> {
  return rounds(ctx, [ctx.layerpool, ...ctx.peers].map((puller) => ({ label: puller.name, puller, request: { image } })), mode);
}

/** Cold pull of one preset's image by layerpool and every peer. */
export function coldPull(preset: PresetName, title: string): Scenario {
  const scenario = {
    id: preset,
    title,
    what: 'Cold pull: fresh root (a fresh containerd for ctr), page cache dropped, from the private registry; resolve, fetch, unpack, commit.',
  };
  return {
    ...scenario,
    run: async (ctx) => {
      const image = await ctx.image(preset);
      const measured = await sideBySide(ctx, image, 'cold');
      const timeline = medianSample(measured.samples.get('layerpool') ?? [])?.detail?.timeline;
      return fromRounds(scenario, image, measured, ratioFigures(measured.series, 'layerpool', ctx.peers.map((p) => p.name)), timeline === undefined ? {} : { timeline });
    },
  };
}

/** Bytes the registry served for blobs, divided by their sizes: 1.0 means each was fetched once. */
function trafficFigures(samples: readonly MeasuredSample[], sizes: Map<string, number>): Record<string, number> {
  let worstRatio = 0;
  let maxGets = 0;
  for (const sample of samples) {
    let served = 0;
    let needed = 0;
    for (const [digest, traffic] of sample.traffic) {
      served += traffic.bytes;
      needed += sizes.get(digest) ?? traffic.bytes;
      maxGets = Math.max(maxGets, traffic.gets);
    }
    if (needed > 0) worstRatio = Math.max(worstRatio, served / needed);
  }
  return { blobBytesServedRatio: Math.round(worstRatio * 1000) / 1000, maxBlobGETs: maxGets };
}

export const concurrentPulls: Scenario = {
  id: 'concurrent',
  title: `${CONCURRENT_PULLS} concurrent pulls of one image`,
  what: `layerpool: ${CONCURRENT_PULLS} client.pull() at once in one Client (shared blob downloads and chain-ID locks); ctr: ${CONCURRENT_PULLS} ctr processes against one containerd. Each compared with one pull; the registry log shows how often each blob was served.`,
  run: async (ctx) => {
    const image = await ctx.image(ctx.quick ? 'small' : 'medium');
    const notes: string[] = [];
    const pullers = [ctx.layerpool, ...ctx.peers].filter((puller) => {
      const why = puller.unsupported({ image, concurrent: CONCURRENT_PULLS });
      if (why !== undefined) notes.push(`${puller.name}: skipped, ${why}`);
      return why === undefined;
    });
    const contenders: Contender[] = pullers.flatMap((puller) => [
      { label: `${puller.name} ×1`, puller, request: { image } },
      { label: `${puller.name} ×${CONCURRENT_PULLS}`, puller, request: { image, concurrent: CONCURRENT_PULLS } },
    ]);
    const measured = await rounds(ctx, contenders, 'cold');
    const sizes = new Map(image.built.manifests.flatMap((m) => [[m.config.digest, m.config.size] as const, ...m.layers.map((l) => [l.descriptor.digest, l.descriptor.size] as const)]));
    const figures: Record<string, number> = {};
    for (const puller of pullers) {
      const many = measured.series.find((s) => s.label === `${puller.name} ×${CONCURRENT_PULLS}`);
      const one = measured.series.find((s) => s.label === `${puller.name} ×1`);
      const r = ratio(many?.summary, one?.summary);
      if (r !== undefined) figures[`${puller.name} ×${CONCURRENT_PULLS} ÷ ×1`] = Math.round(r * 1000) / 1000;
      const samples = measured.samples.get(`${puller.name} ×${CONCURRENT_PULLS}`) ?? [];
      if (samples.length > 0) {
        for (const [key, value] of Object.entries(trafficFigures(samples, sizes))) figures[`${puller.name} ${key}`] = value;
      }
    }
    Object.assign(figures, ratioFigures(measured.series, `layerpool ×${CONCURRENT_PULLS}`, pullers.slice(1).map((p) => `${p.name} ×${CONCURRENT_PULLS}`)));
    return fromRounds(concurrentPulls, image, measured, figures, { notes });
  },
};

export const syncFsOverhead: Scenario = {
  id: 'syncfs',
  title: 'syncFs on vs off',
  what: 'Cold layerpool pulls with and without syncFs (syncfs(2) on the snapshot filesystem before each commit, so commits survive a power cut).',
  run: async (ctx) => {
    const image = await ctx.image('medium');
    const measured = await rounds(ctx, [
      { label: 'syncFs off', puller: ctx.layerpool, request: { image } },
      { label: 'syncFs on', puller: ctx.layerpool, request: { image, syncFs: true } },
    ], 'cold');
    const on = measured.series.find((s) => s.label === 'syncFs on');
    const off = measured.series.find((s) => s.label === 'syncFs off');
    const r = ratio(on?.summary, off?.summary);
    return fromRounds(syncFsOverhead, image, measured, r === undefined ? {} : { overheadPct: Math.round((r - 1) * 1000) / 10 });
  },
};

export const warmRepull: Scenario = {
  id: 'warm',
  title: 'Warm re-pull (image already present)',
  what: 'A pull of an image the root already has: resolve, find every chain ID committed, update the record. layerpool: the pull alone in a fresh process on the same root; ctr: the ctr process against the daemon that pulled it.',
  run: async (ctx) => {
    const image = await ctx.image('medium');
    const measured = await sideBySide(ctx, image, 'warm');
    return fromRounds(warmRepull, image, measured, ratioFigures(measured.series, 'layerpool', ctx.peers.map((p) => p.name)));
  },
};

/** 1, 2, 4, ... up to the cores, and the core count itself. */
function poolSizes(cores: number): number[] {
  const sizes = new Set<number>();
  for (let n = 1; n < cores; n *= 2) sizes.add(n);
  sizes.add(cores);
  return [...sizes];
}

export const poolScaling: Scenario = {
  id: 'workers',
  title: 'Apply pool size scaling',
  what: 'Cold layerpool pulls of the large image with 1, 2, 4 ... worker threads up to the core count: how apply spreads over cores.',
  run: async (ctx) => {
    const image = await ctx.image('large');
    const sizes = poolSizes(availableParallelism());
    const measured = await rounds(ctx, sizes.map((workers) => ({ label: `workers=${workers}`, puller: ctx.layerpool, request: { image, workers } })), 'cold');
    const figures: Record<string, number> = {};
    const one = measured.series.find((s) => s.label === 'workers=1');
    for (const series of measured.series) {
      const r = ratio(one?.summary, series.summary);
      if (r !== undefined && series !== one) figures[`speed-up ${series.label}`] = Math.round(r * 100) / 100;
    }
    return fromRounds(poolScaling, image, measured, figures);
  },
};

export function pullScenarios(): Scenario[] {
  return [
    coldPull('small', 'Cold pull: small (10 MiB, 1 layer)'),
    coldPull('medium', 'Cold pull: medium (150 MiB, 3 layers)'),
    coldPull('large', 'Cold pull: large (1 GiB, 10 gzip layers)'),
    coldPull('large-zstd', 'Cold pull: large-zstd (1 GiB, 10 zstd layers)'),
    coldPull('many-files', 'Cold pull: many-files (50,000 files, 100 MiB)'),
    concurrentPulls,
    syncFsOverhead,
    warmRepull,
    poolScaling,
  ];
}
