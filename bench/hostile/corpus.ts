/**
 * The malicious-layer corpus: layers built to escape the snapshot root, exhaust the disk
 * or confuse the tar reader, each with the outcome layerpool promises for it. The tests
 * in test/hostile/ pull every case through the whole pull path; this script writes them
 * into an OCI layout so that any puller can be tried on them:
 *
 *   node --import tsx bench/hostile/corpus.ts <layout-dir> [<outside-dir>]
 *   layerpool pull oci-layout://<layout-dir>:<case-name>
 *
 * Each case builds its blob from scratch (our own tar writer in test/helpers/layers.ts,
 * GNU tar for sparse files, hand-made zstd frames for the bombs), so the corpus has no
 * binary files. `outside` is an absolute directory outside the root that the layers aim
 * at (symlinks to it, names under it); the tests put a sentinel there.
 *
 * Outcomes:
 * - reject: the pull fails with this error code (and a message matching `message`);
 * - safe:   the pull succeeds; these paths exist / do not exist in the layer's snapshot;
 * - exact:  the pull succeeds and the layer's snapshot holds exactly these paths.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, fchmodSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { compress as zstdCompress, decompress as zstdDecompress } from 'zstd-napi';
import { declaredCompression, sniffCompression } from '../../src/diff/decompress.js';
import { digestOf } from '../../src/digest.js';
import { ErrorCode } from '../../src/errors.js';
import { MediaType } from '../../src/images/mediatypes.js';
import { OCILayout } from '../../src/layout/index.js';
import { gzip, tarLayer, type EntrySpec } from '../../test/helpers/layers.js';
import { composeImage } from '../../test/pull/helpers.js';

export interface HostileTarget {
  /** An absolute directory outside the snapshot root that the layer tries to reach. */
  outside: string;
}

/** What a node in the layer's snapshot must be; unset fields are not checked. */
export interface ExpectedNode {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';
  content?: string | Buffer;
  link?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  rdev?: number;
  /** The complete set of xattrs, values as UTF-8 or hex (`hex:` prefix). */
  xattrs?: Record<string, string>;
  /** Bytes of disk the file may take at most (a sparse file's holes stay holes). */
  allocatedAtMost?: number;
}

export type HostileExpectation =
  | { kind: 'reject'; code: ErrorCode; message: RegExp }
  | { kind: 'safe'; exists: string[]; absent: string[] }
  | { kind: 'exact'; tree: Record<string, ExpectedNode> };

export interface HostileCase {
  /** Also the layout tag of the case's image. */
  name: string;
  /** The blob as the registry or layout serves it (compressed or not, per mediaType). */
  build(target: HostileTarget): Buffer;
  mediaType: string;
  expect: HostileExpectation | ((target: HostileTarget) => HostileExpectation);
  /** The diffID the image config lists; default: the sha256 of the decompressed blob. */
  diffID?: string;
  /** Limits the pull applies with (bomb cases). */
  applyOpts?: { maxUncompressedBytes?: number; maxEntries?: number };
}

/** The limit the bomb cases pull with: they inflate to tens of GiB. */
export const BOMB_LIMIT_BYTES = 32 << 20;
/** A diffID for blobs whose real one costs tens of GiB of hashing: the apply stops before it is compared. */
const NOT_CHECKED = digestOf('a decompression bomb: its diffID is never reached');
const GiB = 1024 ** 3;

const reject = (code: ErrorCode, message: RegExp): HostileExpectation => ({ kind: 'reject', code, message });
const safe = (exists: string[], absent: string[] = []): HostileExpectation => ({ kind: 'safe', exists, absent });
const exact = (tree: Record<string, ExpectedNode>): HostileExpectation => ({ kind: 'exact', tree });
/** `outside` as a path inside the root (where a chroot-like resolution puts it). */
const inside = (target: HostileTarget): string => target.outside.replace(/^\/+/, '');
/** A relative symlink target that climbs far above any root, then down to `outside`. */
const climbTo = (target: HostileTarget): string => `${'../'.repeat(32)}${inside(target)}`;

function plainTar(entries: (target: HostileTarget) => EntrySpec[], options: Parameters<typeof tarLayer>[1] = {}): (target: HostileTarget) => Buffer {
  return (target) => tarLayer(entries(target), options);
}

