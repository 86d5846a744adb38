/**
 * An image's root filesystem out of its snapshots: `export REF DIR|FILE.tar` copies the
 * flattened tree, `mount REF TARGET` / `unmount TARGET` mount a read-only view.
 *
 * Both start from a view snapshot of the image's top chain ID. A multi-layer overlay
 * view is a real overlay mount (the kernel merges the layers: whiteouts and opaque
 * directories take effect and never show); a bind view (native snapshotter, or a
 * single layer) is a plain directory, read in place. Views carry `containerd.io/gc.root`
 * so that GC does not collect them (and their parents) while in use.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { canceledFrom, FailedPreconditionError, isNotFound, NotFoundError, ResourceExhaustedError } from '../../errors.js';
import { Label } from '../../metadata/labels.js';
import { mountAll, unmount } from '../../snapshots/mount.js';
import type { Mount } from '../../snapshots/snapshotter.js';
import type { ImageDetails, LayerpoolAPI } from '../../server/types.js';
import { interruptible, withAPI, type GlobalOptions } from '../context.js';
import { formatDuration, printJSON } from '../output.js';

const run = promisify(execFile);

interface RootfsFlags {
  platform?: string;
  snapshotter?: string;
}

/** The view key of a mount target: one view per target, found again by `unmount`. */
function mountKey(target: string): string {
  return `mount-${createHash('sha256').update(resolve(target)).digest('hex').slice(0, 16)}`;
}

async function unpackedImage(api: LayerpoolAPI, ref: string, flags: RootfsFlags): Promise<ImageDetails> {
  const details = await api.inspectImage({
    name: ref,
    ...(flags.platform === undefined ? {} : { platform: flags.platform }),
    ...(flags.snapshotter === undefined ? {} : { snapshotter: flags.snapshotter }),
  });
  if (!details.unpacked) {
    throw new FailedPreconditionError(`image ${ref} (${details.platform}) is not unpacked in the ${details.snapshotter} snapshotter; pull it with --snapshotter ${details.snapshotter}`);
  }
  return details;
}

function viewLabels(): Record<string, string> {
  return { [Label.gcRoot]: new Date().toISOString() };
}

/** A bind view is a directory to read in place; anything else is mounted on a temporary folder. */
async function withTree<T>(mounts: Mount[], fn: (dir: string) => Promise<T>): Promise<T> {
  const [first] = mounts;
  if (mounts.length === 1 && first && (first.type === 'bind' || first.options.includes('rbind') || first.options.includes('bind'))) return fn(first.source);
  const dir = await mkdtemp(join(tmpdir(), 'layerpool-export-'));
  try {
    await mountAll(mounts, dir);
    try {
      return await fn(dir);
    } finally {
      await unmount(dir);
    }
  } finally {
    await rmdir(dir);
  }
}

/**
 * Run a copy tool; Ctrl-C stops it (CanceledError), a full disk is ResourceExhausted,
 * anything else a plain failure with its stderr.
 */
async function runTool(command: string, args: string[], signal: AbortSignal): Promise<void> {
  try {
    await run(command, args, { maxBuffer: 16 << 20, signal });
  } catch (err) {
    if (signal.aborted) throw canceledFrom(signal);
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    const message = `${command} ${args.join(' ')} failed: ${stderr.split('\n', 1)[0] || (err as Error).message}`;
    if (/No space left on device|Disk quota exceeded/.test(stderr)) throw new ResourceExhaustedError(message, { cause: err });
    throw new Error(message, { cause: err });
  }
}

/** Copy `source`'s contents into `dest` (created; must be empty), keeping owners, modes, times, xattrs, links, devices. */
async function copyTree(source: string, dest: string, signal: AbortSignal): Promise<void> {
  await mkdir(dest, { recursive: true });
  if ((await readdir(dest)).length > 0) throw new FailedPreconditionError(`${dest} is not empty; export into a new or empty directory`);
  await runTool('cp', ['-a', '--no-target-directory', '--', `${source}/.`, dest], signal);
}

