/**
 * Fixture images in a real registry, for pull tests: build a preset or a custom spec
 * with the deterministic builder (bench/fixtures), push it to a test registry, pull it
 * with a Client on a fresh root, and read an unpacked chain back through a mounted view
 * to compare it with the build's expected tree.
 *
 *   buildPreset / buildImage ──▶ OCI layout ──pushImage──▶ registry ◀── fault proxy ◀── Client.pull
 *                                     └─ expected tree ◀──diffTrees──▶ readTree(view mount)
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import {
  buildImage,
  buildPreset,
  diffTrees,
  readTree,
  type BuiltImage,
  type BuiltManifest,
  type ExpectedTree,
  type ImageSpec,
  type LayerSpec,
  type PresetName,
} from '../../bench/fixtures/index.js';
import { Client, type ClientOptions } from '../../src/client.js';
import type { Descriptor } from '../../src/descriptor.js';
import { OCILayout } from '../../src/layout/index.js';
import { pushImage, RegistryResolver } from '../../src/remote/index.js';
import { mountAll, unmount } from '../../src/snapshots/index.js';
import type { Snapshotter } from '../../src/snapshots/snapshotter.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { startRegistry, type TestRegistry } from './registry.js';
import { tempDir } from './tmp.js';

/**
 * Presets are built once per machine and reused across test files and runs (the builder
 * is deterministic and caches by spec hash; concurrent builds of one preset agree).
 */
export const PRESET_CACHE_DIR = join(tmpdir(), 'layerpool-test-fixtures');

/** Image `index` of a preset (tiny, multi-platform, shared-base: small enough for tests). */
export async function presetImage(preset: PresetName, index = 0): Promise<BuiltImage> {
  const image = (await buildPreset(preset, PRESET_CACHE_DIR)).images[index];
  assert.ok(image, `preset ${preset} has an image ${index}`);
  return image;
}

/** A layer spec with only the counts a test cares about (no links, no whiteouts). */
export function plainLayer(files: number, totalBytes: number, more: Partial<LayerSpec> = {}): LayerSpec {
  return { files, totalBytes, sizeDistribution: 'small', dirs: 2, symlinks: 0, hardlinks: 0, whiteouts: 0, opaqueDirs: 0, ...more };
}

/** A single-platform OCI image of gzip layers, seeded by its name. */
export function testSpec(name: string, layers: LayerSpec[]): ImageSpec {
  return { name, seed: `test-${name}`, format: 'oci', compression: 'gzip', layers };
}

/** Build a custom spec into a temp dir removed after the test. */
export async function buildTestImage(t: TestContext, spec: ImageSpec): Promise<BuiltImage> {
  return buildImage(spec, { dir: tempDir(t, 'layerpool-fixture-') });
}

export async function expectedTree(manifest: BuiltManifest): Promise<ExpectedTree> {
  return JSON.parse(await readFile(manifest.expectedTreePath, 'utf8')) as ExpectedTree;
}

/**
 * A Client on a fresh root (or `options.root`), with no Docker credentials and quick
 * retries, closed after the test (then its fresh root removed). GC runs only when the
 * test asks, unless `gc` is given.
 */
export async function openTestClient(t: TestContext, options: ClientOptions = {}): Promise<Client> {
  // Not tempDir(): after-hooks run in the order they were added, and the client must be
  // closed before its root goes.
  const root = options.root ?? mkdtempSync(join(tmpdir(), 'layerpool-client-'));
  const client = await Client.open({
    gc: false,
    credentials: () => undefined,
    retry: { baseDelayMs: 10, maxDelayMs: 100 },
    ...options,
    root,
  });
  t.after(async () => {
    await client.close();
    if (options.root === undefined) rmSync(root, { recursive: true, force: true });
  });
  return client;
}

export interface PullEnvironment {
  registry: TestRegistry;
  /** In front of the registry: pulls go through it, to count requests or inject faults. */
  proxy: FaultProxy;
  client: Client;
}

/** A registry, a fault proxy in front of it and a client, all torn down after the test. */
export async function startPullEnvironment(t: TestContext, options: ClientOptions = {}): Promise<PullEnvironment> {
  const registry = await startRegistry(t);
  const proxy = await startFaultProxy(t, registry);
  return { registry, proxy, client: await openTestClient(t, options) };
}

/** `<host>/<repository>:<tag>` */
export function referenceOf(host: string, repository: string, tag = 'latest'): string {
  return `${host}/${repository}:${tag}`;
}

/**
 * Push an image of a layout (what a built image's tag names, or any manifest or index
 * written into it) straight to the registry, so the proxy does not count the upload.
 * Returns the reference to pull it with, through the proxy.
 */
export async function publish(
  env: Pick<PullEnvironment, 'registry' | 'proxy'>,
  image: { layoutDir: string; descriptor: Descriptor },
  repository: string,
  tag = 'latest',
): Promise<string> {
  const resolver = new RegistryResolver({ credentials: () => undefined });
  try {
    const fetcher = await OCILayout.open(image.layoutDir);
    await pushImage({ fetcher, descriptor: image.descriptor, reference: referenceOf(env.registry.host, repository, tag), resolver });
  } finally {
    await resolver.close();
  }
  return referenceOf(env.proxy.host, repository, tag);
}

/**
 * Mount a read-only view of the committed snapshot `chainID` and compare its tree with
 * the expected one. The view and the mount are gone when this returns, so GC and
 * cleanup assertions afterwards see only what the pull made.
 */
export async function assertUnpackedTree(t: TestContext, snapshotter: Snapshotter, chainID: string, expected: ExpectedTree): Promise<void> {
  const key = `test-view-${randomBytes(6).toString('hex')}`;
  const target = join(tempDir(t, 'layerpool-view-'), 'rootfs');
  await mkdir(target);
  const mounts = await snapshotter.view(key, chainID);
  try {
    await mountAll(mounts, target);
    try {
      const differences = diffTrees(expected.entries, await readTree(target));
      assert.deepEqual(differences, [], `the unpacked tree of ${chainID} differs from the fixture's expected tree`);
    } finally {
      await unmount(target);
    }
  } finally {
    await snapshotter.remove(key);
    await rm(target, { recursive: true, force: true });
  }
}

/** Every snapshot key of the snapshotter (in the client's namespace), sorted. */
export async function snapshotKeys(snapshotter: Snapshotter): Promise<string[]> {
  const keys: string[] = [];
  await snapshotter.walk((info) => {
    keys.push(info.name);
  });
  return keys.sort();
}