function tarCase(name: string, entries: (target: HostileTarget) => EntrySpec[], expect: HostileCase['expect'], options: Parameters<typeof tarLayer>[1] = {}): HostileCase {
  return { name, build: plainTar(entries, options), mediaType: MediaType.OCILayer, expect };
}

const traversal: HostileCase[] = [
  tarCase('traversal-dotdot', () => [{ name: '../pwned', content: 'x' }], reject(ErrorCode.InvalidArgument, /climbs above the root/)),
  tarCase('traversal-nested-dotdot', () => [{ name: 'a/../../pwned', content: 'x' }], reject(ErrorCode.InvalidArgument, /climbs above the root/)),
  tarCase('traversal-dotdot-after-normalisation', () => [{ name: './a/./b//../../../pwned', content: 'x' }], reject(ErrorCode.InvalidArgument, /climbs above the root/)),
  tarCase('traversal-pax-path', () => [{ name: 'harmless', content: 'x', pax: { path: 'x/../../../pwned' } }], reject(ErrorCode.InvalidArgument, /climbs above the root/)),
  tarCase('traversal-gnu-long-name', () => [{ name: `${'d'.repeat(120)}/../../pwned`, content: 'x' }], reject(ErrorCode.InvalidArgument, /climbs above the root/), { format: 'gnu' }),
  tarCase('traversal-hardlink-name', () => [{ name: 'f', content: 'x' }, { name: '../pwned', type: 'hardlink', linkname: 'f' }], reject(ErrorCode.InvalidArgument, /climbs above the root/)),
  tarCase('traversal-absolute-name', (t) => [{ name: `${t.outside}/pwned`, content: 'x' }], (t) => safe([`${inside(t)}/pwned`])),
  tarCase('traversal-dotdot-that-stays-inside', () => [{ name: 'a/../inside', content: 'x' }], exact({ inside: { type: 'file', content: 'x' } })),
  tarCase('traversal-nul-in-pax-path', () => [{ name: 'f', content: 'x', pax: { path: 'ok\0/../../../pwned' } }], reject(ErrorCode.InvalidArgument, /NUL/)),
];

const symlinks: HostileCase[] = [
  tarCase('symlink-to-root-then-file', () => [
    { name: 'evil', type: 'symlink', linkname: '/' },
    { name: 'evil/pwned', content: 'x' },
  ], exact({ evil: { type: 'symlink', link: '/' }, pwned: { type: 'file', content: 'x' } })),
  tarCase('symlink-absolute-outside-then-file', (t) => [
    { name: 'evil', type: 'symlink', linkname: t.outside },
    { name: 'evil/pwned', content: 'x' },
    { name: 'evil/sentinel', content: 'overwritten?' },
  ], (t) => safe([`${inside(t)}/pwned`, `${inside(t)}/sentinel`, 'evil'])),
  tarCase('symlink-relative-climb-then-file-dir-fifo', (t) => [
    { name: 'up', type: 'symlink', linkname: climbTo(t) },
    { name: 'up/pwned', content: 'x' },
    { name: 'up/dir/', type: 'dir' },
    { name: 'up/fifo', type: 'fifo' },
  ], (t) => safe([`${inside(t)}/pwned`, `${inside(t)}/dir`, `${inside(t)}/fifo`])),
  tarCase('symlink-chain', (t) => [
    { name: 'a', type: 'symlink', linkname: 'b' },
    { name: 'b', type: 'symlink', linkname: '/c/../../d' },
    { name: 'd', type: 'symlink', linkname: `../../${inside(t)}` },
    { name: 'a/pwned', content: 'x' },
  ], (t) => safe([`${inside(t)}/pwned`, 'a', 'b', 'd'])),
  tarCase('symlink-replaces-directory-then-file', (t) => [
    { name: 'd/', type: 'dir' },
    { name: 'd/early', content: 'the walk cached d as a directory' },
    { name: 'd', type: 'symlink', linkname: t.outside },
    { name: 'd/pwned', content: 'x' },
  ], (t) => safe([`${inside(t)}/pwned`, 'd'], ['d/early'])),
  tarCase('symlink-to-sibling-parent', () => [
    { name: 'a/b/', type: 'dir' },
    { name: 'a/b/up', type: 'symlink', linkname: '../..' },
    { name: 'a/b/way-up', type: 'symlink', linkname: '../../../../..' },
    { name: 'a/b/up/x', content: 'x' },
    { name: 'a/b/way-up/y', content: 'y' },
  ], safe(['a/b/up', 'a/b/way-up', 'x', 'y'])),
  tarCase('symlink-loop', () => [
    { name: 'x', type: 'symlink', linkname: 'y' },
    { name: 'y', type: 'symlink', linkname: 'x' },
    { name: 'x/f', content: 'x' },
  ], reject(ErrorCode.InvalidArgument, /too many levels of symbolic links/)),
  tarCase('symlink-dangling-then-directory-under-it', () => [
    { name: 'd', type: 'symlink', linkname: '/nonexistent/deep' },
    { name: 'd/x/', type: 'dir' },
  ], safe(['d', 'nonexistent/deep/x'])),
  tarCase('symlink-outside-replaced-by-file', (t) => [
    { name: 'link', type: 'symlink', linkname: join(t.outside, 'sentinel') },
    { name: 'link', content: 'replaced' },
  ], exact({ link: { type: 'file', content: 'replaced' } })),
  tarCase('file-as-parent', () => [{ name: 'file', content: 'x' }, { name: 'file/child', content: 'y' }], reject(ErrorCode.InvalidArgument, /not a directory/)),
  tarCase('fifo-as-parent', () => [{ name: 'fifo', type: 'fifo' }, { name: 'fifo/child', content: 'y' }], reject(ErrorCode.InvalidArgument, /not a directory/)),
];