/** A POSIX tar of `source`'s contents, with xattrs and numeric owners, entries sorted. */
async function tarTree(source: string, file: string, signal: AbortSignal): Promise<void> {
  await runTool('tar', ['--create', '--file', file, '--directory', source, '--format=posix', '--xattrs', '--xattrs-include=*', '--numeric-owner', '--sort=name', '.'], signal);
}

export async function exportCommand(globals: GlobalOptions, ref: string, dest: string, flags: RootfsFlags): Promise<void> {
  const started = performance.now();
  const output = resolve(dest);
  const details = await withAPI(globals, (api) =>
    interruptible(async (signal) => {
      const image = await unpackedImage(api, ref, flags);
      const key = `export-${randomBytes(6).toString('hex')}`;
      const mounts = await api.viewSnapshot({ snapshotter: image.snapshotter, key, parent: image.chainID, labels: viewLabels() });
      try {
        await withTree(mounts, (dir) => (output.endsWith('.tar') ? tarTree(dir, output, signal) : copyTree(dir, output, signal)));
      } finally {
        await api.removeSnapshot({ snapshotter: image.snapshotter, key });
      }
      return image;
    }),
  );
  const result = { image: details.name, platform: details.platform, chainID: details.chainID, snapshotter: details.snapshotter, output, durationMs: performance.now() - started };
  if (globals.json) printJSON(globals.stdout, result);
  else if (globals.quiet) globals.stdout.write(`${output}\n`);
  else globals.stdout.write(`Exported ${details.name} (${details.platform}) to ${output} in ${formatDuration(result.durationMs)}\n`);
}

export async function mountCommand(globals: GlobalOptions, ref: string, target: string, flags: RootfsFlags): Promise<void> {
  const where = resolve(target);
  const key = mountKey(where);
  const details = await withAPI(globals, async (api) => {
    const image = await unpackedImage(api, ref, flags);
    const mounts = await api.viewSnapshot({ snapshotter: image.snapshotter, key, parent: image.chainID, labels: viewLabels() });
    try {
      await mkdir(where, { recursive: true });
      await mountAll(mounts, where);
    } catch (err) {
      await api.removeSnapshot({ snapshotter: image.snapshotter, key });
      throw err;
    }
    return image;
  });
  if (globals.json) printJSON(globals.stdout, { image: details.name, target: where, key, snapshotter: details.snapshotter });
  else if (globals.quiet) globals.stdout.write(`${where}\n`);
  else globals.stdout.write(`Mounted ${details.name} (${details.platform}) read-only on ${where} (view ${key}); \`layerpool unmount ${where}\` undoes it\n`);
}

export async function unmountCommand(globals: GlobalOptions, target: string): Promise<void> {
  const where = resolve(target);
  const key = mountKey(where);
  let mounted = true;
  await unmount(where).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
    mounted = false;
  });
  const removed = await withAPI(globals, async (api) => {
    const info = await api.info();
    for (const snapshotter of new Set([info.defaultSnapshotter, ...info.snapshotters])) {
      // A snapshotter this user cannot open has no view of ours either.
      const views = await api.listSnapshots({ snapshotter, filters: [`key==${key}`] }).catch(() => []);
      if (views.length === 0) continue;
      await api.removeSnapshot({ snapshotter, key });
      return snapshotter;
    }
    return undefined;
  });
  if (!mounted && removed === undefined) throw new NotFoundError(`nothing is mounted on ${where} by layerpool (no view ${key})`);
  if (globals.json) printJSON(globals.stdout, { target: where, key, unmounted: mounted, snapshotter: removed ?? null });
  else if (!globals.quiet) globals.stdout.write(`Unmounted ${where}${removed ? ` and removed view ${key}` : ''}\n`);
}
