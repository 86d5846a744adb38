/**
 * A toolkit to build test layers and check what applying them did.
 *
 * - tarLayer(): an independent tar writer that can produce what real tools produce and
 *   what hostile layers contain: ustar, GNU (long names via `L`/`K`, base-256 numbers)
 *   and PAX records (raw byte values, e.g. binary xattrs), with or without the
 *   end-of-archive blocks and the final padding, with trailing bytes, with a broken
 *   checksum. It does no validation on purpose.
 * - gzip/zstd/lz4 compressors (gzip in several members like pigz; lz4 through the lz4 CLI).
 * - applyBuffer(): applyLayer on an in-memory blob.
 * - describeTree(): a comparable description of a directory tree (types, modes, owners,
 *   times, contents, link targets, devices, xattrs, hardlink groups).
 * - escapeFixture(): a target root next to an `outside` directory holding a sentinel,
 *   and a check that nothing outside the root changed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import { gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import { applyLayer } from '../../src/diff/apply.js';
import type { ApplyOptions, ApplyStats } from '../../src/diff/types.js';
import { MediaType } from '../../src/images/mediatypes.js';
import { native } from '../../src/native.js';
import type { Mount } from '../../src/snapshots/snapshotter.js';
import { tempDir } from './tmp.js';
import { entryTypeOf, type EntryType } from './tree.js';

export type EntryKind = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

const TYPEFLAGS: Record<EntryKind, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

export interface EntrySpec {
  name: string;
  type?: EntryKind;
  /** A raw typeflag character instead of `type` (e.g. 'S', 'V'). */
  typeflag?: string;
  content?: string | Buffer;
  /** Override the size field (defaults to the content length). */
  size?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch. */
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extra PAX records for this entry (values are written as raw bytes). */
  pax?: Record<string, string | Buffer>;
  /** Written as `SCHILY.xattr.<name>` PAX records. */
  xattrs?: Record<string, string | Buffer>;
  /** Force base-256 for numeric fields even when they fit in octal. */
  base256?: boolean;
  /** Store a wrong header checksum. */
  badChecksum?: boolean;
}

export interface TarOptions {
  /** 'gnu' writes long names as `L`/`K` entries; 'pax' (default) as PAX records. */
  format?: 'pax' | 'gnu';
  /** End-of-archive marker: two zero blocks (default), one, or none. */
  end?: 2 | 1 | 0;
  /** Leave out the padding after the last entry's content (only with end: 0). */
  omitFinalPadding?: boolean;
  /** Bytes appended after everything else. */
  trailing?: Buffer;
}

export const DEFAULT_MTIME = 1_700_000_000;

/** Build a tar archive from entry specs. */
export function tarLayer(entries: readonly EntrySpec[], options: TarOptions = {}): Buffer {
  const format = options.format ?? 'pax';
  const parts: Buffer[] = [];
  for (const spec of entries) {
    const content = spec.content === undefined ? Buffer.alloc(0) : Buffer.from(spec.content);
    const typeflag = spec.typeflag ?? TYPEFLAGS[spec.type ?? 'file'];
    let name = spec.name;
    let linkname = spec.linkname ?? '';
    const pax: [string, Buffer][] = Object.entries(spec.pax ?? {}).map(([k, v]) => [k, Buffer.from(v)]);
    for (const [k, v] of Object.entries(spec.xattrs ?? {})) pax.push([`SCHILY.xattr.${k}`, Buffer.from(v)]);
    if (Buffer.byteLength(name) > 100) {
      if (format === 'gnu') parts.push(...withContent(header({ name: '././@LongLink', typeflag: 'L', size: Buffer.byteLength(name) + 1 }, format), Buffer.from(`${name}\0`)));
      else pax.push(['path', Buffer.from(name)]);
      name = name.slice(0, 100);
    }
    if (Buffer.byteLength(linkname) > 100) {
      if (format === 'gnu') parts.push(...withContent(header({ name: '././@LongLink', typeflag: 'K', size: Buffer.byteLength(linkname) + 1 }, format), Buffer.from(`${linkname}\0`)));
      else pax.push(['linkpath', Buffer.from(linkname)]);
      linkname = linkname.slice(0, 100);
    }
    if (pax.length > 0) {
      const body = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
      parts.push(...withContent(header({ name: `PaxHeaders/${name.slice(0, 80)}`, typeflag: 'x', size: body.length }, format), body));
    }
    const block = header(
      {
        name,
        typeflag,
        size: spec.size ?? content.length,
        mode: spec.mode ?? (spec.type === 'dir' ? 0o755 : 0o644),
        uid: spec.uid ?? 0,
        gid: spec.gid ?? 0,
        mtime: spec.mtime ?? DEFAULT_MTIME,
        linkname,
        devmajor: spec.devmajor ?? 0,
        devminor: spec.devminor ?? 0,
        base256: spec.base256 ?? false,
        badChecksum: spec.badChecksum ?? false,
      },
      format,
    );
    parts.push(...withContent(block, content));
  }
  if (options.omitFinalPadding && parts.length > 0) {
    // The last part is the padding of the last entry (possibly empty).
    parts.pop();
  }
  for (let i = 0; i < (options.end ?? 2); i++) parts.push(Buffer.alloc(512));
  if (options.trailing) parts.push(options.trailing);
  return Buffer.concat(parts);
}