const hardlinks: HostileCase[] = [
  tarCase('hardlink-dotdot-target', () => [{ name: 'h', type: 'hardlink', linkname: '../outside/sentinel' }], reject(ErrorCode.InvalidArgument, /climbs above the root/)),
  tarCase('hardlink-absolute-outside-target', (t) => [{ name: 'h', type: 'hardlink', linkname: join(t.outside, 'sentinel') }], reject(ErrorCode.InvalidArgument, /does not exist in the layer/)),
  tarCase('hardlink-through-symlink', (t) => [
    { name: 's', type: 'symlink', linkname: climbTo(t) },
    { name: 'h', type: 'hardlink', linkname: 's/sentinel' },
  ], reject(ErrorCode.InvalidArgument, /does not exist in the layer/)),
  tarCase('hardlink-to-symlink-pointing-outside', (t) => [
    { name: 's', type: 'symlink', linkname: join(t.outside, 'sentinel') },
    { name: 'h', type: 'hardlink', linkname: 's' },
  ], (t) => exact({ s: { type: 'symlink', link: join(t.outside, 'sentinel') }, h: { type: 'symlink', link: join(t.outside, 'sentinel') } })),
  tarCase('hardlink-to-directory', () => [{ name: 'd/', type: 'dir' }, { name: 'h', type: 'hardlink', linkname: 'd' }], reject(ErrorCode.InvalidArgument, /is a directory/)),
  tarCase('hardlink-to-itself', () => [{ name: 'h', type: 'hardlink', linkname: 'h' }], reject(ErrorCode.InvalidArgument, /does not exist in the layer/)),
];

const whiteouts: HostileCase[] = [
  tarCase('whiteout-name-climbs', () => [{ name: '../.wh.sentinel', content: '' }], reject(ErrorCode.InvalidArgument, /climbs above the root/)),
  tarCase('whiteout-of-dotdot', () => [{ name: '.wh...', content: '' }], reject(ErrorCode.InvalidArgument, /invalid whiteout/)),
  tarCase('whiteout-of-dotdot-in-subdir', () => [{ name: 'sub/.wh...', content: '' }], reject(ErrorCode.InvalidArgument, /invalid whiteout/)),
  tarCase('whiteout-of-dot', () => [{ name: '.wh..', content: '' }], reject(ErrorCode.InvalidArgument, /invalid whiteout/)),
  tarCase('whiteout-bare', () => [{ name: 'sub/.wh.', content: '' }], reject(ErrorCode.InvalidArgument, /invalid whiteout/)),
  tarCase('whiteout-pax-path-climbs', () => [{ name: 'x', content: '', pax: { path: 'a/../../.wh.sentinel' } }], reject(ErrorCode.InvalidArgument, /climbs above the root/)),
  tarCase('whiteout-under-symlink-outside', (t) => [
    { name: 'rel', type: 'symlink', linkname: climbTo(t) },
    { name: 'rel/.wh.sentinel', content: '' },
  ], (t) => exact({ rel: { type: 'symlink', link: climbTo(t) }, ...dirsOf(inside(t), true), [`${inside(t)}/sentinel`]: { type: 'char', rdev: 0 } })),
  tarCase('opaque-under-symlink-outside', (t) => [
    { name: 'abs', type: 'symlink', linkname: t.outside },
    { name: 'abs/.wh..wh..opq', content: '' },
  ], (t) => exact({ abs: { type: 'symlink', link: t.outside }, ...dirsOf(inside(t)), [inside(t)]: { type: 'dir', xattrs: { 'trusted.overlay.opaque': 'y' } } })),
  tarCase('opaque-at-root', () => [{ name: '.wh..wh..opq', content: '' }, { name: 'f', content: 'f' }], exact({ f: { type: 'file', content: 'f' } })),
];

