/**
 * The native addon (native-bindings/): the few Linux syscalls node:fs does not expose.
 *
 * Loaded lazily, on the first call to `native()`, so that code paths which never need it
 * (the CLI's `--help`, a registry-only command, tests of pure modules) work even where the
 * addon was not built. Failing calls throw errors shaped like node:fs errors —
 * `code` ('ENOENT', 'EEXIST', ...), `errno` (the positive errno number), `syscall`,
 * `path` and, for renameat2, `dest` — so callers branch on `err.code` exactly as they do
 * for node:fs. Bad arguments throw TypeError/RangeError with Node's ERR_INVALID_ARG_TYPE,
 * ERR_INVALID_ARG_VALUE or ERR_OUT_OF_RANGE codes.
 *
 * Every call is synchronous: it blocks the calling thread. Call them from the worker pool
 * (which already uses synchronous fs), or, on the main thread, only where the call is
 * known to be short (flock with nonBlocking = true, xattr reads).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { UnavailableError } from './errors.js';
import { packageRoot } from './package.js';

/** A path as the kernel sees it: a string (UTF-8) or raw bytes (non-UTF-8 tar entry names). */
export type NativePath = string | Uint8Array;

/** flock(2) operations: shared, exclusive, unlock. */
export type FlockOp = 'sh' | 'ex' | 'un';

/** renameat2(2): fail with EEXIST instead of replacing an existing newPath. */
export const RENAME_NOREPLACE = 1 as const;
/** renameat2(2): atomically swap oldPath and newPath (both must exist). */
export const RENAME_EXCHANGE = 2 as const;
/** renameat2(2): leave an overlay whiteout (char 0/0 device) at oldPath (unprivileged since Linux 5.8). */
export const RENAME_WHITEOUT = 4 as const;
/** lsetxattr(2): fail with EEXIST if the attribute exists. */
export const XATTR_CREATE = 1 as const;
/** lsetxattr(2): fail with ENODATA if the attribute does not exist. */
export const XATTR_REPLACE = 2 as const;

/** The peer of a unix socket (getsockopt SO_PEERCRED). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** What a failed native call throws (the same shape as node:fs errors). */
export interface NativeError extends Error {
  /** errno name: 'ENOENT', 'EEXIST', 'EPERM', 'ENOTSUP', ... */
  code: string;
  /** The errno number, positive (node:fs uses negative numbers here; compare `code`). */
  errno: number;
  /** The failing syscall: 'open', 'syncfs', 'mknod', 'lgetxattr', 'renameat2', 'flock', ... */
  syscall: string;
  /** The path the syscall was given (oldPath for renameat2); absent for flock. */
  path?: string;
  /** renameat2's newPath. */
  dest?: string;
}

export interface NativeBindings {
  /**
   * flock(2) on an open file descriptor. Exists because a root directory has exactly one
   * owner process (flock on `root/lock`): a second process must find out, not corrupt it.
   * The lock belongs to the open file description, so it is released by 'un', by closing
   * the fd, or by the process exiting (even when killed).
   *
   * @returns true when the lock was taken (or released); false only when `nonBlocking` is
   *   true and another open file description holds a conflicting lock (EWOULDBLOCK).
   *   Without `nonBlocking` the call blocks the thread until the lock is free.
   */
  flock(fd: number, op: FlockOp, nonBlocking?: boolean): boolean;

  /**
   * syncfs(2) on the filesystem containing `path` (opened O_RDONLY|O_CLOEXEC|O_NONBLOCK,
   * synced, closed). Exists so that committed snapshots survive a power cut: one syncfs
   * after applying a layer is far cheaper than fsync on every file it wrote. An error while
   * opening reports syscall 'open'.
   */
  syncfs(path: NativePath): void;

  /**
   * mknod(2). Exists because overlay whiteouts are character devices 0/0
   * (`mode = fs.constants.S_IFCHR`, `dev = 0`), and layers may carry device nodes and FIFOs.
   * `mode` includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO, S_IFREG) and is
   * filtered by the process umask. Devices need CAP_MKNOD (EPERM otherwise), except the
   * 0/0 whiteout, which any user may create since Linux 5.8.
   */
  mknod(path: NativePath, mode: number, dev: number): void;

  /**
   * The dev_t for a major/minor pair, encoded like glibc's makedev(3) (the same value
   * fs.Stats.rdev reports). Linux device numbers have a 12-bit major (0..4095) and a
   * 20-bit minor (0..1048575); larger values throw RangeError rather than alias.
   */
  makedev(major: number, minor: number): number;

