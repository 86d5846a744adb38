/**
 * Writes tar entries into the target directory: the filesystem half of a layer apply.
 *
 * Synchronous fs calls throughout: this runs in pool workers, where a blocking call
 * costs one syscall, while an async one costs a libuv pool round trip and competes with
 * every other worker for the same four pool threads.
 *
 * Semantics follow containerd's archive.applyNaive:
 * - An existing path is removed before an entry is written there, unless both are
 *   directories (then the directory stays and takes the entry's metadata). Creation
 *   never follows a symlink in the last component (O_EXCL|O_NOFOLLOW, mkdir, symlink,
 *   link, mknod), so replacing is "try, and on EEXIST remove and retry": an empty target
 *   costs no lstat per entry.
 * - Ownership (lchown, when `sameOwner`), xattrs, then mode (chown clears setuid/setgid
 *   and file capabilities, so mode comes after chown and capabilities after chown), then
 *   times. Directory modes and times are set at the end, after their children were
 *   written (creating a child changes a directory's mtime, and a read-only directory
 *   could not receive children when not root).
 * - A hardlink is a second name for an inode whose metadata its first entry set: like GNU
 *   tar (and unlike containerd), its own header's owner, mode and times are not applied.
 *   GNU tar writes xattrs only on the first name, and the lchown containerd does for the
 *   link makes the kernel drop the inode's security.capability. The target must
 *   resolve inside the root (parents chroot-like, the last component not followed). In
 *   overlay mode a target absent from the layer is looked up in the lower directories
 *   (top first, honouring whiteouts, opaque directories and non-directories that hide
 *   what is below them; symlinks inside lower layers are not followed), copied up to the
 *   same path in the layer (content, owner, mode, xattrs, times), and linked to there.
 * - Whiteouts (`.wh.<name>`, `.wh..wh..opq`) only hide what lower layers have: entries
 *   this layer wrote stay (OCI image spec, layer.md). Overlay mode creates char 0/0
 *   whiteouts and sets the opaque xattr, always (the layer may later be committed onto
 *   other parents, so lower directories at apply time do not tell which whiteouts will
 *   matter; an unneeded whiteout is harmless). A directory that replaces a whiteout in the
 *   same layer is made opaque, as overlayfs does itself. Delete mode removes what lower
 *   layers left in the target, which needs the set of paths this layer wrote (memory
 *   grows with the entry count, as in containerd).
 * - A sparse file's data regions are written at their offsets and the file is truncated
 *   to its size: the holes stay holes (containerd writes them out as zeros).
 * - Device nodes need privilege: unprivileged, they are skipped and counted. FIFOs are
 *   created either way. `trusted.overlay.*` and `user.overlay.*` xattrs in the layer are
 *   dropped: they would forge whiteouts and opaque directories.
 */
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  fchmodSync,
  fchownSync,
  ftruncateSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  opendirSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import {
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  LayerpoolError,
  ResourceExhaustedError,
  UnavailableError,
} from '../errors.js';
import { logger } from '../log.js';
import { native } from '../native.js';
import { cleanEntryPath, ConfinedRoot, joinPath, splitPath } from './paths.js';
import type { TarEntry, TarVisitor } from './tar.js';
import type { ApplyTarget } from './target.js';
import type { ApplyStats } from './types.js';

const log = logger('diff');

const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_META_PREFIX = '.wh..wh.';
const WHITEOUT_OPAQUE = '.wh..wh..opq';
const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** Read once: whether open(2)'s mode survives as given decides if a file needs an fchmod. */
const UMASK = process.umask();
/** The set-group-ID bit (not in fs.constants). */
const S_ISGID = 0o2000;
/** Owner a new file gets, in a directory without setgid whose group is ours. */
const EUID = process.geteuid?.() ?? -1;
const EGID = process.getegid?.() ?? -1;

export interface LayerWriterOptions {
  target: ApplyTarget;
  /** lchown to the tar's uid/gid. */
  sameOwner: boolean;
  /** The process may create device nodes and set privileged xattrs (it runs as root). */
  privileged: boolean;
}

export type EntryCounts = Pick<ApplyStats, 'files' | 'dirs' | 'symlinks' | 'hardlinks' | 'whiteouts' | 'skipped' | 'impliedDirs'>;

interface DeferredDir {
  physical: string;
  mode: number;
  atime: number | undefined;
  mtime: number | undefined;
}

interface Found {
  path: string;
  stat: Stats;
}