const devices: HostileCase[] = [
  tarCase('device-nodes', () => [
    { name: 'null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'disk', type: 'block', devmajor: 7, devminor: 0, mode: 0o600 },
    { name: 'fifo', type: 'fifo', mode: 0o600 },
  ], exact({
    null: { type: 'char', rdev: makedev(1, 3), mode: 0o666 },
    disk: { type: 'block', rdev: makedev(7, 0), mode: 0o600 },
    fifo: { type: 'fifo', mode: 0o600 },
  })),
  tarCase('device-char-0-0-is-a-whiteout', () => [{ name: 'x', type: 'char', devmajor: 0, devminor: 0 }], exact({ x: { type: 'char', rdev: 0 } })),
];

const duplicates: HostileCase[] = [
  tarCase('duplicate-file-dir-symlink', () => [
    { name: 'x', content: 'file' },
    { name: 'x/', type: 'dir' },
    { name: 'x/child', content: 'child' },
    { name: 'x', type: 'symlink', linkname: 'elsewhere' },
  ], exact({ x: { type: 'symlink', link: 'elsewhere' } })),
  tarCase('duplicate-symlink-dir-file', (t) => [
    { name: 'x', type: 'symlink', linkname: t.outside },
    { name: 'x/', type: 'dir', mode: 0o700 },
    { name: 'x', content: 'file' },
  ], exact({ x: { type: 'file', content: 'file' } })),
  tarCase('duplicate-dir-keeps-children', () => [
    { name: 'd/', type: 'dir', mode: 0o755 },
    { name: 'd/a', content: 'a' },
    { name: 'd/', type: 'dir', mode: 0o700 },
  ], exact({ d: { type: 'dir', mode: 0o700 }, 'd/a': { type: 'file', content: 'a' } })),
];

const longPath200 = Array.from({ length: 4 }, (_, i) => `${i}${'n'.repeat(48)}`).join('/');
const longPath300 = Array.from({ length: 3 }, (_, i) => `${i}${'g'.repeat(99)}`).join('/');
const longLink = `${'l'.repeat(150)}/${'k'.repeat(150)}`;
const longNames: HostileCase[] = [
  tarCase('long-name-pax-200', () => [{ name: `${longPath200}/f`, content: 'long' }], exact({ ...dirsOf(longPath200, true), [`${longPath200}/f`]: { type: 'file', content: 'long' } })),
  tarCase('long-name-gnu-300', () => [{ name: `${longPath300}/f`, content: 'long' }], exact({ ...dirsOf(longPath300, true), [`${longPath300}/f`]: { type: 'file', content: 'long' } }), { format: 'gnu' }),
  tarCase('long-linknames-gnu-300', () => [
    { name: 'target', content: 't' },
    { name: 's', type: 'symlink', linkname: longLink },
    { name: 'h', type: 'hardlink', linkname: `./${'.//'.repeat(100)}target` },
  ], exact({ target: { type: 'file', content: 't' }, s: { type: 'symlink', link: longLink }, h: { type: 'file', content: 't' } }), { format: 'gnu' }),
  tarCase('long-component-256', () => [{ name: 'c'.repeat(256), content: 'x' }], reject(ErrorCode.InvalidArgument, /ENAMETOOLONG|name too long/)),
  tarCase('long-path-over-4096', () => [{ name: `${Array.from({ length: 24 }, () => 'p'.repeat(200)).join('/')}/f`, content: 'x' }], reject(ErrorCode.InvalidArgument, /ENAMETOOLONG|name too long/)),
  tarCase('long-symlink-target-over-4096', () => [{ name: 's', type: 'symlink', linkname: 't/'.repeat(2100) }], reject(ErrorCode.InvalidArgument, /ENAMETOOLONG|name too long/)),
  tarCase('extended-header-over-1-mib', () => [{ name: 'f', content: 'x', pax: { comment: 'c'.repeat(1 << 20) } }], reject(ErrorCode.InvalidArgument, /extended header/)),
];

const owners: HostileCase[] = [
  tarCase('owner-base256-above-2pow31', () => [{ name: 'f', content: 'x', uid: 2 ** 31 + 7, gid: 2 ** 31 + 9, base256: true }], exact({ f: { type: 'file', content: 'x', uid: 2 ** 31 + 7, gid: 2 ** 31 + 9 } })),
  tarCase('owner-base256-2pow32', () => [{ name: 'f', content: 'x', uid: 2 ** 32, base256: true }], reject(ErrorCode.InvalidArgument, /uid|out of range/)),
  tarCase('mtime-far-future-and-before-epoch', () => [
    { name: 'future', content: 'x', mtime: 2 ** 40, base256: true },
    { name: 'past', content: 'x', mtime: -(2 ** 31), base256: true },
  ], exact({ future: { type: 'file', content: 'x' }, past: { type: 'file', content: 'x' } })),
  tarCase('owner-pax-huge', () => [{ name: 'f', content: 'x', pax: { gid: '99999999999999' } }], reject(ErrorCode.InvalidArgument, /gid|out of range/)),
];

const xattrs: HostileCase[] = [
  tarCase('xattrs-overlay-markers-dropped', (): EntrySpec[] => [
    { name: 'd/', type: 'dir', xattrs: { 'trusted.overlay.opaque': 'y', 'user.overlay.opaque': 'y', 'user.keep': 'dir' } },
    {
      name: 'd/f',
      content: 'x',
      xattrs: {
        'trusted.overlay.redirect': '/etc',
        'trusted.overlay.metacopy': '',
        'user.overlay.whiteout': 'y',
        'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex'),
        'user.keep': Buffer.from([0xff, 0x00, 0x80]),
        'trusted.kept': 'root may set trusted.*',
      },
    },
  ], exact({
    d: { type: 'dir', xattrs: { 'user.keep': 'dir' } },
    'd/f': {
      type: 'file',
      content: 'x',
      xattrs: { 'security.capability': 'hex:0100000200200000000000000000000000000000', 'user.keep': 'hex:ff0080', 'trusted.kept': 'root may set trusted.*' },
    },
  })),
  tarCase('xattr-value-over-64k', () => [{ name: 'f', content: 'x', xattrs: { 'user.big': Buffer.alloc(70_000, 1) } }], reject(ErrorCode.InvalidArgument, /E2BIG|too long|ERANGE|ENOSPC/)),
  tarCase('xattr-unknown-namespace-skipped', () => [{ name: 'f', content: 'x', xattrs: { 'bogus.name': 'v', 'user.kept': 'v' } }], exact({ f: { type: 'file', content: 'x', xattrs: { 'user.kept': 'v' } } })),
];


