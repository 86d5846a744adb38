/** `layerpool gc` and `layerpool du`. */
import { withAPI, type GlobalOptions } from '../context.js';
import { formatBytes, formatDuration, formatTable, printJSON } from '../output.js';

export async function gcCommand(globals: GlobalOptions): Promise<void> {
  const stats = await withAPI(globals, (api) => api.gc());
  if (globals.json) return printJSON(globals.stdout, stats);
  const r = stats.removed;
  globals.stdout.write(
    `removed ${r.content} blobs, ${r.snapshots} snapshots, ${r.ingests} ingests, ${r.leases} leases, ${r.images} images; ` +
      `${formatBytes(stats.bytesFreed)} freed (pause ${formatDuration(stats.pauseMs)})\n`,
  );
}

export async function duCommand(globals: GlobalOptions): Promise<void> {
  const report = await withAPI(globals, (api) => api.diskUsage());
  if (globals.json) return printJSON(globals.stdout, report);
  globals.stdout.write(
    formatTable(
      ['IMAGE', 'TOTAL', 'UNIQUE', 'SHARED', 'CONTENT', 'SNAPSHOTS'],
      report.images.map((i) => [i.name, formatBytes(i.total.total), formatBytes(i.total.unique), formatBytes(i.total.shared), formatBytes(i.content.total), formatBytes(i.snapshots.total)]),
    ),
  );
  globals.stdout.write(
    `\nused by images: ${formatBytes(report.referenced.content)} content + ${formatBytes(report.referenced.snapshots)} snapshots (each counted once); ` +
      `content store: ${formatBytes(report.contentStore)}\n`,
  );
}
