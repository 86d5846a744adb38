/**
 * Path confinement for layer apply: every name in a layer is resolved inside the target
 * root, and nothing the layer contains (`..`, absolute names, symlinked parents, symlink
 * chains, loops) can make a write land outside it.
 *
 * Rules (DESIGN.md, "Security rules for apply"):
 * - Names are cleaned lexically first, as containerd does (filepath.Clean): a leading `/`
 *   or `./`, `.` components and repeated slashes go; a `..` that would climb above the
 *   root makes the layer malformed (InvalidArgument), as does a NUL byte.
 * - Parent directories are then walked one component at a time with lstat. A symlink met
 *   on the way is followed as if the root were `/` (chroot-like, like containerd's
 *   fs.RootPath): an absolute target restarts at the root, `..` stops at the root, and
 *   every component of the target goes through the same walk, so a chain of symlinks
 *   cannot leave the root either. Missing directories are created on the way (mkdir -p).
 * - The last component of a name is never followed: the caller creates it with calls
 *   that do not follow symlinks (O_EXCL|O_NOFOLLOW, mkdir, symlink, link, mknod).
 *
 * Walking every component of every name would cost an lstat per component per entry, so
 * resolved directories are cached by their cleaned name. The cache is only valid while
 * no directory or symlink it may have walked through is removed or replaced: the writer
 * calls invalidate() whenever it removes one (rare in real layers).
 *
 * The snapshot being applied is private to this apply (a prepared snapshot nobody else
 * writes), so the walk does not defend against a concurrent writer swapping directories
 * for symlinks between the check and the use — nor does containerd's.
 */
import { lstatSync, readlinkSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';

/** Linux's limit on symlinks followed in one lookup (MAXSYMLINKS). */
const MAX_SYMLINKS = 40;
/** Cleared when full, so a layer with millions of directories cannot grow it without bound. */
const MAX_CACHED_DIRS = 65536;

/** A `.` or `..` component, an empty one, or a NUL byte, once leading `./` and `/` and one trailing `/` are gone. */
const NEEDS_CLEANING = /(?:^|\/)\.{1,2}(?:\/|$)|\/\/|^\/|\/$|\0/;

/**
 * The root-relative form of a tar entry name: components joined by `/`, no `.`, `..`
 * or empty components; '' is the root itself.
 */
export function cleanEntryPath(name: string): string {
  // Fast path for the common shapes ("usr/bin/x", "./usr/bin/x", "usr/lib/"): no split.
  let start = 0;
  while (name.startsWith('./', start) || name.startsWith('/', start)) start += name[start] === '/' ? 1 : 2;
  const end = name.length > start && name.endsWith('/') ? name.length - 1 : name.length;
  const trimmed = start === 0 && end === name.length ? name : name.slice(start, end);
  if (!NEEDS_CLEANING.test(trimmed)) return trimmed;
  if (name.includes('\0')) throw new InvalidArgumentError(`layer entry name ${JSON.stringify(name)} contains a NUL byte`);
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw new InvalidArgumentError(`layer entry ${JSON.stringify(name)} climbs above the root`);
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  return parts.join('/');
}

/** `dir/name` for root-relative paths ('' is the root). */
export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Split a cleaned, non-root path into its parent and its last component. */
export function splitPath(path: string): { parent: string; base: string } {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? { parent: '', base: path } : { parent: path.slice(0, slash), base: path.slice(slash + 1) };
}

export interface ConfinedRootHooks {
  /**
   * Create the missing directory `physical` (root-relative, its parent exists) on the way
   * to a name. The writer decides its metadata (defaults, or copied from a lower layer).
   */
  createDir(physical: string): void;
}

/**
 * A directory tree whose names resolve chroot-like inside `root`. Paths given in are
 * cleaned names (cleanEntryPath); paths given out are "physical": root-relative, made of
 * real directories only (no symlinks), so the kernel can be handed root + '/' + physical.
 */
export class ConfinedRoot {
  readonly root: string;
  private readonly hooks: ConfinedRootHooks;
  private readonly cache = new Map<string, string>();

  constructor(root: string, hooks: ConfinedRootHooks) {
    this.root = root;
    this.hooks = hooks;
  }

  /** Absolute path of a physical path. */
  abs(physical: string): string {
    return physical === '' ? this.root : `${this.root}/${physical}`;
  }

  /**
   * The physical path of directory `name`, following symlinks chroot-like. With
   * `create`, missing directories are created; without, undefined means "does not exist".
   * A component that exists and is not a directory (or a symlink to one) is an error.
   */
  dir(name: string, create: boolean): string | undefined {
    if (name === '') return '';
    const cached = this.cache.get(name);
    if (cached !== undefined) return cached;
    const { parent, base } = splitPath(name);
    const parentPhysical = this.dir(parent, create);
    if (parentPhysical === undefined) return undefined;
    const physical = this.step(parentPhysical, base, create, { followed: 0 }, name);
    if (physical !== undefined) this.remember(name, physical);
    return physical;
  }

  /** Record that directory `name` now exists at `physical` (the writer just made it). */
  remember(name: string, physical: string): void {
    if (this.cache.size >= MAX_CACHED_DIRS) this.cache.clear();
    this.cache.set(name, physical);
  }

  /** A directory or symlink was removed or replaced: forget every resolution. */
  invalidate(): void {
    this.cache.clear();
  }

  /** Is every component of `physical` still a real directory? (Checked without the cache.) */
  isPlainDir(physical: string): boolean {
    let path = this.root;
    for (const part of physical.split('/')) {
      if (part === '') continue;
      path = `${path}/${part}`;
      const stat = lstatSync(path, { throwIfNoEntry: false });
      if (stat === undefined || !stat.isDirectory()) return false;
    }
    return true;
  }

  private step(dir: string, part: string, create: boolean, loop: { followed: number }, name: string): string | undefined {
    if (part === '' || part === '.') return dir;
    if (part === '..') return splitPath(dir).parent;
    const physical = joinPath(dir, part);
    const path = this.abs(physical);
    const stat = lstatSync(path, { throwIfNoEntry: false });
    if (stat === undefined) {
      if (!create) return undefined;
      this.hooks.createDir(physical);
      return physical;
    }
    if (stat.isDirectory()) return physical;
    if (stat.isSymbolicLink()) {
      if (++loop.followed > MAX_SYMLINKS) {
        throw new InvalidArgumentError(`layer entry ${JSON.stringify(name)}: too many levels of symbolic links`);
      }
      const target = readlinkSync(path);
      let resolved: string | undefined = target.startsWith('/') ? '' : dir;
      for (const targetPart of target.split('/')) {
        resolved = this.step(resolved, targetPart, create, loop, name);
        if (resolved === undefined) return undefined;
      }
      return resolved;
    }
    throw new InvalidArgumentError(`layer entry ${JSON.stringify(name)}: /${physical} exists and is not a directory`);
  }
}
