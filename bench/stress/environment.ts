/**
 * What both stress scripts stand on: a work folder on a real disk, a private registry
 * on 127.0.0.1 in it, and a rotating set of small fixture images pushed there — unique
 * layers (tiny, a scaled small and medium) and shared ones (shared-base-a/b share their
 * first two layers) — with the expected tree of each.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PresetName } from '../fixtures/index.js';
import { publishPreset, type PublishedImage } from '../lib/images.js';
import { startRegistry, type BenchRegistry } from '../lib/registry.js';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export const STRESS_DEFAULTS = {
  workDir: '/var/tmp',
  cacheDir: join(REPO, 'bench', '.cache'),
  images: [
    { preset: 'tiny', scale: 1 },
    { preset: 'small', scale: 0.3 },
    { preset: 'medium', scale: 0.02 },
    { preset: 'shared-base', scale: 1 },
  ] as { preset: PresetName; scale: number }[],
} as const;

export interface StressEnvironment {
  work: string;
  registry: BenchRegistry;
  images: PublishedImage[];
  /** Image record name (the ref) → expected tree file. */
  expectedTrees: Map<string, string>;
  close(options?: { keep?: boolean }): Promise<void>;
}

export async function openEnvironment(options: { workDir?: string; cacheDir?: string; label: string }): Promise<StressEnvironment> {
  const parent = options.workDir ?? STRESS_DEFAULTS.workDir;
  mkdirSync(parent, { recursive: true });
  const work = mkdtempSync(join(parent, `layerpool-${options.label}-`));
  const registry = await startRegistry({ dir: join(work, 'registry') });
  const close = async ({ keep = false } = {}): Promise<void> => {
    await registry.stop();
    if (!keep) rmSync(work, { recursive: true, force: true });
  };
  try {
    const images: PublishedImage[] = [];
    for (const { preset, scale } of STRESS_DEFAULTS.images) {
      images.push(...(await publishPreset(preset, { registry, fixturesDir: join(options.cacheDir ?? STRESS_DEFAULTS.cacheDir, 'fixtures'), scale })));
    }
    return { work, registry, images, expectedTrees: new Map(images.map((i) => [i.ref, i.expectedTreePath])), close };
  } catch (err) {
    await close();
    throw err;
  }
}