export class LayerWriter implements TarVisitor {
  readonly counts: EntryCounts = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, whiteouts: 0, skipped: 0, impliedDirs: 0 };
  private readonly tree: ConfinedRoot;
  private readonly lowerDirs: readonly string[];
  private readonly overlay: boolean;
  private readonly opaqueXattr: string;
  private readonly sameOwner: boolean;
  private readonly privileged: boolean;
  /**
   * Delete mode on a target that had content (a copy of the parent): physical paths this
   * layer wrote, which its whiteouts must not remove. An empty target has nothing for a
   * whiteout to remove, so then neither whiteouts nor this set cost anything.
   */
  private readonly written: Set<string> | undefined;
  private readonly opaqueDone = new Set<string>();
  private readonly deferred: DeferredDir[] = [];
  /** A directory or symlink was removed: deferred paths must be re-checked before use. */
  private tainted = false;
  private readonly warned = new Set<string>();
  /**
   * Directories in which a new file is created owned by (EUID, EGID) already, so an entry
   * with that owner needs no fchown (one syscall in five for a small file): directories
   * this apply created with our group (their setgid bit comes at the end, with the mode).
   */
  private readonly ownedDirs = new Set<string>();
  /**
   * Directories the layer implied (wrote into without listing) while no lower directories
   * were known: a parentless overlay apply. They got 0755; `adoptLowerDirectory` gives them
   * their parents' attributes once the parents are known.
   */
  readonly impliedWithoutLowers = new Set<string>();
  private file: { fd: number; path: string; parent: string; entry: TarEntry } | undefined;

  constructor(options: LayerWriterOptions) {
    const { target } = options;
    this.tree = new ConfinedRoot(target.root, { createDir: (physical) => this.createImpliedDir(physical) });
    this.lowerDirs = target.lowerDirs;
    this.overlay = target.whiteoutMode !== 'delete';
    this.opaqueXattr = target.whiteoutMode === 'overlay-userxattr' ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
    this.sameOwner = options.sameOwner;
    this.privileged = options.privileged;
    try {
      this.written = this.overlay || isEmptyDir(target.root) ? undefined : new Set();
      const root = lstatSync(target.root);
      if ((root.mode & S_ISGID) === 0 && root.gid === EGID) this.ownedDirs.add('');
    } catch (err) {
      throw applyFailure(err, '/');
    }
  }

  entry(entry: TarEntry): boolean {
    try {
      return this.writeEntry(entry);
    } catch (err) {
      throw applyFailure(err, entry.name);
    }
  }

  data(chunk: Buffer, position: number): void {
    const file = this.file as NonNullable<typeof this.file>;
    try {
      for (let done = 0; done < chunk.length; ) done += writeSync(file.fd, chunk, done, chunk.length - done, position + done);
    } catch (err) {
      throw applyFailure(err, file.entry.name);
    }
  }

  end(): void {
    const file = this.file as NonNullable<typeof this.file>;
    try {
      this.finishFile(file);
    } catch (err) {
      throw applyFailure(err, file.entry.name);
    } finally {
      this.file = undefined;
      closeSync(file.fd);
    }
  }

  /** After the last entry: directory modes and times. */
  finish(): void {
    for (const dir of this.deferred) {
      // Nothing was removed: every recorded directory is still a directory under real directories.
      if (this.tainted && !this.tree.isPlainDir(dir.physical)) continue;
      const path = this.tree.abs(dir.physical);
      try {
        chmodSync(path, dir.mode);
        if (dir.mtime !== undefined) lutimesSync(path, dir.atime ?? dir.mtime, dir.mtime);
      } catch (err) {
        throw applyFailure(err, dir.physical);
      }
    }
  }

  /** Release what a failed apply holds (an open file). */
  abort(): void {
    if (this.file) closeSync(this.file.fd);
    this.file = undefined;
  }

  private writeEntry(entry: TarEntry): boolean {
    const name = cleanEntryPath(entry.name);
    // The root's own entry ("./"): containerd ignores it, and the target's root is not the layer's to change.
    if (name === '') return false;
    const { parent, base } = splitPath(name);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.whiteout(parent, base, entry);
      return false;
    }
    const parentPhysical = this.tree.dir(parent, true) as string;
    const physical = joinPath(parentPhysical, base);
    const path = this.tree.abs(physical);
    this.written?.add(physical);
    switch (entry.type) {
      case 'file':
        this.openFile(path, parentPhysical, entry);
        this.counts.files++;
        return true;
      case 'dir':
        this.impliedWithoutLowers.delete(physical);
        this.makeDir(name, parentPhysical, physical, path, entry);
        this.counts.dirs++;
        return false;
      case 'symlink':
        this.makeSymlink(path, entry);
        this.counts.symlinks++;
        return false;
      case 'hardlink':
        this.makeHardlink(path, entry);
        this.counts.hardlinks++;
        return false;
      case 'char':
      case 'block':
      case 'fifo':
        this.makeNode(path, entry);
        return false;
    }
  }

  private openFile(path: string, parent: string, entry: TarEntry): void {
    const mode = entry.mode & 0o777;
    let fd: number;
    try {
      fd = openSync(path, CREATE_FILE, mode);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      this.removeExisting(path);
      fd = openSync(path, CREATE_FILE, mode);
    }
    this.file = { fd, path, parent, entry };
  }

  private finishFile({ fd, path, parent, entry }: NonNullable<typeof this.file>): void {
    // A sparse file's regions were written at their offsets: the size covers a final hole.
    if (entry.sparse !== undefined) ftruncateSync(fd, entry.size);
    const ownedAlready = entry.uid === EUID && entry.gid === EGID && this.ownedDirs.has(parent);
    if (this.sameOwner && !ownedAlready) fchownSync(fd, entry.uid, entry.gid);
    // open(2) applied mode & ~umask; special bits also need setting after the chown.
    if ((entry.mode & ~0o777) !== 0 || (entry.mode & UMASK) !== 0) fchmodSync(fd, entry.mode);
    this.setXattrs(path, entry);
    const [atime, mtime] = entryTimes(entry);
    futimesSync(fd, atime, mtime);
  }

  private makeDir(name: string, parent: string, physical: string, path: string, entry: TarEntry): void {
    let replacedWhiteout = false;
    // A new directory has no setgid bit until the end; an existing one keeps its own until then.
    let setgid = false;
    try {
      mkdirSync(path, 0o700);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      const existing = lstatSync(path);
      if (existing.isDirectory()) {
        setgid = (existing.mode & S_ISGID) !== 0;
      } else {
        replacedWhiteout = this.overlay && isWhiteout(existing);
        this.removeExisting(path, existing);
        mkdirSync(path, 0o700);
      }
    }
    this.tree.remember(name, physical);
    if (replacedWhiteout) this.setOpaque(path);
    if (this.sameOwner) lchownSync(path, entry.uid, entry.gid);
    const ourGroup = this.sameOwner ? entry.gid === EGID : this.ownedDirs.has(parent);
    this.trackOwned(physical, ourGroup && !setgid);
    this.setXattrs(path, entry);
    const [atime, mtime] = entryTimes(entry);
    this.deferred.push({ physical, mode: entry.mode, atime, mtime });
  }

  private makeSymlink(path: string, entry: TarEntry): void {
    try {
      symlinkSync(entry.linkname, path);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      this.removeExisting(path);
      symlinkSync(entry.linkname, path);
    }
    if (this.sameOwner) lchownSync(path, entry.uid, entry.gid);
    this.setXattrs(path, entry);
    const [atime, mtime] = entryTimes(entry);
    lutimesSync(path, atime, mtime);
  }

  private makeHardlink(path: string, entry: TarEntry): void {
    const targetName = cleanEntryPath(entry.linkname);
    const target = this.hardlinkTarget(targetName, entry);
    if (target.stat.isDirectory()) {
      throw new InvalidArgumentError(`hardlink ${JSON.stringify(entry.name)} -> ${JSON.stringify(entry.linkname)}: the target is a directory`);
    }
    try {
      linkSync(target.path, path);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      const existing = lstatSync(path);
      if (existing.ino !== target.stat.ino || existing.dev !== target.stat.dev) {
        this.removeExisting(path, existing);
        linkSync(target.path, path);
      }
    }
  }

  private hardlinkTarget(targetName: string, entry: TarEntry): Found {
    const describe = `hardlink ${JSON.stringify(entry.name)} -> ${JSON.stringify(entry.linkname)}`;
    if (targetName === '') throw new InvalidArgumentError(`${describe}: the target is the root`);
    const { parent, base } = splitPath(targetName);
    const parentPhysical = this.tree.dir(parent, false);
    if (parentPhysical !== undefined) {
      const path = this.tree.abs(joinPath(parentPhysical, base));
      const stat = lstatSync(path, { throwIfNoEntry: false });
      if (stat !== undefined) {
        if (this.overlay && isWhiteout(stat)) throw new InvalidArgumentError(`${describe}: the target was deleted by this layer`);
        return { path, stat };
      }
    }
    const copied = this.lowerDirs.length > 0 ? this.copyUp(targetName) : undefined;
    if (copied === undefined) {
      const where = this.lowerDirs.length > 0 ? 'the layer or its parents' : 'the layer';
      throw new InvalidArgumentError(`${describe}: the target does not exist in ${where}`);
    }
    return copied;
  }

  /** Copy a lower layer's entry to the same path in the layer being applied. */
  private copyUp(name: string): Found | undefined {
    const source = this.findInLowers(name);
    if (source === undefined || source.stat.isDirectory()) return source;
    const { parent, base } = splitPath(name);
    const path = this.tree.abs(joinPath(this.tree.dir(parent, true) as string, base));
    const { stat } = source;
    if (stat.isFile()) copyFileSync(source.path, path, constants.COPYFILE_EXCL);
    else if (stat.isSymbolicLink()) symlinkSync(readlinkSync(source.path), path);
    else native().mknod(path, stat.mode, stat.rdev);
    if (this.sameOwner) lchownSync(path, stat.uid, stat.gid);
    if (!stat.isSymbolicLink()) chmodSync(path, stat.mode & 0o7777);
    this.copyXattrs(source.path, path);
    lutimesSync(path, stat.atime, stat.mtime);
    return { path, stat: lstatSync(path) };
  }

  /**
   * The entry `name` as the merged view of the lower directories shows it: the topmost
   * lower that has it, unless a higher one hides it (a whiteout, an opaque directory, or
   * a non-directory in place of one of its parents).
   */
  private findInLowers(name: string): Found | undefined {
    const parts = name.split('/');
    for (const lower of this.lowerDirs) {
      let path = lower;
      let opaque = false;
      let missing = false;
      for (let i = 0; i < parts.length; i++) {
        path = `${path}/${parts[i] as string}`;
        const stat = lstatSync(path, { throwIfNoEntry: false });
        if (stat === undefined) {
          missing = true;
          break;
        }
        if (isWhiteout(stat)) return undefined;
        if (i === parts.length - 1) return { path, stat };
        if (!stat.isDirectory()) return undefined;
        if (native().lgetxattr(path, this.opaqueXattr)?.toString() === 'y') opaque = true;
      }
      if (missing && opaque) return undefined;
    }
    return undefined;
  }

  private makeNode(path: string, entry: TarEntry): void {
    if (entry.type !== 'fifo' && !this.privileged) {
      this.skipDevice(entry);
      return;
    }
    const typeBits = entry.type === 'char' ? constants.S_IFCHR : entry.type === 'block' ? constants.S_IFBLK : constants.S_IFIFO;
    const dev = entry.type === 'fifo' ? 0 : native().makedev(entry.devmajor, entry.devminor);
    try {
      native().mknod(path, typeBits | (entry.mode & 0o777), dev);
    } catch (err) {
      const code = errorCode(err);
      if (code === 'EPERM' && entry.type !== 'fifo') {
        // Root without CAP_MKNOD (a user namespace, a restricted container).
        this.skipDevice(entry);
        return;
      }
      if (code !== 'EEXIST') throw err;
      this.removeExisting(path);
      native().mknod(path, typeBits | (entry.mode & 0o777), dev);
    }
    if (this.sameOwner) lchownSync(path, entry.uid, entry.gid);
    this.setXattrs(path, entry);
    chmodSync(path, entry.mode);
    const [atime, mtime] = entryTimes(entry);
    lutimesSync(path, atime, mtime);
  }

  private skipDevice(entry: TarEntry): void {
    this.counts.skipped++;
    this.warnOnce('device', { entry: entry.name }, 'device nodes skipped: creating them needs privilege (CAP_MKNOD)');
  }

  private whiteout(parent: string, base: string, entry: TarEntry): void {
    if (base === WHITEOUT_OPAQUE) {
      this.counts.whiteouts++;
      this.opaque(parent);
      return;
    }
    if (base.startsWith(WHITEOUT_META_PREFIX)) {
      // AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not a deletion.
      log.debug({ entry: entry.name }, 'ignored whiteout metadata entry');
      return;
    }
    const hidden = base.slice(WHITEOUT_PREFIX.length);
    if (hidden === '' || hidden === '.' || hidden === '..') {
      throw new InvalidArgumentError(`invalid whiteout ${JSON.stringify(entry.name)}: it names no entry of its directory`);
    }
    this.counts.whiteouts++;
    if (this.overlay) {
      const path = this.tree.abs(joinPath(this.tree.dir(parent, true) as string, hidden));
      // Whatever is there already was written by this layer, which its own whiteouts do not hide.
      if (lstatSync(path, { throwIfNoEntry: false }) !== undefined) return;
      native().mknod(path, constants.S_IFCHR, 0);
      if (this.sameOwner) lchownSync(path, entry.uid, entry.gid);
      return;
    }
    if (this.written === undefined) return;
    const parentPhysical = this.tree.dir(parent, false);
    if (parentPhysical === undefined) return;
    const physical = joinPath(parentPhysical, hidden);
    if (this.written.has(physical)) return;
    const path = this.tree.abs(physical);
    const existing = lstatSync(path, { throwIfNoEntry: false });
    if (existing !== undefined) this.removeExisting(path, existing);
  }

  private opaque(parent: string): void {
    if (this.overlay) {
      this.setOpaque(this.tree.abs(this.tree.dir(parent, true) as string));
      return;
    }
    if (this.written === undefined) return;
    const physical = this.tree.dir(parent, false);
    if (physical === undefined || this.opaqueDone.has(physical)) return;
    this.opaqueDone.add(physical);
    this.removeLowerChildren(physical);
  }

  /** Delete mode: remove everything under `physical` this layer did not write. */
  private removeLowerChildren(physical: string): void {
    const dir = this.tree.abs(physical);
    for (const child of readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
      const name = child.name.toString();
      // A name that is not UTF-8 cannot have come from this layer (such names are refused).
      const childPhysical = Buffer.from(name).equals(child.name) ? joinPath(physical, name) : undefined;
      if (childPhysical === undefined || !this.written?.has(childPhysical)) {
        this.removeExisting(Buffer.concat([Buffer.from(`${dir}/`), child.name]));
      } else if (child.isDirectory()) {
        this.removeLowerChildren(childPhysical);
      }
    }
  }

  private setOpaque(path: string): void {
    native().lsetxattr(path, this.opaqueXattr, Buffer.from('y'));
  }

  private removeExisting(path: string | Buffer, existing: Stats = lstatSync(path)): void {
    if (existing.isDirectory()) rmSync(path, { recursive: true, force: true });
    else unlinkSync(path);
    if (existing.isDirectory() || existing.isSymbolicLink()) {
      this.tree.invalidate();
      this.ownedDirs.clear();
      this.tainted = true;
    }
  }

  private trackOwned(physical: string, owned: boolean): void {
    if (owned) this.ownedDirs.add(physical);
    else this.ownedDirs.delete(physical);
  }

  /** Called by the path walk for a missing parent directory. */
  private createImpliedDir(physical: string): void {
    const path = this.tree.abs(physical);
    mkdirSync(path, 0o700);
    this.counts.impliedDirs++;
    this.written?.add(physical);
    // containerd's mkparent: the lower layer's directory attributes when it has one, else 0755.
    const lower = this.lowerDirs.length > 0 ? this.findInLowers(physical) : undefined;
    const parentOwned = this.ownedDirs.has(splitPath(physical).parent);
    if (this.lowerDirs.length === 0) this.impliedWithoutLowers.add(physical);
    if (lower === undefined || !lower.stat.isDirectory()) {
      this.trackOwned(physical, parentOwned);
      this.deferred.push({ physical, mode: 0o755, atime: undefined, mtime: undefined });
      return;
    }
    if (this.sameOwner) lchownSync(path, lower.stat.uid, lower.stat.gid);
    this.trackOwned(physical, this.sameOwner ? lower.stat.gid === EGID : parentOwned);
    this.copyXattrs(lower.path, path);
    const mtime = lower.stat.mtimeMs / 1000;
    this.deferred.push({ physical, mode: lower.stat.mode & 0o7777, atime: lower.stat.atimeMs / 1000, mtime });
  }

  /**
   * Give a directory this layer implied the attributes the lower layers give it (owner,
   * mode, xattrs, times), as if it had been applied on top of them: what a parentless
   * apply could not know. Nothing happens when the lowers do not have it as a directory.
   */
  adoptLowerDirectory(physical: string): void {
    // Later entries of the layer may have replaced the directory, or one of its parents by a
    // symlink: every component must still be a real directory, or chmod would follow it out.
    try {
      if (!this.tree.isPlainDir(physical)) return;
      const path = this.tree.abs(physical);
      const lower = this.findInLowers(physical);
      if (lower === undefined || !lower.stat.isDirectory()) return;
      if (this.sameOwner) lchownSync(path, lower.stat.uid, lower.stat.gid);
      this.copyXattrs(lower.path, path);
      chmodSync(path, lower.stat.mode & 0o7777);
      lutimesSync(path, lower.stat.atime, lower.stat.mtime);
    } catch (err) {
      throw applyFailure(err, physical);
    }
  }

  private setXattrs(path: string, entry: TarEntry): void {
    if (entry.xattrs === undefined) return;
    for (const [name, value] of entry.xattrs) {
      if (isOverlayXattr(name)) {
        this.warnOnce('overlay-xattr', { entry: entry.name, xattr: name }, 'dropped overlay xattrs from the layer (they would forge whiteouts)');
        continue;
      }
      this.setXattr(path, name, value, entry.type === 'file' || entry.type === 'dir', entry.name);
    }
  }

  private copyXattrs(from: string, to: string): void {
    const { llistxattr, lgetxattr } = native();
    const regularOrDir = !lstatSync(to).isSymbolicLink();
    for (const name of llistxattr(from)) {
      if (isOverlayXattr(name)) continue;
      const value = lgetxattr(from, name);
      if (value !== null) this.setXattr(to, name, value, regularOrDir, to);
    }
  }

  private setXattr(path: string, name: string, value: Uint8Array, regularOrDir: boolean, entryName: string): void {
    try {
      native().lsetxattr(path, name, value);
    } catch (err) {
      const code = errorCode(err);
      // As containerd: user.* xattrs only exist on files and directories; filesystems without xattrs.
      const ignorable =
        code === 'ENOTSUP' ||
        code === 'EOPNOTSUPP' ||
        (code === 'EPERM' && name.startsWith('user.') && !regularOrDir) ||
        // trusted.* and security.* need privilege; unprivileged applies keep going without them.
        (code === 'EPERM' && !this.privileged);
      if (!ignorable) throw err;
      this.warnOnce(`xattr:${code}`, { entry: entryName, xattr: name, code }, 'xattrs from the layer could not be set and were skipped');
    }
  }

  private warnOnce(kind: string, details: Record<string, unknown>, message: string): void {
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    log.warn({ ...details, root: this.tree.root }, message);
  }
}