type HeaderFields = Omit<EntrySpec, 'type' | 'content' | 'pax' | 'xattrs'> & { typeflag: string; size: number };

function header(f: HeaderFields, format: 'pax' | 'gnu'): Buffer {
  const block = Buffer.alloc(512);
  block.write(f.name, 0, 100, 'utf8');
  numeric(block, 100, 8, f.mode ?? 0o644, f.base256);
  numeric(block, 108, 8, f.uid ?? 0, f.base256);
  numeric(block, 116, 8, f.gid ?? 0, f.base256);
  numeric(block, 124, 12, f.size, f.base256);
  numeric(block, 136, 12, Math.floor(f.mtime ?? DEFAULT_MTIME), f.base256);
  block.write(f.typeflag, 156, 1, 'latin1');
  block.write(f.linkname ?? '', 157, 100, 'utf8');
  if (format === 'gnu') block.write('ustar  \0', 257, 8, 'latin1');
  else block.write('ustar\x0000', 257, 8, 'latin1');
  block.write('root', 265, 32);
  block.write('root', 297, 32);
  numeric(block, 329, 8, f.devmajor ?? 0, false);
  numeric(block, 337, 8, f.devminor ?? 0, false);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  if (f.badChecksum) sum += 1;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

function numeric(block: Buffer, at: number, length: number, value: number, base256 = false): void {
  const octal = value.toString(8);
  if (!base256 && value >= 0 && octal.length < length) {
    block.write(`${octal.padStart(length - 1, '0')}\0`, at, length, 'latin1');
    return;
  }
  // GNU base-256: high bit set in the first byte, big-endian two's complement.
  let v = BigInt(value);
  for (let i = length - 1; i >= 0; i--) {
    block[at + i] = Number(BigInt.asUintN(8, v));
    v >>= 8n;
  }
  block[at] = value < 0 ? 0xff : 0x80;
}

function withContent(block: Buffer, content: Buffer): Buffer[] {
  const pad = (512 - (content.length % 512)) % 512;
  return [block, content, Buffer.alloc(pad)];
}

function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.byteLength(` ${key}=`) + value.length + 1;
  let length = rest + String(rest).length;
  if (String(length).length !== String(rest).length) length = rest + String(length).length;
  return Buffer.concat([Buffer.from(`${length} ${key}=`), value, Buffer.from('\n')]);
}

/** gzip, optionally as several concatenated members (what pigz and `cat a.gz b.gz` produce). */
export function gzip(data: Buffer, members = 1): Buffer {
  const size = Math.ceil(data.length / members);
  const parts: Buffer[] = [];
  for (let i = 0; i < members; i++) parts.push(gzipSync(data.subarray(i * size, (i + 1) * size)));
  return Buffer.concat(parts);
}

export async function zstd(data: Buffer): Promise<Buffer> {
  return zstdCompress(data);
}

