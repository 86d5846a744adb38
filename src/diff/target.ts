/**
 * Where a layer goes, decided from the mounts of the prepared snapshot without mounting
 * anything (containerd's overlay apply optimisation):
 * - `bind` (or `none` with a `bind`/`rbind` option): the source directory; whiteouts
 *   delete (a native snapshot is a full copy of its parent) unless the caller says the
 *   directory is an overlay layer. A parentless overlay snapshot is mounted as a bind of
 *   its `fs` directory and cannot be told from a native one by its path, so that case is
 *   decided by the explicit `whiteoutMode` option only.
 * - `overlay`: the `upperdir=` directory, written directly; `lowerdir=` lists the parents
 *   (top first), used to copy up hardlink targets and the attributes of directories the
 *   layer implies but does not list. Whiteouts are overlay whiteouts, in the `user.`
 *   xattr namespace when the mount has `userxattr`.
 */
import { InvalidArgumentError, NotImplementedError } from '../errors.js';
import type { Mount } from '../snapshots/snapshotter.js';
import type { WhiteoutMode } from './types.js';

export interface ApplyTarget {
  /** The directory the layer is written into. */
  root: string;
  /** Parent layers' directories, top first (overlay mounts only). */
  lowerDirs: string[];
  whiteoutMode: WhiteoutMode;
}

export function applyTarget(mounts: readonly Mount[], whiteoutMode: WhiteoutMode | undefined): ApplyTarget {
  if (mounts.length !== 1) {
    throw new NotImplementedError(`layer apply needs exactly one bind or overlay mount, got ${mounts.length}`);
  }
  const mount = mounts[0] as Mount;
  const options = mount.options ?? [];
  if (options.includes('ro')) throw new InvalidArgumentError(`cannot apply a layer onto a read-only mount of ${mount.source}`);

  if (mount.type === 'bind' || (mount.type === 'none' && (options.includes('bind') || options.includes('rbind')))) {
    return { root: absolute(mount.source, 'bind source'), lowerDirs: [], whiteoutMode: whiteoutMode ?? 'delete' };
  }
  if (mount.type === 'overlay') {
    const upper = optionValue(options, 'upperdir');
    if (upper === undefined) throw new InvalidArgumentError('cannot apply a layer onto an overlay mount without upperdir (a read-only view)');
    const lower = optionValue(options, 'lowerdir');
    const lowerDirs = lower === undefined ? [] : splitLowerDirs(lower).map((dir) => absolute(dir, 'lowerdir'));
    const defaultMode: WhiteoutMode = options.includes('userxattr') ? 'overlay-userxattr' : 'overlay';
    return { root: absolute(upper, 'upperdir'), lowerDirs, whiteoutMode: whiteoutMode ?? defaultMode };
  }
  throw new NotImplementedError(`cannot apply a layer onto a ${JSON.stringify(mount.type)} mount: only bind and overlay are supported`);
}

/**
 * The layer directories a (read-only) view shows, top first: a bind's source, or an
 * overlay's upperdir (if any) and lowerdirs.
 */
export function lowerDirsOf(mounts: readonly Mount[]): string[] {
  const dirs: string[] = [];
  for (const mount of mounts) {
    const options = mount.options ?? [];
    if (mount.type === 'bind' || (mount.type === 'none' && (options.includes('bind') || options.includes('rbind')))) {
      dirs.push(absolute(mount.source, 'bind source'));
    } else if (mount.type === 'overlay') {
      const upper = optionValue(options, 'upperdir');
      if (upper !== undefined) dirs.push(absolute(upper, 'upperdir'));
      const lower = optionValue(options, 'lowerdir');
      if (lower !== undefined) dirs.push(...splitLowerDirs(lower).map((dir) => absolute(dir, 'lowerdir')));
    } else {
      throw new NotImplementedError(`cannot read layers from a ${JSON.stringify(mount.type)} mount`);
    }
  }
  return dirs;
}

function optionValue(options: readonly string[], key: string): string | undefined {
  const prefix = `${key}=`;
  const option = options.find((o) => o.startsWith(prefix));
  return option?.slice(prefix.length);
}

/** overlayfs separates lower directories with `:`; a literal colon is escaped as `\:`. */
function splitLowerDirs(value: string): string[] {
  return value
    .split(/(?<!\\):/)
    .filter((dir) => dir !== '')
    .map((dir) => dir.replaceAll('\\:', ':'));
}

function absolute(path: string, what: string): string {
  if (!path.startsWith('/')) throw new InvalidArgumentError(`${what} ${JSON.stringify(path)} is not an absolute path`);
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}
