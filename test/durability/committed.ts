/**
 * The durability oracle: every overlay snapshot a root's database calls committed must
 * hold exactly what its layer applies to. The reference for a layer is a fresh apply of
 * its blob into a scratch directory over its parents' references (as the unpacker's
 * apply does when a layer implies directories of its parents), so the check covers the
 * files a crash or a full disk could have left empty, short or missing — not whether
 * apply is correct, which the diff and pull tests check against the fixtures' expected
 * trees. Apply is deterministic except for the times of what the layer does not date:
 * directories it only implies and whiteouts get the time of the apply, so directory and
 * whiteout mtimes are not compared.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { BuiltManifest } from '../../bench/fixtures/index.js';
import { applyLayer } from '../../src/diff/apply.js';
import { chainIDs } from '../../src/digest.js';
import { OCILayout } from '../../src/layout/index.js';
import { MetadataDB } from '../../src/metadata/db.js';
import { describeTree, overlay } from '../helpers/layers.js';
import { tempDir } from '../helpers/tmp.js';

/** chain ID -> the layer blob it was unpacked from, and the chain ID below it. */
export type LayersByChain = Map<string, { blobPath: string; mediaType: string; parent: string | undefined }>;

export async function layersByChain(layoutDir: string, manifests: readonly BuiltManifest[]): Promise<LayersByChain> {
  const layout = await OCILayout.open(layoutDir);
  const layers: LayersByChain = new Map();
  for (const manifest of manifests) {
    const chain = chainIDs(manifest.layers.map((l) => l.diffID));
    manifest.layers.forEach((layer, i) => {
      layers.set(chain[i] as string, { blobPath: layout.blobPath(layer.descriptor.digest), mediaType: layer.descriptor.mediaType, parent: chain[i - 1] });
    });
  }
  return layers;
}

export interface CommittedReport {
  /** Chain IDs of the committed snapshots found (and checked). */
  committed: string[];
  /** One line per snapshot whose files differ from its layer, or that no layer explains. */
  problems: string[];
}

/** Check a closed root (or a copy of one) read-only; see the module comment. */
export async function checkCommittedSnapshots(t: TestContext, rootDir: string, layers: LayersByChain): Promise<CommittedReport> {
  const db = MetadataDB.open({ path: join(rootDir, 'metadata.db'), readonly: true });
  let rows: { id: number; key: string }[];
  try {
    rows = db.sqlite.prepare("SELECT id, key FROM snapshots WHERE snapshotter = 'overlay' AND kind = 'committed' ORDER BY id").all() as { id: number; key: string }[];
  } finally {
    db.close();
  }
  const problems: string[] = [];
  const references = new Map<string, string[]>();
  /** The reference folders of `chainID` and its parents, top first (an overlay's upper and lowers). */
  const referenceOf = async (chainID: string): Promise<string[]> => {
    const known = references.get(chainID);
    if (known !== undefined) return known;
    const layer = layers.get(chainID) as NonNullable<ReturnType<LayersByChain['get']>>;
    const lowers = layer.parent === undefined ? [] : await referenceOf(layer.parent);
    const upper = tempDir(t, 'layerpool-reference-');
    await applyLayer(createReadStream(layer.blobPath), overlay(upper, lowers), { mediaType: layer.mediaType });
    references.set(chainID, [upper, ...lowers]);
    return [upper, ...lowers];
  };
  for (const { id, key } of rows) {
    if (!layers.has(key)) {
      problems.push(`committed snapshot ${key} (id ${id}) is no layer of the images pulled`);
      continue;
    }
    const [reference] = await referenceOf(key);
    const expected = comparable(reference as string);
    let actual: ReturnType<typeof comparable>;
    try {
      actual = comparable(join(rootDir, 'snapshots', 'overlay', String(id), 'fs'));
    } catch (err) {
      problems.push(`committed snapshot ${key} (id ${id}): its folder cannot be read: ${(err as Error).message}`);
      continue;
    }
    const differing = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].filter((path) => JSON.stringify(expected[path]) !== JSON.stringify(actual[path]));
    if (differing.length > 0) {
      const shown = differing.slice(0, 3).map((path) => `${path}: expected ${JSON.stringify(expected[path])}, found ${JSON.stringify(actual[path])}`);
      problems.push(`committed snapshot ${key} (id ${id}): ${differing.length} of ${Object.keys(expected).length} entries differ from its layer: ${shown.join('; ')}`);
    }
  }
  return { committed: rows.map((r) => r.key), problems };
}

/** A layer folder described without the times apply does not take from the layer. */
function comparable(dir: string): ReturnType<typeof describeTree> {
  const tree = describeTree(dir, { ignoreDirMtimes: true });
  for (const node of Object.values(tree)) if (node.type === 'char' && node.rdev === 0) node.mtimeUs = 0;
  return tree;
}