/** LZ4 frame through the lz4 CLI; `args` e.g. ['-BD'] (linked blocks), ['-BX'] (block checksums), ['-B4']. */
export function lz4(data: Buffer, args: string[] = []): Buffer {
  return execFileSync('lz4', ['-q', '-c', ...args], { input: data, maxBuffer: 1 << 30 });
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export const bind = (dir: string): Mount[] => [{ type: 'bind', source: dir, options: ['rbind'] }];

export function overlay(upper: string, lowers: string[] = [], extra: string[] = []): Mount[] {
  const options = [`upperdir=${upper}`, `workdir=${upper}-work`, ...extra];
  if (lowers.length > 0) options.push(`lowerdir=${lowers.join(':')}`);
  return [{ type: 'overlay', source: 'overlay', options }];
}

/** Apply an in-memory blob (plain tar unless a media type says otherwise). */
export function applyBuffer(blob: Buffer, mounts: Mount[], options: Partial<ApplyOptions> = {}): Promise<ApplyStats> {
  return applyLayer(Readable.from([blob]), mounts, { mediaType: MediaType.OCILayer, ...options });
}

/**
 * One entry as apply leaves it. Unlike tree.ts's readTree (made to compare snapshotters),
 * this keeps what apply must get right and readTree leaves out: directory mtimes and
 * every xattr, trusted.* included.
 */
export interface NodeDescription {
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in microseconds (Node sets times through doubles: sub-microsecond digits are not kept). */
  mtimeUs: number;
  content?: string;
  /** Bytes of disk a file takes (st_blocks * 512), with DescribeOptions.allocation. */
  allocated?: number;
  link?: string;
  rdev?: number;
  xattrs: Record<string, string>;
  /** The first path (in sorted order) sharing this inode, for hardlink groups. */
  inode: string;
}

export interface DescribeOptions {
  /** Leave directory mtimes out (they differ when a tool does not set them). */
  ignoreDirMtimes?: boolean;
  /** Record the disk space files take (differs between tools and filesystems). */
  allocation?: boolean;
}

/** Every entry under `root` (not the root itself), keyed by relative path. */
export function describeTree(root: string, options: DescribeOptions = {}): Record<string, NodeDescription> {
  const out: Record<string, NodeDescription> = {};
  const inodes = new Map<string, string>();
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const key = rel === '' ? name : `${rel}/${name}`;
      const lst = lstatSync(path, { bigint: true });
      const type = entryTypeOf(lst);
      const inodeKey = `${lst.dev}:${lst.ino}`;
      if (!inodes.has(inodeKey)) inodes.set(inodeKey, key);
      const xattrs: Record<string, string> = {};
      for (const x of native().llistxattr(path).sort()) xattrs[x] = (native().lgetxattr(path, x) as Buffer).toString('hex');
      const node: NodeDescription = {
        type,
        mode: Number(lst.mode & 0o7777n),
        uid: Number(lst.uid),
        gid: Number(lst.gid),
        mtimeUs: type === 'dir' && options.ignoreDirMtimes ? 0 : Number((lst.mtimeNs + 500n) / 1000n),
        xattrs,
        inode: inodes.get(inodeKey) as string,
      };
      if (type === 'symlink') {
        node.link = readlinkSync(path);
        node.mode = 0;
      }
      if (type === 'file') node.content = createHash('sha256').update(readFileSync(path)).digest('hex');
      if (type === 'file' && options.allocation) node.allocated = Number(lst.blocks) * 512;
      if (type === 'char' || type === 'block') node.rdev = Number(lst.rdev);
      out[key] = node;
      if (type === 'dir') walk(path, key);
    }
  };
  walk(root, '');
  return out;
}

export interface EscapeFixture {
  /** The apply target. */
  root: string;
  /** A directory outside the root, holding `sentinel`. */
  outside: string;
  mounts: Mount[];
  /** Assert that nothing outside the root was created, changed or removed. */
  assertOutsideUntouched(): void;
}

/**
 * base/root (the target) and base/outside/sentinel; everything but root/ is watched.
 * `setup` may add more to `outside` before the watch starts.
 */
export function escapeFixture(t: TestContext, setup?: (outside: string) => void): EscapeFixture {
  const base = tempDir(t, 'layerpool-escape-');
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  writeFileSync(join(outside, 'sentinel'), 'do not touch');
  setup?.(outside);
  const snapshot = (): string => {
    const tree = describeTree(base);
    for (const key of Object.keys(tree)) if (key === 'root' || key.startsWith('root/')) delete tree[key];
    // The base directory's own listing must not grow either.
    return JSON.stringify({ tree, base: readdirSync(base).sort() });
  };
  const before = snapshot();
  return {
    root,
    outside,
    mounts: bind(root),
    assertOutsideUntouched() {
      if (snapshot() !== before) throw new Error(`something outside ${root} changed:\n${snapshot()}\nwas\n${before}`);
    },
  };
}
