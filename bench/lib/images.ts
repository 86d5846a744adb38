/**
 * Benchmark images: fixture presets (bench/fixtures, built once and cached by spec hash)
 * pushed into a private registry, so every puller — the library, ctr, skopeo — reads
 * the same bytes from the same server.
 *
 *   buildPreset(preset, cacheDir) ─▶ OCI layout ─▶ pushImage ─▶ 127.0.0.1:<port>/bench/<name>:latest
 */
import { InvalidArgumentError } from '../../src/errors.js';
import { OCILayout } from '../../src/layout/index.js';
import { pushImage, RegistryResolver } from '../../src/remote/index.js';
import { buildPreset, type BuiltImage, type PresetName } from '../fixtures/index.js';
import type { BenchRegistry } from './registry.js';

export interface PublishedImage {
  /** The fixture image name (`small`, `shared-base-a`, ...). */
  name: string;
  preset: PresetName;
  /** `127.0.0.1:<port>/bench/<name>:latest` */
  ref: string;
  layers: number;
  compressedBytes: number;
  uncompressedBytes: number;
  /** The merged tree the single manifest unpacks to. */
  expectedTreePath: string;
  built: BuiltImage;
}

export interface PublishOptions {
  registry: BenchRegistry;
  /** Where presets are built and cached (`bench/.cache/fixtures`). */
  fixturesDir: string;
  /** Shrink the preset (quick runs); the image name gets a scale suffix in the registry. */
  scale?: number;
  /** Told when a preset has to be built (it can take a minute). */
  onBuild?: (preset: PresetName) => void;
}

/** Repository name of a fixture image at a scale: scaled builds must not shadow full ones. */
function repositoryName(name: string, scale: number): string {
  return scale === 1 ? `bench/${name}` : `bench/${name}-s${String(scale).replace('.', '_')}`;
}

/** Build (or reuse) a preset and push each of its images; returns them in preset order. */
export async function publishPreset(preset: PresetName, options: PublishOptions): Promise<PublishedImage[]> {
  const scale = options.scale ?? 1;
  options.onBuild?.(preset);
  const built = await buildPreset(preset, options.fixturesDir, { scale });
  const resolver = new RegistryResolver();
  try {
    const published: PublishedImage[] = [];
    for (const image of built.images) {
      const manifest = image.manifests[0];
      if (manifest === undefined || image.manifests.length !== 1) {
        throw new InvalidArgumentError(`fixture ${image.name} has ${image.manifests.length} manifests; benchmarks use single-platform images`);
      }
      const layout = await OCILayout.open(image.layoutDir);
      const resolved = await layout.resolve(image.name);
      const ref = `${options.registry.host}/${repositoryName(image.name, scale)}:latest`;
      await pushImage({ fetcher: layout, descriptor: resolved.descriptor, reference: ref, resolver });
      published.push({
        name: image.name,
        preset,
        ref,
        layers: manifest.layers.length,
        compressedBytes: image.compressedBytes,
        uncompressedBytes: image.uncompressedBytes,
        expectedTreePath: manifest.expectedTreePath,
        built: image,
      });
    }
    return published;
  } finally {
    await resolver.close();
  }
}
