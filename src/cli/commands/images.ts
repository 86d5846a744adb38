/** `layerpool images ls|rm|inspect|usage`. */
import { withAPI, type GlobalOptions } from '../context.js';
import { formatAge, formatBytes, formatTable, printJSON, shortDigest } from '../output.js';

export async function listImages(globals: GlobalOptions, flags: { filter?: string[] }): Promise<void> {
  const images = await withAPI(globals, (api) => api.listImages({ ...(flags.filter ? { filters: flags.filter } : {}) }));
  if (globals.json) return printJSON(globals.stdout, images);
  if (globals.quiet) return void globals.stdout.write(images.map((i) => `${i.name}\n`).join(''));
  globals.stdout.write(
    formatTable(
      ['NAME', 'DIGEST', 'SIZE', 'PLATFORMS', 'CREATED'],
      images.map((i) => [i.name, shortDigest(i.digest), formatBytes(i.size), i.platforms.join(',') || '-', formatAge(i.createdAt)]),
    ),
  );
}

export async function removeImages(globals: GlobalOptions, names: string[], flags: { sync?: boolean }): Promise<void> {
  await withAPI(globals, async (api) => {
    for (const name of names) await api.deleteImage({ name, sync: flags.sync === true });
  });
  if (globals.json) printJSON(globals.stdout, { removed: names });
  else if (!globals.quiet) globals.stdout.write(names.map((n) => `${n}\n`).join(''));
}

export async function inspectImage(globals: GlobalOptions, name: string, flags: { platform?: string; snapshotter?: string }): Promise<void> {
  const details = await withAPI(globals, (api) =>
    api.inspectImage({ name, ...(flags.platform === undefined ? {} : { platform: flags.platform }), ...(flags.snapshotter === undefined ? {} : { snapshotter: flags.snapshotter }) }),
  );
  // A document either way; indented unless --json asks for machine output.
  globals.stdout.write(`${JSON.stringify(details, null, globals.json ? undefined : 2)}\n`);
}

export async function imageUsage(globals: GlobalOptions, names: string[]): Promise<void> {
  const usage = await withAPI(globals, (api) => api.imageUsage({ names }));
  if (globals.json) return printJSON(globals.stdout, usage);
  globals.stdout.write(
    formatTable(
      ['NAME', 'CONTENT', 'SNAPSHOTS', 'TOTAL'],
      usage.map((u) => [u.name, formatBytes(u.content), formatBytes(u.snapshots), formatBytes(u.content + u.snapshots)]),
    ),
  );
}