/** containerd's latestTime: access time never earlier than the modification time. */
function entryTimes(entry: TarEntry): [atime: number, mtime: number] {
  const { atime, mtime } = entry;
  return [atime !== undefined && atime > mtime ? atime : mtime, mtime];
}

function isEmptyDir(path: string): boolean {
  const dir = opendirSync(path);
  try {
    return dir.readSync() === null;
  } finally {
    dir.closeSync();
  }
}

function isWhiteout(stat: Stats): boolean {
  return stat.isCharacterDevice() && stat.rdev === 0;
}

function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A typed error for a failed write. System call errors are classified by errno: out of
 * space or descriptors is ResourceExhausted, a refused privilege or read-only target a
 * FailedPrecondition, an I/O error Unavailable, and the rest (ENOTDIR, ENAMETOOLONG,
 * EMLINK, ...) the layer asking for something the filesystem cannot hold: InvalidArgument.
 */
function applyFailure(err: unknown, entryName: string): LayerpoolError {
  if (err instanceof LayerpoolError) return err;
  const message = `apply layer entry ${JSON.stringify(entryName)}: ${err instanceof Error ? err.message : String(err)}`;
  const options = { cause: err };
  if (err instanceof RangeError) return new InvalidArgumentError(message, options);
  if (typeof (err as { syscall?: unknown } | null)?.syscall !== 'string') return new InternalError(message, options);
  switch (errorCode(err)) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EMFILE':
    case 'ENFILE':
    case 'ENOMEM':
      return new ResourceExhaustedError(message, options);
    case 'EPERM':
    case 'EACCES':
    case 'EROFS':
    case 'ENOTSUP':
    case 'EOPNOTSUPP':
    case 'EXDEV':
      return new FailedPreconditionError(message, options);
    case 'EIO':
    case 'EAGAIN':
    case 'EBUSY':
      return new UnavailableError(message, options);
    default:
      return new InvalidArgumentError(message, options);
  }
}
