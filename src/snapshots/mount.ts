/**
 * Mounting what a snapshotter returns, with the util-linux `mount` and `umount`
 * commands (run without a shell), and the same command lines for a person to run.
 *
 * Long overlay chains: mount(2) copies at most one page (4096 bytes, NUL included) of
 * option data, and overlayfs takes at most 500 lower layers. An image of 120 layers has
 * lowerdir paths of ~50 bytes each under a root like /var/lib/layerpool — too long. As
 * containerd does, the lowerdirs are then written relative to their common folder and
 * `mount` runs with that folder as its working directory (overlayfs resolves the paths
 * against the caller's cwd), which brings each layer down to `<id>/fs`. What is still
 * too long fails with ResourceExhausted before anything is mounted.
 */
import { execFile } from 'node:child_process';
import { relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { NotFoundError, ResourceExhaustedError, UnavailableError } from '../errors.js';
import type { Mount } from './snapshotter.js';

const run = promisify(execFile);

/** mount(2) data must fit one page with its terminating NUL. */
export const MAX_MOUNT_DATA = 4095;
/** OVL_MAX_STACK in fs/overlayfs: lower layers one overlay mount can stack. */
export const MAX_OVERLAY_LAYERS = 500;

/** A bind mount of `source`, as the snapshotters return it. */
export function bindMount(source: string, options: { readOnly: boolean }): Mount {
  return { type: 'bind', source, options: ['rbind', options.readOnly ? 'ro' : 'rw'] };
}

/** One mount(8) invocation: its arguments and the working directory it needs. */
interface MountCommand {
  args: string[];
  cwd?: string;
}

function isBind(mount: Mount): boolean {
  return mount.type === 'bind' || mount.options.includes('bind') || mount.options.includes('rbind');
}

/**
 * The commands that mount `mount` on `target`. A read-only bind takes two: the kernel
 * ignores MS_RDONLY on the first bind, only a remount makes it read-only.
 */
function mountCommands(mount: Mount, target: string): MountCommand[] {
  if (isBind(mount)) {
    const bind: MountCommand = { args: ['-o', mount.options.includes('rbind') ? 'rbind' : 'bind', mount.source, target] };
    return mount.options.includes('ro') ? [bind, { args: ['-o', 'remount,ro,bind', target] }] : [bind];
  }
  const { options, cwd } = fitMountData(mount);
  const args = ['-t', mount.type, mount.source, ...(options.length > 0 ? ['-o', options.join(',')] : []), target];
  return [cwd === undefined ? { args } : { args, cwd }];
}

/** Make overlay lowerdirs relative to their common folder when the options exceed a page. */
function fitMountData(mount: Mount): { options: string[]; cwd?: string } {
  const size = (options: readonly string[]) => Buffer.byteLength(options.join(','));
  const index = mount.options.findIndex((o) => o.startsWith('lowerdir='));
  const lowerdirs = index < 0 ? [] : (mount.options[index] as string).slice('lowerdir='.length).split(':');
  if (mount.type === 'overlay' && lowerdirs.length > MAX_OVERLAY_LAYERS) {
    throw new ResourceExhaustedError(
      `overlay mount has ${lowerdirs.length} lower layers; the kernel stacks at most ${MAX_OVERLAY_LAYERS}`,
    );
  }
  if (size(mount.options) <= MAX_MOUNT_DATA) return { options: mount.options };
  if (mount.type !== 'overlay' || lowerdirs.length < 2) {
    throw new ResourceExhaustedError(`${mount.type} mount options are ${size(mount.options)} bytes; mount(2) takes at most ${MAX_MOUNT_DATA}`);
  }
  const cwd = commonFolder(lowerdirs);
  const options = [...mount.options];
  options[index] = `lowerdir=${lowerdirs.map((dir) => relative(cwd, dir)).join(':')}`;
  if (size(options) > MAX_MOUNT_DATA) {
    throw new ResourceExhaustedError(
      `overlay mount options are ${size(options)} bytes even with lowerdirs relative to ${cwd} ` +
        `(${lowerdirs.length} layers); mount(2) takes at most ${MAX_MOUNT_DATA}`,
    );
  }
  return { options, cwd };
}

/** The deepest folder containing every path (all absolute). */
function commonFolder(paths: readonly string[]): string {
  const split = paths.map((p) => resolve(p).split(sep));
  const first = split[0] as string[];
  let depth = 0;
  while (depth < first.length - 1 && split.every((parts) => parts[depth] === first[depth])) depth += 1;
  return first.slice(0, depth).join(sep) || sep;
}

async function runCommand(command: string, args: string[], cwd?: string): Promise<void> {
  try {
    await run(command, args, cwd === undefined ? {} : { cwd });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    const line = formatCommand({ args: [command, ...args], ...(cwd === undefined ? {} : { cwd }) });
    const message = `${line} failed: ${stderr || (err as Error).message}`;
    // umount's words for "nothing is mounted there" (util-linux).
    if (command === 'umount' && /not mounted|no mount point specified|No such file or directory/.test(stderr)) {
      throw new NotFoundError(message, { cause: err });
    }
    throw new UnavailableError(message, { cause: err });
  }
}

/** Mount every mount on `target`, in order (later ones stack on earlier ones). */
export async function mountAll(mounts: readonly Mount[], target: string): Promise<void> {
  const where = resolve(target);
  for (const mount of mounts) {
    for (const command of mountCommands(mount, where)) await runCommand('mount', command.args, command.cwd);
  }
}

/** Unmount `target`. NotFound when nothing is mounted there. */
export async function unmount(target: string): Promise<void> {
  await runCommand('umount', [resolve(target)]);
}

/**
 * The shell lines that do what `mountAll(mounts, target)` does, for a person to run:
 * `mount -t overlay overlay -o index=off,workdir=...,upperdir=...,lowerdir=... /target`, or, when
 * the lowerdirs had to be made relative, the same in a subshell that `cd`s first.
 */
export function formatMountCommand(mounts: readonly Mount[], target: string): string {
  const where = resolve(target);
  return mounts
    .flatMap((mount) => mountCommands(mount, where))
    .map((command) => formatCommand({ ...command, args: ['mount', ...command.args] }))
    .join('\n');
}

function formatCommand(command: MountCommand): string {
  const line = command.args.map(shellQuote).join(' ');
  return command.cwd === undefined ? line : `(cd ${shellQuote(command.cwd)} && ${line})`;
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
