/** `layerpool snapshots ls|tree|mounts|rm|usage`. */
import { formatMountCommand } from '../../snapshots/mount.js';
import type { SnapshotSummary } from '../../server/types.js';
import { withAPI, type GlobalOptions } from '../context.js';
import { formatAge, formatBytes, formatTable, printJSON } from '../output.js';

interface SnapshotFlags {
  snapshotter?: string;
}

const which = (flags: SnapshotFlags) => (flags.snapshotter === undefined ? {} : { snapshotter: flags.snapshotter });

export async function listSnapshots(globals: GlobalOptions, flags: SnapshotFlags & { filter?: string[] }): Promise<void> {
  const list = await withAPI(globals, (api) => api.listSnapshots({ ...which(flags), ...(flags.filter ? { filters: flags.filter } : {}) }));
  if (globals.json) return printJSON(globals.stdout, list);
  if (globals.quiet) return void globals.stdout.write(list.map((s) => `${s.key}\n`).join(''));
  globals.stdout.write(formatTable(['KEY', 'PARENT', 'KIND', 'CREATED'], list.map((s) => [s.key, s.parent ?? '-', s.kind, formatAge(s.createdAt)])));
}

interface TreeNode {
  key: string;
  kind: SnapshotSummary['kind'];
  children: TreeNode[];
}

export async function snapshotTree(globals: GlobalOptions, flags: SnapshotFlags): Promise<void> {
  const list = await withAPI(globals, (api) => api.listSnapshots(which(flags)));
  const nodes = new Map(list.map((s) => [s.key, { key: s.key, kind: s.kind, children: [] } as TreeNode]));
  const roots: TreeNode[] = [];
  for (const s of list) {
    const node = nodes.get(s.key) as TreeNode;
    const parent = s.parent === undefined ? undefined : nodes.get(s.parent);
    (parent ? parent.children : roots).push(node);
  }
  if (globals.json) return printJSON(globals.stdout, roots);
  const lines: string[] = [];
  const walk = (node: TreeNode, depth: number) => {
    lines.push(`${'  '.repeat(depth)}${depth > 0 ? '\\_ ' : ''}${node.key} (${node.kind})`);
    for (const child of node.children) walk(child, depth + 1);
  };
  roots.forEach((root) => walk(root, 0));
  globals.stdout.write(lines.map((l) => `${l}\n`).join(''));
}

export async function snapshotMounts(globals: GlobalOptions, key: string, target: string | undefined, flags: SnapshotFlags): Promise<void> {
  const mounts = await withAPI(globals, (api) => api.snapshotMounts({ ...which(flags), key }));
  const where = target ?? '/mnt';
  if (globals.json) return printJSON(globals.stdout, { key, target: where, mounts, command: formatMountCommand(mounts, where) });
  globals.stdout.write(`${formatMountCommand(mounts, where)}\n`);
}

export async function removeSnapshots(globals: GlobalOptions, keys: string[], flags: SnapshotFlags): Promise<void> {
  await withAPI(globals, async (api) => {
    for (const key of keys) await api.removeSnapshot({ ...which(flags), key });
  });
  if (globals.json) printJSON(globals.stdout, { removed: keys });
  else if (!globals.quiet) globals.stdout.write(keys.map((k) => `${k}\n`).join(''));
}

export async function snapshotUsage(globals: GlobalOptions, key: string | undefined, flags: SnapshotFlags): Promise<void> {
  const usage = await withAPI(globals, (api) => api.snapshotUsage({ ...which(flags), ...(key === undefined ? {} : { key }) }));
  if (globals.json) return printJSON(globals.stdout, usage);
  globals.stdout.write(formatTable(['KEY', 'SIZE', 'INODES'], usage.map((u) => [u.key, formatBytes(u.size), String(u.inodes)])));
}
