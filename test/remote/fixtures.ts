/**
 * Small test images built in memory: a config, gzip tar layers (tar-stream + zlib), a
 * manifest per platform and an index over them, in OCI or Docker media types; and the
 * ways the registry tests use them (push through our pusher, a resolver for a registry).
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import type { ContentStore } from '../../src/content/index.js';
import type { Descriptor } from '../../src/descriptor.js';
import { digestOf } from '../../src/digest.js';
import { MediaType } from '../../src/images/mediatypes.js';
import { RegistryResolver, type RegistryResolverOptions } from '../../src/remote/index.js';

export interface Blob {
  descriptor: Descriptor;
  data: Buffer;
}

export interface TestImage {
  /** The root: an index, or the manifest for single-platform images. */
  root: Descriptor;
  manifests: Descriptor[];
  /** Every blob of the graph (index, manifests, configs, layers) by digest. */
  blobs: Map<string, Blob>;
}

export type Flavour = 'oci' | 'docker';

const TYPES = {
  oci: { index: MediaType.OCIIndex, manifest: MediaType.OCIManifest, config: MediaType.OCIConfig, layer: MediaType.OCILayerGzip },
  docker: { index: MediaType.DockerManifestList, manifest: MediaType.DockerManifest, config: MediaType.DockerConfig, layer: MediaType.DockerLayerGzip },
};

function blob(mediaType: string, data: Buffer, extra: Partial<Descriptor> = {}): Blob {
  return { descriptor: { mediaType, digest: digestOf(data), size: data.length, ...extra }, data };
}

/** A tar of the given files, gzipped. */
export async function gzipTar(files: Record<string, string | Buffer>): Promise<{ gz: Buffer; diffID: string }> {
  const tar = pack();
  for (const [name, content] of Object.entries(files)) tar.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return { gz: gzipSync(raw), diffID: digestOf(raw) };
}

export interface BuildImageOptions {
  flavour?: Flavour;
  platforms?: { os: string; architecture: string }[];
  /** Bytes of random data in each image's second layer (to make big blobs). Default 1 KiB. */
  payloadSize?: number;
  /** Make an index even for one platform. Default: index when more than one platform. */
  index?: boolean;
}

/** An image with two layers per platform; content differs per platform and per call. */
export async function buildImage(options: BuildImageOptions = {}): Promise<TestImage> {
  const types = TYPES[options.flavour ?? 'oci'];
  const platforms = options.platforms ?? [{ os: 'linux', architecture: 'amd64' }];
  const blobs = new Map<string, Blob>();
  const add = (b: Blob): Descriptor => {
    blobs.set(b.descriptor.digest, b);
    return b.descriptor;
  };
  const nonce = randomBytes(8).toString('hex');
  const manifests: Descriptor[] = [];
  for (const platform of platforms) {
    const base = await gzipTar({ 'etc/os-release': `ID=test\nNONCE=${nonce}\n`, [`etc/${platform.architecture}`]: platform.architecture });
    const app = await gzipTar({ 'app/payload.bin': randomBytes(options.payloadSize ?? 1024) });
    const layers = [add(blob(types.layer, base.gz)), add(blob(types.layer, app.gz))];
    const config = add(
      blob(
        types.config,
        Buffer.from(JSON.stringify({ ...platform, config: { Cmd: ['/app'] }, rootfs: { type: 'layers', diff_ids: [base.diffID, app.diffID] } })),
      ),
    );
    const manifest = { schemaVersion: 2, mediaType: types.manifest, config, layers };
    manifests.push(add(blob(types.manifest, Buffer.from(JSON.stringify(manifest)), { platform })));
  }
  const wantIndex = options.index ?? platforms.length > 1;
  if (!wantIndex) {
    const only = manifests[0] as Descriptor;
    const root = { mediaType: only.mediaType, digest: only.digest, size: only.size };
    return { root, manifests, blobs };
  }
  const index = { schemaVersion: 2, mediaType: types.index, manifests };
  const root = add(blob(types.index, Buffer.from(JSON.stringify(index))));
  return { root, manifests, blobs };
}

/** Write every blob of an image into a content store. */
export async function storeImage(store: ContentStore, image: TestImage): Promise<void> {
  for (const { descriptor, data } of image.blobs.values()) {
    const writer = await store.writer({ ref: `test-${descriptor.digest}`, expected: descriptor.digest, total: descriptor.size });
    await writer.write(data);
    await writer.commit();
  }
}

/** A Fetcher over the in-memory blobs of an image. */
export function imageFetcher(image: TestImage) {
  return {
    async fetch(desc: Descriptor, options: { offset?: number } = {}): Promise<Readable> {
      const found = image.blobs.get(desc.digest);
      if (found === undefined) throw new Error(`test image has no ${desc.digest}`);
      return Readable.from([found.data.subarray(options.offset ?? 0)]);
    },
  };
}

/** A whole stream in memory. */
export async function readStream(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A resolver with no Docker config and quick retries, closed after the test. */
export function testResolver(t: TestContext, options: RegistryResolverOptions = {}): RegistryResolver {
  const resolver = new RegistryResolver({
    credentials: () => undefined,
    retry: { baseDelayMs: 10, maxDelayMs: 50 },
    timeouts: { connectMs: 5_000, headersMs: 10_000, bodyMs: 10_000 },
    ...options,
  });
  t.after(() => resolver.close());
  return resolver;
}
