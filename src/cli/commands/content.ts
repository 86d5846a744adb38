/** `layerpool content ls|get|rm|prune`. */
import { pipeline } from 'node:stream/promises';
import { withAPI, type GlobalOptions } from '../context.js';
import { formatAge, formatBytes, formatLabels, formatTable, printJSON } from '../output.js';

export async function listContent(globals: GlobalOptions, flags: { filter?: string[] }): Promise<void> {
  const blobs = await withAPI(globals, (api) => api.listContent({ ...(flags.filter ? { filters: flags.filter } : {}) }));
  if (globals.json) return printJSON(globals.stdout, blobs);
  if (globals.quiet) return void globals.stdout.write(blobs.map((b) => `${b.digest}\n`).join(''));
  globals.stdout.write(formatTable(['DIGEST', 'SIZE', 'AGE', 'LABELS'], blobs.map((b) => [b.digest, formatBytes(b.size), formatAge(b.createdAt), formatLabels(b.labels)])));
}

export async function getContent(globals: GlobalOptions, digest: string): Promise<void> {
  await withAPI(globals, async (api) => pipeline(await api.readContent({ digest }), globals.stdout, { end: false }));
}

export async function removeContent(globals: GlobalOptions, digests: string[]): Promise<void> {
  await withAPI(globals, async (api) => {
    for (const digest of digests) await api.deleteContent({ digest });
  });
  if (globals.json) printJSON(globals.stdout, { removed: digests });
  else if (!globals.quiet) globals.stdout.write(digests.map((d) => `${d}\n`).join(''));
}

export async function pruneContent(globals: GlobalOptions): Promise<void> {
  const pruned = await withAPI(globals, (api) => api.pruneContent());
  if (globals.json) return printJSON(globals.stdout, pruned);
  globals.stdout.write(
    `${pruned.manifests} manifests let go of their unpacked layers; removed ${pruned.gc.removed.content} blobs, ${formatBytes(pruned.gc.bytesFreed)} freed\n`,
  );
}
