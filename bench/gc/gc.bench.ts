/**
 * GC on a big store: 10,000 blobs and 2,000 snapshots (100 images of 20-layer chains,
 * 1/4 of the content unreferenced). Reports mark and pause times (median of 5). The
 * issue's target: mark under 200 ms.
 *
 *   node --import tsx bench/gc/gc.bench.ts [--blobs 10000] [--snapshots 2000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { digestOf } from '../../src/digest.js';
import { Collector } from '../../src/gc/collector.js';
import { Root } from '../../src/root.js';

const { values } = parseArgs({ options: { blobs: { type: 'string', default: '10000' }, snapshots: { type: 'string', default: '2000' }, runs: { type: 'string', default: '5' } } });
const blobs = Number(values.blobs);
const snapshotCount = Number(values.snapshots);
const runs = Number(values.runs);
const layersPerImage = 20;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function populate(root: Root): Promise<void> {
  const ns = root.db.namespace('default');
  const images = Math.floor(snapshotCount / layersPerImage);
  root.db.transaction(() => {
    let n = 0;
    const digests: string[] = [];
    for (; n < blobs; n++) {
      const digest = digestOf(`blob ${n}`);
      digests.push(digest);
    }
    // Content rows: the first images*(layers+2) are referenced, the rest (>= 1/4) are garbage.
    let cursor = 0;
    for (let i = 0; i < images; i++) {
      const layerDigests = digests.slice(cursor, cursor + layersPerImage);
      cursor += layersPerImage;
      const config = digests[cursor++] as string;
      const manifest = digests[cursor++] as string;
      for (const d of layerDigests) ns.content.add({ digest: d, size: 1000 });
      let parent: string | undefined;
      for (let l = 0; l < layersPerImage; l++) {
        const key = `img${i}-chain${l}`;
        ns.snapshots.create({ snapshotter: 'overlay', key: `a-${key}`, kind: 'active', ...(parent ? { parent } : {}) });
        ns.snapshots.commit('overlay', `a-${key}`, key);
        parent = key;
      }
      ns.content.add({ digest: config, size: 500, labels: { 'containerd.io/gc.ref.snapshot.overlay': parent as string } });
      const labels: Record<string, string> = { 'containerd.io/gc.ref.content.config': config };
      layerDigests.forEach((d, l) => (labels[`containerd.io/gc.ref.content.l.${l}`] = d));
      ns.content.add({ digest: manifest, size: 800, labels });
      ns.images.create({ name: `img${i}`, target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifest, size: 800 } });
    }
    for (; cursor < blobs; cursor++) ns.content.add({ digest: digests[cursor] as string, size: 10 });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'layerpool-gc-bench-'));
try {
  const marks: number[] = [];
  const pauses: number[] = [];
  for (let run = 0; run < runs; run++) {
    const path = join(dir, `r${run}`);
    const root = await Root.open({ path, namespaces: ['default'] });
    await populate(root);
    const stats = await new Collector({ root }).collect();
    marks.push(stats.markMs);
    pauses.push(stats.pauseMs);
    if (run === 0) console.log(`removed ${stats.removed.content} blobs, kept ${blobs - stats.removed.content}; snapshots kept ${snapshotCount - stats.removed.snapshots}`);
    root.close();
  }
  console.log(`gc on ${blobs} blobs + ${snapshotCount} snapshots: mark median ${median(marks).toFixed(1)} ms (min ${Math.min(...marks).toFixed(1)}, max ${Math.max(...marks).toFixed(1)}), pause median ${median(pauses).toFixed(1)} ms`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