/** What GNU tar archives in every sparse format below: data at 1 MiB and 4 MiB, holes around it. */
const SPARSE_DATA = [
  { offset: 1 << 20, text: 'data between holes' },
  { offset: 4 << 20, text: 'the end' },
];
const sparseContent = (): Buffer => {
  const last = SPARSE_DATA.at(-1)!;
  const content = Buffer.alloc(last.offset + last.text.length);
  for (const { offset, text } of SPARSE_DATA) content.write(text, offset);
  return content;
};
const sparseCase = (name: string, formatArgs: string[]): HostileCase => ({
  name,
  build: () => gnuSparseTar(formatArgs),
  mediaType: MediaType.OCILayer,
  // The holes stay holes: the 4 MiB file takes a few blocks, not 4 MiB.
  expect: exact({ holes: { type: 'file', content: sparseContent(), mode: 0o644, allocatedAtMost: 64 << 10 } }),
});

const sparse: HostileCase[] = [
  sparseCase('sparse-gnu-type-s', ['--format=gnu']),
  sparseCase('sparse-pax-0.0', ['--format=posix', '--sparse-version=0.0']),
  sparseCase('sparse-pax-0.1', ['--format=posix', '--sparse-version=0.1']),
  sparseCase('sparse-pax-1.0', ['--format=posix', '--sparse-version=1.0']),
  // A map that would write past the file's end, and one that claims bytes the entry does not store.
  tarCase('sparse-region-past-size', () => [{ name: 'f', content: 'abcde', pax: { 'GNU.sparse.major': '0', 'GNU.sparse.minor': '1', 'GNU.sparse.size': '10', 'GNU.sparse.map': '0,3,9,2' } }], reject(ErrorCode.InvalidArgument, /past the file's size/)),
  tarCase('sparse-map-claims-unstored-bytes', () => [{ name: 'f', content: 'abcde', pax: { 'GNU.sparse.major': '0', 'GNU.sparse.minor': '1', 'GNU.sparse.size': '1000', 'GNU.sparse.map': '0,3,500,400' } }], reject(ErrorCode.InvalidArgument, /covers 403 bytes, the entry stores 5/)),
];

const bombs: HostileCase[] = [
  {
    name: 'bomb-gzip-16gib-file',
    build: () => gzipBomb(16 * GiB),
    mediaType: MediaType.OCILayerGzip,
    diffID: NOT_CHECKED,
    applyOpts: { maxUncompressedBytes: BOMB_LIMIT_BYTES },
    expect: reject(ErrorCode.ResourceExhausted, /maxUncompressedBytes/),
  },
  {
    name: 'bomb-zstd-32gib-file',
    build: () => zstdRleBomb(tarHeaderOf(32 * GiB), 32 * GiB),
    mediaType: MediaType.OCILayerZstd,
    diffID: NOT_CHECKED,
    applyOpts: { maxUncompressedBytes: BOMB_LIMIT_BYTES },
    expect: reject(ErrorCode.ResourceExhausted, /maxUncompressedBytes/),
  },
  {
    name: 'bomb-zstd-after-end-of-archive',
    build: () => zstdRleBomb(tarLayer([{ name: 'f', content: 'x' }]), 32 * GiB),
    mediaType: MediaType.OCILayerZstd,
    diffID: NOT_CHECKED,
    applyOpts: { maxUncompressedBytes: BOMB_LIMIT_BYTES },
    expect: reject(ErrorCode.ResourceExhausted, /maxUncompressedBytes/),
  },
  {
    name: 'bomb-entries',
    build: () => gzip(tarLayer(Array.from({ length: 5000 }, (_, i) => ({ name: `e${i}`, type: 'fifo' as const })))),
    mediaType: MediaType.OCILayerGzip,
    applyOpts: { maxEntries: 1000 },
    expect: reject(ErrorCode.ResourceExhausted, /maxEntries/),
  },
];

const goodTar = tarLayer([{ name: 'etc/', type: 'dir' }, { name: 'etc/hostname', content: 'good\n' }, { name: 'data', content: Buffer.alloc(40_000, 'z') }]);
/** Entries hidden in a file's content, for readers that would parse it as headers. */
const smuggled = tarLayer([{ name: 'smuggled', content: 'only a confused reader sees this' }], { end: 0 });
const flipByte = (data: Buffer, at: number): Buffer => {
  const copy = Buffer.from(data);
  copy[at] = (copy[at] as number) ^ 0xff;
  return copy;
};
const corruption: HostileCase[] = [
  { name: 'gzip-truncated', build: () => gzipSync(goodTar).subarray(0, 200), mediaType: MediaType.OCILayerGzip, expect: reject(ErrorCode.InvalidArgument, /corrupt gzip layer: unexpected end of file/) },
  { name: 'gzip-corrupt-deflate', build: () => flipByte(gzipSync(goodTar), 40), mediaType: MediaType.OCILayerGzip, expect: reject(ErrorCode.InvalidArgument, /corrupt gzip layer/) },
  { name: 'gzip-bad-crc', build: () => { const gz = gzipSync(goodTar); return flipByte(gz, gz.length - 6); }, mediaType: MediaType.OCILayerGzip, expect: reject(ErrorCode.InvalidArgument, /corrupt gzip layer: incorrect data check/) },
  { name: 'gzip-trailing-garbage', build: () => Buffer.concat([gzipSync(goodTar), Buffer.from('trailing garbage')]), mediaType: MediaType.OCILayerGzip, expect: reject(ErrorCode.InvalidArgument, /corrupt gzip layer/) },
  // No magic bytes: the declared compression is used (src/diff/decompress.ts), and the bytes are not gzip.
  { name: 'gzip-declared-but-plain-tar', build: () => goodTar, mediaType: MediaType.OCILayerGzip, expect: reject(ErrorCode.InvalidArgument, /corrupt gzip layer/) },
  { name: 'plain-tar-declared-but-zstd', build: () => zstdCompress(goodTar), mediaType: MediaType.OCILayer, expect: safe(['etc/hostname', 'data']) },
  { name: 'zstd-truncated', build: () => zstdCompress(goodTar).subarray(0, 30), mediaType: MediaType.OCILayerZstd, expect: reject(ErrorCode.InvalidArgument, /corrupt zstd layer/) },
  { name: 'zstd-corrupt', build: () => flipByte(zstdCompress(goodTar), 20), mediaType: MediaType.OCILayerZstd, expect: reject(ErrorCode.InvalidArgument, /corrupt zstd layer/) },
  { name: 'zstd-trailing-garbage', build: () => Buffer.concat([zstdCompress(goodTar), Buffer.from('trailing garbage')]), mediaType: MediaType.OCILayerZstd, expect: reject(ErrorCode.InvalidArgument, /corrupt zstd layer/) },
  tarCase('tar-bad-checksum', () => [{ name: 'ok', content: 'x' }, { name: 'bad', content: 'y', badChecksum: true }], reject(ErrorCode.InvalidArgument, /checksum/)),
  tarCase('tar-content-truncated', () => [{ name: 'f', content: 'short', size: 4096 }], reject(ErrorCode.InvalidArgument, /truncated tar/), { end: 0, omitFinalPadding: true }),
  tarCase('tar-unknown-typeflag', () => [{ name: 'v', typeflag: 'V', content: '' }], reject(ErrorCode.InvalidArgument, /unsupported tar entry type 'V'/)),
  tarCase('tar-zero-block-then-header', () => [{ name: 'a', content: 'a' }], reject(ErrorCode.InvalidArgument, /zero block followed by a non-zero block/), { end: 1, trailing: tarLayer([{ name: 'hidden', content: 'h' }]) }),
  // A parser differential would let a layer show image scanners (Go's archive/tar) other
  // entries than it unpacks: a '0' entry named `x/` is a file whose content is data.
  tarCase('tar-regular-entry-named-with-slash-keeps-its-content', () => [{ name: 'x/', typeflag: '0', content: smuggled }], exact({ x: { type: 'file', content: smuggled } })),
  tarCase('tar-v7-entry-named-with-slash-is-a-directory', () => [{ name: 'old/', typeflag: '\0' }, { name: 'old/f', content: 'f' }], exact({ old: { type: 'dir' }, 'old/f': { type: 'file', content: 'f' } })),
  tarCase('tar-trailing-garbage-after-end', () => [{ name: 'f', content: 'kept' }], exact({ f: { type: 'file', content: 'kept' } }), { trailing: Buffer.from('garbage after the end-of-archive marker') }),
  { name: 'diffid-mismatch', build: () => goodTar, mediaType: MediaType.OCILayer, diffID: digestOf('not this layer'), expect: reject(ErrorCode.DigestMismatch, /layer diffID digest mismatch/) },
];

/** Every case of the corpus. */
export function hostileCases(): HostileCase[] {
  return [...traversal, ...symlinks, ...hardlinks, ...whiteouts, ...devices, ...duplicates, ...longNames, ...owners, ...xattrs, ...sparse, ...bombs, ...corruption];
}

export function expectationOf(hostile: HostileCase, target: HostileTarget): HostileExpectation {
  return typeof hostile.expect === 'function' ? hostile.expect(target) : hostile.expect;
}

/** The diffID a case's config lists: given, or the sha256 of the decompressed blob (of the blob itself when it does not decompress). */
export function diffIDOf(hostile: HostileCase, blob: Buffer): string {
  if (hostile.diffID !== undefined) return hostile.diffID;
  try {
    // As the applier does: magic bytes win over the media type.
    const compression = sniffCompression(blob) ?? declaredCompression(hostile.mediaType);
    if (compression === 'gzip') return digestOf(gunzipSync(blob));
    if (compression === 'zstd') return digestOf(zstdDecompress(blob));
  } catch {
    // Corrupt on purpose: the apply fails before any diffID is compared.
  }
  return digestOf(blob);
}

/**
 * Write a one-layer image of `blob` into the layout, tagged `tag`. Returns the
 * `oci-layout://` reference to pull it with.
 */
export async function writeLayerImage(layoutDir: string, tag: string, layer: { blob: Buffer; mediaType: string; diffID: string }): Promise<string> {
  const layout = await OCILayout.open(layoutDir);
  const blob = await layout.writeBlob(Readable.from([layer.blob]));
  const image = await composeImage(layoutDir, [{ descriptor: { mediaType: layer.mediaType, ...blob }, diffID: layer.diffID }]);
  await layout.tag(tag, image.descriptor);
  return `oci-layout://${layoutDir}:${tag}`;
}

/** The directories on the way to `path` (and `path` itself with `self`), as expected nodes. */
function dirsOf(path: string, self = false): Record<string, ExpectedNode> {
  const parts = path.split('/');
  const dirs: Record<string, ExpectedNode> = {};
  for (let i = 1; i < parts.length + (self ? 1 : 0); i++) dirs[parts.slice(0, i).join('/')] = { type: 'dir' };
  return dirs;
}

/** Linux's makedev for small numbers (what lstat reports as rdev). */
function makedev(major: number, minor: number): number {
  return ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12);
}

/** A tar header (only) of a regular file of `size` bytes, in base-256 where octal is too small. */
function tarHeaderOf(size: number): Buffer {
  return tarLayer([{ name: 'zeros', size, base256: size >= 8 * GiB }], { end: 0 }).subarray(0, 512);
}

/** A tar of one `size`-byte file of zeros as concatenated gzip members (≈1 KiB of gzip per MiB). */
function gzipBomb(size: number): Buffer {
  const memberBytes = 64 << 20;
  const zeros = gzipSync(Buffer.alloc(memberBytes), { level: 9 });
  return Buffer.concat([gzipSync(tarHeaderOf(size)), ...Array.from({ length: Math.ceil(size / memberBytes) }, () => zeros)]);
}

/**
 * A zstd frame that decodes to `head` followed by `zeros` zero bytes, written by hand: a
 * raw block for the head, then RLE blocks of 128 KiB (4 bytes each), so 32 GiB of output
 * fit in 1 MiB without compressing anything.
 */
function zstdRleBomb(head: Buffer, zeros: number): Buffer {
  const blockMax = 128 << 10;
  const blocks = Math.ceil(zeros / blockMax);
  // Magic, frame header descriptor 0 (no content size, no checksum), window 2^17.
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38])];
  for (let at = 0; at < head.length; at += blockMax) {
    const raw = head.subarray(at, at + blockMax);
    parts.push(blockHeader(raw.length, 0, false), raw);
  }
  const rle = Buffer.alloc(blocks * 4);
  for (let i = 0; i < blocks; i++) {
    const size = i === blocks - 1 ? zeros - i * blockMax : blockMax;
    blockHeader(size, 1, i === blocks - 1).copy(rle, i * 4);
  }
  parts.push(rle);
  return Buffer.concat(parts);
}

