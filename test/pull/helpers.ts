/**
 * What the pull tests check again and again: that a pull left exactly the objects and
 * labels DESIGN.md's pull path describes, and hand-made variants of fixture images
 * (duplicate layers, a wrong diff ID) written into a fixture's layout.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import type { ExpectedTree } from '../../bench/fixtures/index.js';
import type { Client } from '../../src/client.js';
import type { Descriptor } from '../../src/descriptor.js';
import { chainIDs, digestOf } from '../../src/digest.js';
import { MediaType } from '../../src/images/mediatypes.js';
import { OCILayout } from '../../src/layout/index.js';
import { Label } from '../../src/metadata/labels.js';
import type { SnapshotterName } from '../../src/snapshots/index.js';
import type { FaultProxy, RecordedRequest } from '../helpers/fault-proxy.js';
import { assertUnpackedTree, snapshotKeys } from '../helpers/images.js';

/** What a pull test knows of one platform's image: a built manifest, or a composed one. */
export interface ImageParts {
  descriptor: Descriptor;
  config: Descriptor;
  layers: { descriptor: Descriptor; diffID: string }[];
}

/** The chain IDs of an image's layers, bottom first. */
export function chainOf(image: ImageParts): string[] {
  return chainIDs(image.layers.map((l) => l.diffID));
}

/**
 * Everything a successful pull of `image` leaves: committed snapshots for every chain ID
 * (parent chain and snapshot.ref label right, nothing else in the snapshotter), the
 * gc.ref labels on manifest and config, each layer blob's uncompressed label, no lease,
 * and the expected merged tree.
 */
export async function assertPulled(t: TestContext, client: Client, image: ImageParts, tree: ExpectedTree, snapshotterName: SnapshotterName = client.defaultSnapshotter): Promise<void> {
  const snapshotter = await client.snapshotter(snapshotterName);
  const chain = chainOf(image);
  for (const [i, chainID] of chain.entries()) {
    const info = await snapshotter.stat(chainID);
    assert.equal(info.kind, 'committed', `layer ${i} is a committed snapshot`);
    assert.equal(info.parent, chain[i - 1], `layer ${i} sits on layer ${i - 1}'s chain ID`);
    assert.equal(info.labels[Label.snapshotRef], chainID, `layer ${i} is labelled with its chain ID`);
  }
  assert.deepEqual(await snapshotKeys(snapshotter), [...chain].sort(), 'the snapshotter holds the chain and nothing else (no extract-* left)');

  const manifestLabels = (await client.content.info(image.descriptor.digest)).labels;
  assert.equal(manifestLabels[`${Label.gcRefContent}.config`], image.config.digest);
  for (const [i, layer] of image.layers.entries()) {
    assert.equal(manifestLabels[`${Label.gcRefContent}.l.${i}`], layer.descriptor.digest, `manifest references layer ${i}`);
    assert.equal((await client.content.info(layer.descriptor.digest)).labels[Label.uncompressed], layer.diffID, `layer ${i} blob carries its diffID`);
  }
  const configLabels = (await client.content.info(image.config.digest)).labels;
  assert.equal(configLabels[`${Label.gcRefSnapshotPrefix}${snapshotter.name}`], chain.at(-1), 'the config keeps the top chain ID alive');
  assert.deepEqual(client.leases.list(), [], 'the pull released its lease');
  await assertUnpackedTree(t, snapshotter, chain.at(-1) as string, tree);
}

/** GETs of the blobs of one repository through the proxy, per digest. */
export function blobGets(proxy: FaultProxy, repository: string): Map<string, number> {
  const prefix = `/v2/${repository}/blobs/`;
  const counts = new Map<string, number>();
  for (const request of proxy.requests) {
    if (request.method !== 'GET' || !request.path.startsWith(prefix)) continue;
    const digest = request.path.slice(prefix.length);
    counts.set(digest, (counts.get(digest) ?? 0) + 1);
  }
  return counts;
}

/** A blob request that continues a download from `offset`: `bytes=<offset>-`, or closed at the blob's last byte. */
export function assertResumedFrom(request: RecordedRequest | undefined, offset: number, size: number): void {
  assert.ok(request, 'the blob was requested again');
  assert.ok(
    request.headers.range === `bytes=${offset}-` || request.headers.range === `bytes=${offset}-${size - 1}`,
    `the request resumes at byte ${offset}, its Range is ${String(request.headers.range)}`,
  );
}

/**
 * Write a new config and manifest into a fixture's layout over layer blobs already there,
 * with the diff IDs given (which may lie): images the builder cannot make, such as one
 * blob used twice or a config whose diff_ids do not match the layers.
 */
export async function composeImage(layoutDir: string, layers: ImageParts['layers']): Promise<ImageParts> {
  const layout = await OCILayout.open(layoutDir);
  const put = async (mediaType: string, value: unknown): Promise<Descriptor> => {
    const bytes = Buffer.from(JSON.stringify(value));
    const desc = { mediaType, digest: digestOf(bytes), size: bytes.length };
    await layout.writeBlob(Readable.from([bytes]), { expected: desc });
    return desc;
  };
  const config = await put(MediaType.OCIConfig, { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) } });
  const descriptor = await put(MediaType.OCIManifest, { schemaVersion: 2, mediaType: MediaType.OCIManifest, config, layers: layers.map((l) => l.descriptor) });
  return { descriptor, config, layers };
}
