/** `layerpool leases ls|create|rm`. */
import { InvalidArgumentError } from '../../errors.js';
import { withAPI, type GlobalOptions } from '../context.js';
import { formatAge, formatLabels, formatTable, parseDuration, printJSON } from '../output.js';

export async function listLeases(globals: GlobalOptions, flags: { filter?: string[] }): Promise<void> {
  const leases = await withAPI(globals, (api) => api.listLeases({ ...(flags.filter ? { filters: flags.filter } : {}) }));
  if (globals.json) return printJSON(globals.stdout, leases);
  if (globals.quiet) return void globals.stdout.write(leases.map((l) => `${l.id}\n`).join(''));
  globals.stdout.write(
    formatTable(
      ['ID', 'CREATED', 'EXPIRES', 'RESOURCES', 'LABELS'],
      leases.map((l) => [l.id, formatAge(l.createdAt), l.expiresAt ?? 'never', String(l.resources.length), formatLabels(l.labels)]),
    ),
  );
}

function parseLabels(pairs: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`label ${JSON.stringify(pair)} is not key=value`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}

export async function createLease(globals: GlobalOptions, flags: { id?: string; expire: string; flat?: boolean; label?: string[] }): Promise<void> {
  const expireInMs = parseDuration(flags.expire);
  const lease = await withAPI(globals, (api) =>
    api.createLease({
      ...(flags.id === undefined ? {} : { id: flags.id }),
      ...(expireInMs > 0 ? { expireInMs } : {}),
      ...(flags.flat ? { flat: true } : {}),
      ...(flags.label ? { labels: parseLabels(flags.label) } : {}),
    }),
  );
  if (globals.json) printJSON(globals.stdout, lease);
  else globals.stdout.write(`${lease.id}\n`);
}

export async function removeLeases(globals: GlobalOptions, ids: string[], flags: { sync?: boolean }): Promise<void> {
  await withAPI(globals, async (api) => {
    for (const id of ids) await api.deleteLease({ id, sync: flags.sync === true });
  });
  if (globals.json) printJSON(globals.stdout, { removed: ids });
  else if (!globals.quiet) globals.stdout.write(ids.map((id) => `${id}\n`).join(''));
}