/** A zstd block header: 3 bytes little-endian of last (1 bit), type (2 bits), size (21 bits); RLE blocks carry their byte (0) after it. */
function blockHeader(size: number, type: 0 | 1, last: boolean): Buffer {
  const value = size * 8 + type * 2 + (last ? 1 : 0);
  return Buffer.from(type === 1 ? [value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff, 0] : [value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff]);
}

/** A GNU tar archive of one file with holes, in the sparse format the arguments select. */
function gnuSparseTar(formatArgs: string[]): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'layerpool-sparse-'));
  try {
    const fd = openSync(join(dir, 'holes'), 'w', 0o644);
    try {
      for (const { offset, text } of SPARSE_DATA) writeSync(fd, text, offset);
      fchmodSync(fd, 0o644);
    } finally {
      closeSync(fd);
    }
    return execFileSync('tar', ['--sparse', ...formatArgs, '-cf', '-', '-C', dir, 'holes'], { maxBuffer: 64 << 20 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const [layoutArg, outsideArg] = process.argv.slice(2);
  if (layoutArg === undefined) throw new Error('usage: corpus.ts <layout-dir> [<outside-dir>]');
  const layoutDir = resolve(layoutArg);
  const target = { outside: resolve(outsideArg ?? join(layoutDir, '..', 'outside')) };
  mkdirSync(layoutDir, { recursive: true });
  await OCILayout.create(layoutDir);
  for (const hostile of hostileCases()) {
    const blob = hostile.build(target);
    const ref = await writeLayerImage(layoutDir, hostile.name, { blob, mediaType: hostile.mediaType, diffID: diffIDOf(hostile, blob) });
    const expect = expectationOf(hostile, target);
    console.log(`${ref}\t${expect.kind}${expect.kind === 'reject' ? ` ${expect.code}` : ''}`);
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