  /**
   * lgetxattr(2): the value of an extended attribute, not following symlinks; null when the
   * attribute is absent (ENODATA). Exists for `trusted.overlay.opaque` (overlay opaque
   * directories) and `security.capability` (file capabilities layers carry).
   */
  lgetxattr(path: NativePath, name: string): Buffer | null;

  /**
   * lsetxattr(2), not following symlinks. `flags` is 0 (create or replace), XATTR_CREATE
   * or XATTR_REPLACE. Exists to write `trusted.overlay.opaque=y` and the xattrs a layer
   * carries (`security.capability`, `user.*`). `trusted.*` needs CAP_SYS_ADMIN.
   */
  lsetxattr(path: NativePath, name: string, value: Uint8Array, flags?: number): void;

  /** llistxattr(2): the attribute names of `path` (the ones this process may see). */
  llistxattr(path: NativePath): string[];

  /** lremovexattr(2); ENODATA when the attribute does not exist. */
  lremovexattr(path: NativePath, name: string): void;

  /**
   * renameat2(2) relative to the current directory. Exists for atomic no-clobber commits:
   * with RENAME_NOREPLACE, moving an ingest or a snapshot into place fails with EEXIST
   * when someone else committed first, instead of silently replacing their result.
   * RENAME_EXCHANGE swaps two paths atomically; RENAME_WHITEOUT leaves a whiteout behind.
   * Some filesystems reject flags with EINVAL.
   */
  renameat2(oldPath: NativePath, newPath: NativePath, flags: number): void;

  /**
   * getsockopt(2) SO_PEERCRED on a connected unix socket: the process at the other end
   * and its user and group, as the kernel recorded them at connect(2). Exists so that
   * `layerpool serve` can refuse requests from users it was not told to trust. Fails
   * with ENOTSOCK when `fd` is not a socket. Only unix sockets carry credentials: Linux
   * answers pid 0 and the overflow uid/gid (65534) for other families.
   */
  peercred(fd: number): PeerCredentials;

  readonly RENAME_NOREPLACE: typeof RENAME_NOREPLACE;
  readonly RENAME_EXCHANGE: typeof RENAME_EXCHANGE;
  readonly RENAME_WHITEOUT: typeof RENAME_WHITEOUT;
  readonly XATTR_CREATE: typeof XATTR_CREATE;
  readonly XATTR_REPLACE: typeof XATTR_REPLACE;
}

const ADDON_RELATIVE_PATH = join('native-bindings', 'build', 'Release', 'layerpool_native.node');
const REBUILD_HINT =
  'run `npm rebuild layerpool` (needs python3, make and a C compiler: apt-get install -y python3 make g++)';
const FUNCTIONS = [
  'flock',
  'syncfs',
  'mknod',
  'makedev',
  'lgetxattr',
  'lsetxattr',
  'llistxattr',
  'lremovexattr',
  'renameat2',
  'peercred',
] as const satisfies readonly (keyof NativeBindings)[];

let loaded: NativeBindings | undefined;
let addonPath: string | undefined;

/** Absolute path of the addon file `native()` loads (whether or not it exists). */
export function nativeAddonPath(): string {
  if (addonPath === undefined) {
    let root: string;
    try {
      root = packageRoot();
    } catch (err) {
      throw new UnavailableError(`layerpool native addon: ${(err as Error).message}; ${REBUILD_HINT}`, { cause: err });
    }
    addonPath = join(root, ADDON_RELATIVE_PATH);
  }
  return addonPath;
}

/**
 * The native bindings, loaded on first use. Throws UnavailableError (naming the file, the
 * reason and the fix) when the addon is missing, stale or cannot be loaded.
 */
export function native(): NativeBindings {
  if (loaded) return loaded;
  const file = nativeAddonPath();
  let mod: unknown;
  try {
    if (!existsSync(file)) throw new Error('the file does not exist (the addon was not built)');
    mod = createRequire(import.meta.url)(file);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new UnavailableError(
      `layerpool native addon could not be loaded from ${file}: ${reason}; ${REBUILD_HINT}`,
      { cause: err },
    );
  }
  const missing = FUNCTIONS.filter(
    (name) => typeof (mod as Record<string, unknown> | null)?.[name] !== 'function',
  );
  if (missing.length > 0) {
    throw new UnavailableError(
      `layerpool native addon could not be loaded from ${file}: it is out of date ` +
        `(missing ${missing.join(', ')}); ${REBUILD_HINT}`,
    );
  }
  loaded = mod as NativeBindings;
  return loaded;
}
