/**
 * A push parser for tar streams (ustar, GNU and PAX formats), fed the decompressed layer
 * chunk by chunk and calling a visitor synchronously for every entry and its content.
 *
 * It follows Go's archive/tar reader (what containerd applies layers with) on every point
 * where tar implementations differ:
 * - the archive ends at two zero blocks; whatever follows is not parsed (the caller still
 *   hashes it: containerd reads the stream to EOF for the diffID);
 * - a stream that ends on a header boundary, after one zero block, or inside the padding
 *   after the last entry's content is complete (writers that omit the end-of-archive
 *   blocks or the final padding exist); one that ends inside a header or inside content is
 *   truncated, and a zero block followed by a non-zero one is malformed;
 * - header-only types (links, symlinks, directories, devices, FIFOs) have no content,
 *   whatever their size field says;
 * - numeric fields are octal or base-256 (GNU); PAX records (`path`, `linkpath`, `size`,
 *   `uid`, `gid`, `mtime`, `atime`, `SCHILY.xattr.*`) override the header, GNU long names
 *   (`L`/`K`) override both; PAX global headers are ignored, as containerd does;
 * - the checksum is accepted as the unsigned or the signed byte sum;
 * - GNU sparse files in all four encodings GNU tar writes (old GNU type `S` with its
 *   extension blocks; PAX 0.0, 0.1 and 1.0) are read as Go reads them: the entry is a
 *   regular file of the real size, its data regions are validated (in order, not
 *   overlapping, inside the file, their lengths adding up to the stored bytes) and
 *   delivered with their positions, so the writer leaves the holes as holes (Go hands
 *   containerd the holes as zeros, which it writes out).
 *
 * Why not tar-stream's extract: it decodes PAX values as UTF-8, which corrupts binary
 * xattr values such as `security.capability` (any byte >= 0x80, e.g. CAP_SETUID, turns
 * into U+FFFD); it ignores PAX uid/gid/mtime; it does not stop at the end-of-archive
 * marker (trailing bytes after it fail the parse) and rejects a missing final padding;
 * and it creates a stream object and several event-loop turns per entry, which dominates
 * the cost of layers with tens of thousands of small files. Parsing here is synchronous,
 * allocation-light and bounded: only a partial header and one extended header (at most
 * MAX_EXTENDED_HEADER bytes) are ever buffered.
 */
import { InvalidArgumentError, NotImplementedError, ResourceExhaustedError } from '../errors.js';

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** One archive member, with its extended headers already merged in. */
export interface TarEntry {
  /** The name as stored (after PAX `path` / GNU long name); not cleaned or validated. */
  name: string;
  type: TarEntryType;
  /** The file's size (0 for header-only types); for a sparse file, its real size, holes included. */
  size: number;
  /**
   * A sparse file's data regions, in order: the content delivered is their bytes one
   * after the other, each at its region's offset; what no region covers is a hole.
   */
  sparse: SparseRegion[] | undefined;
  /** Permission bits including setuid, setgid and sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch, fractional when a PAX record gave sub-second precision. */
  mtime: number;
  /** PAX `atime`, when present. */
  atime: number | undefined;
  /** Symlink target or hardlink target name (after PAX `linkpath` / GNU long link name). */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** `SCHILY.xattr.<name>` records, values as raw bytes. */
  xattrs: Map<string, Buffer> | undefined;
}

export interface SparseRegion {
  offset: number;
  length: number;
}

/**
 * Receives the entries. `entry` returns whether it wants the content; if so `data` is
 * called with slices of it (valid only during the call) and the offset in the file each
 * belongs at, in increasing order, and `end` once the last byte was delivered (also for
 * empty content).
 */
export interface TarVisitor {
  entry(entry: TarEntry): boolean;
  data(chunk: Buffer, position: number): void;
  end(): void;
}

export interface TarReaderOptions {
  /** Refuse archives with more members than this (ResourceExhausted). */
  maxEntries: number;
}

const BLOCK = 512;
/** Go's archive/tar limit for PAX and GNU long-name records. */
const MAX_EXTENDED_HEADER = 1 << 20;
/** Sparse regions one file may list: bounds the memory (and the length of a 1.0 map) a hostile entry can take. */
const MAX_SPARSE_REGIONS = 1 << 18;
/** Old GNU sparse headers: entries in the header, and in each extension block. */
const GNU_SPARSE_HEADER_ENTRIES = 4;
const GNU_SPARSE_EXTENSION_ENTRIES = 21;

const enum State {
  Header,
  Content,
  Padding,
  Extended,
  /** One zero block seen: the next block must be zero too (end of archive). */
  ZeroBlock,
  /** Old GNU sparse extension blocks, between a type `S` header and its content. */
  SparseExtension,
  /** A PAX 1.0 sparse map: decimal lines in whole blocks at the start of the content. */
  SparseMap,
  End,
}

const enum Extended {
  Pax,
  GlobalPax,
  LongName,
  LongLink,
}

interface PendingOverrides {
  pax: Map<string, Buffer> | undefined;
  longName: string | undefined;
  longLink: string | undefined;
}

/** A sparse file whose map is still being read (extension blocks or a 1.0 map). */
interface PendingSparse {
  entry: TarEntry;
  /** Bytes of the member's content in the archive (a 1.0 map included). */
  stored: number;
  regions: SparseRegion[];
  /** 1.0 map: the numbers read so far, the one being read, and how many there must be. */
  numbers: number[];
  digits: number;
  value: number;
  needed: number;
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export class TarReader {
  private readonly visitor: TarVisitor;
  private readonly maxEntries: number;
  private state = State.Header;
  /** A header split across chunks is gathered here. */
  private readonly headerBlock = Buffer.alloc(BLOCK);
  private headerFill = 0;
  /** Content bytes still to deliver (Content), padding bytes to skip (Padding), or extended header bytes to gather. */
  private remaining = 0;
  private padding = 0;
  private wantsContent = false;
  private extendedKind = Extended.Pax;
  private extendedBuffer: Buffer | undefined;
  private extendedFill = 0;
  private overrides: PendingOverrides = { pax: undefined, longName: undefined, longLink: undefined };
  private pendingSparse: PendingSparse | undefined;
  /** Where the next content byte goes in the file. */
  private position = 0;
  /** A sparse file's regions while its content is delivered, and what is left of the current one. */
  private regions: SparseRegion[] | undefined;
  private regionIndex = 0;
  private regionLeft = 0;
  private entryCount = 0;
  /** Byte offset in the archive of the block being parsed, for error messages. */
  private offset = 0;

  constructor(visitor: TarVisitor, options: TarReaderOptions) {
    this.visitor = visitor;
    this.maxEntries = options.maxEntries;
  }

  /** Members seen so far (extended headers not counted). */
  get entries(): number {
    return this.entryCount;
  }

  /** True once the end-of-archive marker was read: further bytes are not parsed. */
  get ended(): boolean {
    return this.state === State.End;
  }

  write(chunk: Buffer): void {
    let pos = 0;
    const length = chunk.length;
    while (pos < length) {
      switch (this.state) {
        case State.Header:
        case State.ZeroBlock:
        case State.SparseExtension:
        case State.SparseMap: {
          if (this.headerFill === 0 && length - pos >= BLOCK) {
            this.block(chunk, pos);
            pos += BLOCK;
            this.offset += BLOCK;
          } else {
            const take = Math.min(BLOCK - this.headerFill, length - pos);
            chunk.copy(this.headerBlock, this.headerFill, pos, pos + take);
            this.headerFill += take;
            pos += take;
            if (this.headerFill === BLOCK) {
              this.headerFill = 0;
              this.block(this.headerBlock, 0);
              this.offset += BLOCK;
            }
          }
          break;
        }
        case State.Content: {
          const take = Math.min(this.remaining, length - pos);
          if (this.wantsContent) this.deliver(chunk.subarray(pos, pos + take));
          pos += take;
          this.offset += take;
          this.remaining -= take;
          if (this.remaining === 0) this.contentDone();
          break;
        }
        case State.Padding: {
          const take = Math.min(this.remaining, length - pos);
          pos += take;
          this.offset += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = State.Header;
          break;
        }
        case State.Extended: {
          const buffer = this.extendedBuffer as Buffer;
          const take = Math.min(buffer.length - this.extendedFill, length - pos);
          chunk.copy(buffer, this.extendedFill, pos, pos + take);
          this.extendedFill += take;
          pos += take;
          this.offset += take;
          if (this.extendedFill === buffer.length) this.extendedDone(buffer);
          break;
        }
        case State.End:
          return;
      }
    }
  }

  /** The stream ended: throw if it ended inside a header, extended header or content. */
  end(): void {
    switch (this.state) {
      case State.Header:
        if (this.headerFill > 0) throw malformed(this.offset, 'truncated tar: the stream ends inside a header');
        if (this.overrides.pax || this.overrides.longName !== undefined || this.overrides.longLink !== undefined) {
          throw malformed(this.offset, 'truncated tar: the stream ends after an extended header, before its entry');
        }
        return;
      case State.ZeroBlock:
        if (this.headerFill > 0) throw malformed(this.offset, 'truncated tar: the stream ends inside the end-of-archive marker');
        return;
      case State.SparseExtension:
      case State.SparseMap:
        throw malformed(this.offset, "truncated tar: the stream ends inside a sparse file's map");
      case State.Content:
        throw malformed(this.offset, `truncated tar: the stream ends with ${this.remaining} bytes of an entry's content missing`);
      case State.Extended:
        throw malformed(this.offset, 'truncated tar: the stream ends inside an extended header');
      case State.Padding:
      case State.End:
        return;
    }
  }


  private block(buf: Buffer, at: number): void {
    if (this.state === State.SparseExtension) return this.sparseExtension(buf, at);
    if (this.state === State.SparseMap) return this.sparseMapBlock(buf, at);
    if (this.state === State.ZeroBlock) {
      if (!isZeroBlock(buf, at)) throw malformed(this.offset, 'malformed tar: a zero block followed by a non-zero block');
      this.state = State.End;
      return;
    }
    if (buf[at] === 0 && isZeroBlock(buf, at)) {
      this.state = State.ZeroBlock;
      return;
    }
    this.header(buf, at);
  }

  private header(buf: Buffer, at: number): void {
    verifyChecksum(buf, at, this.offset);
    const typeflag = buf[at + 156] as number;
    const size = parseNumeric(buf, at + 124, 12, 'size', this.offset);

    switch (typeflag) {
      case 0x78 /* x */:
        return this.startExtended(Extended.Pax, size);
      case 0x67 /* g */:
        return this.startExtended(Extended.GlobalPax, size);
      case 0x4c /* L */:
        return this.startExtended(Extended.LongName, size);
      case 0x4b /* K */:
        return this.startExtended(Extended.LongLink, size);
    }

    const type = entryType(typeflag, this.offset);
    const magic = headerFormat(buf, at);
    let name = decodeName(buf, at, 100, this.offset);
    if (magic === Format.Ustar || magic === Format.Star) {
      const prefixLength = magic === Format.Star ? 131 : 155;
      if (buf[at + 345] !== 0) name = `${decodeName(buf, at + 345, prefixLength, this.offset)}/${name}`;
    }
    const entry: TarEntry = {
      name,
      type,
      size,
      mode: parseNumeric(buf, at + 100, 8, 'mode', this.offset) & 0o7777,
      uid: parseNumeric(buf, at + 108, 8, 'uid', this.offset),
      gid: parseNumeric(buf, at + 116, 8, 'gid', this.offset),
      mtime: parseNumeric(buf, at + 136, 12, 'mtime', this.offset),
      atime: undefined,
      linkname: buf[at + 157] === 0 ? '' : decodeName(buf, at + 157, 100, this.offset),
      sparse: undefined,
      devmajor: type === 'char' || type === 'block' ? parseNumeric(buf, at + 329, 8, 'devmajor', this.offset) : 0,
      devminor: type === 'char' || type === 'block' ? parseNumeric(buf, at + 337, 8, 'devminor', this.offset) : 0,
      xattrs: undefined,
    };
    const sparsePax = this.applyOverrides(entry);
    // Old (V7) tars mark directories with a trailing slash on a NUL-typed entry. Only that
    // type, as Go's archive/tar: a '0' entry named `x/` keeps its content (a file `x` in
    // containerd), and treating it as a header-only directory would parse that content as
    // entries that other readers (image scanners) never see.
    if (typeflag === 0 && entry.name.endsWith('/')) entry.type = 'dir';

    if (++this.entryCount > this.maxEntries) {
      throw new ResourceExhaustedError(`layer has more than ${this.maxEntries} entries (maxEntries)`);
    }
    if (typeflag === 0x53 /* S */) return this.startOldGnuSparse(entry, buf, at, magic);
    if (sparsePax !== undefined) {
      if (entry.type !== 'file') throw malformed(this.offset, `malformed tar: ${entry.type} entry ${JSON.stringify(entry.name)} has a sparse map`);
      return this.startPaxSparse(entry, sparsePax);
    }
    this.startContent(entry, entry.type === 'file' ? entry.size : 0, undefined);
  }

  /** Hand the entry to the visitor and deliver its `stored` content bytes (`regions` for a sparse file). */
  private startContent(entry: TarEntry, stored: number, regions: SparseRegion[] | undefined): void {
    if (entry.type !== 'file') entry.size = 0;
    if (regions !== undefined) {
      validateSparseRegions(regions, entry.size, stored, this.offset);
      entry.sparse = regions;
    }
    this.regions = regions;
    this.regionIndex = -1;
    this.regionLeft = 0;
    this.position = 0;
    this.padding = padding(stored);
    this.remaining = stored;
    this.wantsContent = this.visitor.entry(entry);
    if (stored > 0) this.state = State.Content;
    else this.contentDone();
  }

  /** Content bytes to the visitor, at their place in the file. */
  private deliver(chunk: Buffer): void {
    const regions = this.regions;
    if (regions === undefined) {
      this.visitor.data(chunk, this.position);
      this.position += chunk.length;
      return;
    }
    let at = 0;
    while (at < chunk.length) {
      while (this.regionLeft === 0) {
        // Validated: the regions' lengths add up to the stored bytes, so one is left.
        const region = regions[++this.regionIndex] as SparseRegion;
        this.position = region.offset;
        this.regionLeft = region.length;
      }
      const take = Math.min(this.regionLeft, chunk.length - at);
      this.visitor.data(chunk.subarray(at, at + take), this.position);
      at += take;
      this.position += take;
      this.regionLeft -= take;
    }
  }

  /** Type `S`: a real size and up to four regions in the header, more in extension blocks. */
  private startOldGnuSparse(entry: TarEntry, buf: Buffer, at: number, format: Format): void {
    if (format !== Format.Gnu) throw malformed(this.offset, 'malformed tar: a sparse (type S) entry in a non-GNU header');
    const stored = entry.size;
    entry.size = parseNumeric(buf, at + 483, 12, 'sparse real size', this.offset);
    const pending: PendingSparse = { entry, stored, regions: [], numbers: [], digits: 0, value: 0, needed: 0 };
    this.readOldGnuRegions(pending, buf, at + 386, GNU_SPARSE_HEADER_ENTRIES);
    this.pendingSparse = pending;
    if (buf[at + 482] !== 0) this.state = State.SparseExtension;
    else this.finishSparseMap();
  }

  private sparseExtension(buf: Buffer, at: number): void {
    const pending = this.pendingSparse as PendingSparse;
    this.readOldGnuRegions(pending, buf, at, GNU_SPARSE_EXTENSION_ENTRIES);
    if (buf[at + 504] === 0) this.finishSparseMap();
  }

  /** Entries of 12-byte offset and 12-byte length; the first with an empty offset ends the list. */
  private readOldGnuRegions(pending: PendingSparse, buf: Buffer, at: number, count: number): void {
    for (let i = 0; i < count; i++) {
      const field = at + i * 24;
      if (buf[field] === 0) break;
      pushRegion(pending.regions, parseNumeric(buf, field, 12, 'sparse offset', this.offset), parseNumeric(buf, field + 12, 12, 'sparse length', this.offset), this.offset);
    }
  }

  /** PAX sparse formats: 0.0 and 0.1 carry the map in records, 1.0 at the start of the content. */
  private startPaxSparse(entry: TarEntry, records: Map<string, string>): void {
    const major = records.get('major');
    const minor = records.get('minor');
    const version = major === undefined && minor === undefined ? (records.get('map') === undefined ? undefined : '0.x') : `${major}.${minor}`;
    if (version !== '0.x' && version !== '0.0' && version !== '0.1' && version !== '1.0') {
      throw new NotImplementedError(`tar entry ${JSON.stringify(entry.name)}: GNU sparse format ${version ?? '(without a map)'} is not supported`);
    }
    const name = records.get('name');
    if (name !== undefined && name !== '') entry.name = name;
    const stored = entry.size;
    const size = records.get('size') ?? records.get('realsize');
    if (size !== undefined) entry.size = parseSparseNumber(size, this.offset);
    const pending: PendingSparse = { entry, stored, regions: [], numbers: [], digits: 0, value: 0, needed: 0 };
    if (version === '1.0') {
      this.pendingSparse = pending;
      this.state = State.SparseMap;
      return;
    }
    const map = records.get('map') ?? '';
    const numbers = map === '' ? [] : map.split(',').map((n) => parseSparseNumber(n, this.offset));
    const numblocks = records.get('numblocks');
    if (numbers.length % 2 !== 0 || (numblocks !== undefined && numbers.length !== 2 * parseSparseNumber(numblocks, this.offset))) {
      throw malformed(this.offset, 'malformed tar: sparse map does not match GNU.sparse.numblocks');
    }
    for (let i = 0; i < numbers.length; i += 2) pushRegion(pending.regions, numbers[i] as number, numbers[i + 1] as number, this.offset);
    this.pendingSparse = pending;
    this.finishSparseMap();
  }

  /** One block of a 1.0 map: newline-terminated decimals, the count first, then offset/length pairs. */
  private sparseMapBlock(buf: Buffer, at: number): void {
    const pending = this.pendingSparse as PendingSparse;
    pending.stored -= BLOCK;
    if (pending.stored < 0) throw malformed(this.offset, 'malformed tar: sparse map longer than the entry');
    for (let i = at; i < at + BLOCK; i++) {
      const c = buf[i] as number;
      if (c === 0x0a) {
        if (pending.digits === 0) throw malformed(this.offset, 'malformed tar: empty number in a sparse map');
        pending.numbers.push(pending.value);
        pending.digits = 0;
        pending.value = 0;
        if (pending.numbers.length === 1) {
          const count = pending.numbers[0] as number;
          if (count > MAX_SPARSE_REGIONS) throw new ResourceExhaustedError(`sparse file with more than ${MAX_SPARSE_REGIONS} regions`);
          pending.needed = 1 + 2 * count;
        } else if (pending.numbers.length % 2 === 1) {
          pushRegion(pending.regions, pending.numbers[pending.numbers.length - 2] as number, pending.numbers[pending.numbers.length - 1] as number, this.offset);
        }
        if (pending.numbers.length === pending.needed) {
          // The rest of the block is padding.
          this.finishSparseMap();
          return;
        }
      } else if (c >= 0x30 && c <= 0x39) {
        pending.value = pending.value * 10 + (c - 0x30);
        if (++pending.digits > 16 || !Number.isSafeInteger(pending.value)) throw malformed(this.offset, 'malformed tar: sparse map number out of range');
      } else {
        throw malformed(this.offset, 'malformed tar: bad character in a sparse map');
      }
    }
  }

  private finishSparseMap(): void {
    const { entry, stored, regions } = this.pendingSparse as PendingSparse;
    this.pendingSparse = undefined;
    this.state = State.Header;
    this.startContent(entry, stored, regions);
  }

  private contentDone(): void {
    if (this.wantsContent) this.visitor.end();
    this.wantsContent = false;
    this.skipPadding();
  }

  /** After a member's content: skip to the next 512-byte boundary, then a header. */
  private skipPadding(): void {
    if (this.padding > 0) {
      this.remaining = this.padding;
      this.state = State.Padding;
    } else {
      this.state = State.Header;
    }
  }

  private startExtended(kind: Extended, size: number): void {
    if (size > MAX_EXTENDED_HEADER) {
      throw malformed(this.offset, `malformed tar: extended header of ${size} bytes (limit ${MAX_EXTENDED_HEADER})`);
    }
    this.extendedKind = kind;
    this.padding = padding(size);
    if (size === 0) {
      this.extendedDone(Buffer.alloc(0));
      return;
    }
    this.extendedBuffer = Buffer.allocUnsafe(size);
    this.extendedFill = 0;
    this.state = State.Extended;
  }

  private extendedDone(buffer: Buffer): void {
    this.extendedBuffer = undefined;
    switch (this.extendedKind) {
      case Extended.Pax:
        this.overrides.pax = parsePaxRecords(buffer, this.offset);
        break;
      case Extended.GlobalPax:
        // Validated, then ignored: containerd ignores PAX global headers too.
        parsePaxRecords(buffer, this.offset);
        break;
      case Extended.LongName:
        this.overrides.longName = decodeName(buffer, 0, buffer.length, this.offset);
        break;
      case Extended.LongLink:
        this.overrides.longLink = decodeName(buffer, 0, buffer.length, this.offset);
        break;
    }
    this.skipPadding();
  }

  /** Merge the pending extended headers into `entry`; returns the GNU.sparse.* PAX records, if any (keys without the prefix). */
  private applyOverrides(entry: TarEntry): Map<string, string> | undefined {
    const { pax, longName, longLink } = this.overrides;
    let sparse: Map<string, string> | undefined;
    if (pax) {
      for (const [key, value] of pax) {
        switch (key) {
          case 'path':
          case 'linkpath': {
            // A header field ends at its first NUL; a PAX value has a length, so a NUL is malformed.
            if (value.includes(0)) throw malformed(this.offset, `malformed tar: PAX ${key} contains a NUL byte`);
            const decoded = decodeName(value, 0, value.length, this.offset);
            if (key === 'path') entry.name = decoded;
            else entry.linkname = decoded;
            break;
          }
          case 'size':
            entry.size = parsePaxInteger(value, key, this.offset);
            break;
          case 'uid':
            entry.uid = parsePaxInteger(value, key, this.offset);
            break;
          case 'gid':
            entry.gid = parsePaxInteger(value, key, this.offset);
            break;
          case 'mtime':
            entry.mtime = parsePaxTime(value, key, this.offset);
            break;
          case 'atime':
            entry.atime = parsePaxTime(value, key, this.offset);
            break;
          default:
            if (key.startsWith('SCHILY.xattr.')) {
              entry.xattrs ??= new Map();
              entry.xattrs.set(key.slice('SCHILY.xattr.'.length), value);
            } else if (key.startsWith('GNU.sparse.')) {
              sparse ??= new Map();
              sparse.set(key.slice('GNU.sparse.'.length), value.toString('utf8'));
            }
        }
      }
    }
    if (longName !== undefined) entry.name = longName;
    if (longLink !== undefined) entry.linkname = longLink;
    this.overrides = { pax: undefined, longName: undefined, longLink: undefined };
    return sparse;
  }
}

function malformed(offset: number, message: string): InvalidArgumentError {
  return new InvalidArgumentError(`${message} (at byte ${offset})`);
}

function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

function isZeroBlock(buf: Buffer, at: number): boolean {
  for (let i = at, end = at + BLOCK; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

const enum Format {
  V7,
  Ustar,
  Star,
  Gnu,
}

function headerFormat(buf: Buffer, at: number): Format {
  // "ustar\0" "00" (POSIX) vs "ustar " " \0" (GNU); star adds "tar\0" at the block's end.
  if (buf[at + 257] !== 0x75 || buf[at + 258] !== 0x73 || buf[at + 259] !== 0x74 || buf[at + 260] !== 0x61 || buf[at + 261] !== 0x72) {
    return Format.V7;
  }
  if (buf[at + 262] === 0x20) return Format.Gnu;
  if (buf[at + 508] === 0x74 && buf[at + 509] === 0x61 && buf[at + 510] === 0x72 && buf[at + 511] === 0) return Format.Star;
  return Format.Ustar;
}

function verifyChecksum(buf: Buffer, at: number, offset: number): void {
  // The checksum field itself counts as eight spaces.
  let unsigned = 8 * 0x20;
  for (let i = at; i < at + 148; i++) unsigned += buf[i] as number;
  for (let i = at + 156; i < at + BLOCK; i++) unsigned += buf[i] as number;
  const stored = parseOctal(buf, at + 148, 8);
  if (stored === unsigned) return;
  // Some old tars summed signed bytes (Go accepts both).
  let signed = unsigned;
  for (let i = at; i < at + BLOCK; i++) if ((i < at + 148 || i >= at + 156) && (buf[i] as number) >= 128) signed -= 256;
  if (stored !== signed) throw malformed(offset, `malformed tar: header checksum mismatch (stored ${stored}, computed ${unsigned})`);
}

function entryType(typeflag: number, offset: number): TarEntryType {
  switch (typeflag) {
    case 0:
    case 0x30 /* 0 */:
    case 0x37 /* 7: contiguous file, a regular file everywhere */:
      return 'file';
    case 0x31:
      return 'hardlink';
    case 0x32:
      return 'symlink';
    case 0x33:
      return 'char';
    case 0x34:
      return 'block';
    case 0x35:
      return 'dir';
    case 0x36:
      return 'fifo';
    case 0x53 /* S: GNU sparse file, a regular file with a map */:
      return 'file';
  }
  const shown = typeflag >= 0x20 && typeflag < 0x7f ? String.fromCharCode(typeflag) : `\\x${typeflag.toString(16)}`;
  throw malformed(offset, `unsupported tar entry type '${shown}'`);
}

/**
 * A numeric header field: octal digits padded with spaces or NULs, or (GNU, Go, star)
 * base-256 two's complement when the first byte has its high bit set.
 */
function parseNumeric(buf: Buffer, at: number, length: number, field: string, offset: number): number {
  const first = buf[at] as number;
  if (first & 0x80) {
    // 0x80: positive; 0xff: negative two's complement.
    const negative = (first & 0x40) !== 0;
    let value = (negative ? ~first : first) & 0x7f;
    for (let i = 1; i < length; i++) {
      const byte = buf[at + i] as number;
      value = value * 256 + (negative ? ~byte & 0xff : byte);
      if (value > Number.MAX_SAFE_INTEGER) throw malformed(offset, `malformed tar: ${field} field out of range`);
    }
    return negative ? -value - 1 : value;
  }
  const value = parseOctal(buf, at, length);
  if (value < 0) throw malformed(offset, `malformed tar: ${field} field is not an octal number`);
  return value;
}

/** Octal with leading/trailing spaces and NULs; -1 when a non-octal character appears. */
function parseOctal(buf: Buffer, at: number, length: number): number {
  let i = at;
  const end = at + length;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0)) i++;
  let value = 0;
  for (; i < end; i++) {
    const c = buf[i] as number;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) return -1;
    value = value * 8 + (c - 0x30);
  }
  for (; i < end; i++) if (buf[i] !== 0x20 && buf[i] !== 0) return -1;
  return value;
}

/**
 * Names are bytes; layerpool keeps them as UTF-8 strings. A name that is not valid UTF-8
 * would be rewritten by a lossy decode (two names could collapse into one), so it is
 * refused rather than silently renamed.
 */
function decodeName(buf: Buffer, at: number, length: number, offset: number): string {
  let end = at;
  const limit = at + length;
  let ascii = true;
  while (end < limit) {
    const c = buf[end] as number;
    if (c === 0) break;
    if (c >= 0x80) ascii = false;
    end++;
  }
  if (ascii) return buf.toString('latin1', at, end);
  try {
    return utf8Strict.decode(buf.subarray(at, end));
  } catch {
    throw new NotImplementedError(
      `tar entry name ${JSON.stringify(buf.subarray(at, end).toString('latin1'))} is not valid UTF-8 (at byte ${offset})`,
    );
  }
}

/**
 * PAX records: "<length> <key>=<value>\n", values kept as raw bytes. Sparse format 0.0
 * repeats GNU.sparse.offset / GNU.sparse.numbytes once per region: they are gathered, in
 * order, into GNU.sparse.map, the comma list format 0.1 uses (as Go does).
 */
function parsePaxRecords(buf: Buffer, offset: number): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  const sparseMap: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    // Some writers pad the record block with NULs.
    if (buf[pos] === 0) break;
    let space = pos;
    let recordLength = 0;
    while (space < buf.length && buf[space] !== 0x20) {
      const c = buf[space] as number;
      if (c < 0x30 || c > 0x39) throw malformed(offset, 'malformed tar: bad PAX record length');
      recordLength = recordLength * 10 + (c - 0x30);
      space++;
    }
    const recordEnd = pos + recordLength;
    if (space === pos || space >= buf.length || recordEnd > buf.length || recordEnd <= space + 1 || buf[recordEnd - 1] !== 0x0a) {
      throw malformed(offset, 'malformed tar: bad PAX record');
    }
    const equals = buf.indexOf(0x3d, space + 1);
    if (equals < 0 || equals >= recordEnd - 1) throw malformed(offset, 'malformed tar: PAX record without "="');
    const key = buf.toString('utf8', space + 1, equals);
    const value = buf.subarray(equals + 1, recordEnd - 1);
    if (key === 'GNU.sparse.offset' || key === 'GNU.sparse.numbytes') {
      const expected = sparseMap.length % 2 === 0 ? 'GNU.sparse.offset' : 'GNU.sparse.numbytes';
      if (key !== expected || value.includes(0x2c)) throw malformed(offset, 'malformed tar: GNU.sparse.offset and GNU.sparse.numbytes out of order');
      sparseMap.push(value);
    } else {
      records.set(key, value);
    }
    pos = recordEnd;
  }
  if (sparseMap.length > 0) records.set('GNU.sparse.map', Buffer.from(sparseMap.map((b) => b.toString('latin1')).join(','), 'latin1'));
  return records;
}

function pushRegion(regions: SparseRegion[], offset: number, length: number, at: number): void {
  if (regions.length >= MAX_SPARSE_REGIONS) throw new ResourceExhaustedError(`sparse file with more than ${MAX_SPARSE_REGIONS} regions`);
  if (offset < 0 || length < 0) throw malformed(at, 'malformed tar: negative sparse region');
  regions.push({ offset, length });
}

/** Go's validateSparseEntries, plus: the regions account for exactly the bytes stored. */
function validateSparseRegions(regions: readonly SparseRegion[], size: number, stored: number, at: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw malformed(at, 'malformed tar: bad sparse file size');
  let end = 0;
  let total = 0;
  for (const { offset, length } of regions) {
    if (offset < end) throw malformed(at, 'malformed tar: sparse regions overlap or are out of order');
    end = offset + length;
    if (!Number.isSafeInteger(end) || end > size) throw malformed(at, `malformed tar: a sparse region ends past the file's size (${size})`);
    total += length;
  }
  if (total !== stored) throw malformed(at, `malformed tar: the sparse map covers ${total} bytes, the entry stores ${stored}`);
}

function parseSparseNumber(text: string, at: number): number {
  if (!/^[0-9]{1,16}$/.test(text)) throw malformed(at, `malformed tar: sparse map value ${JSON.stringify(text)}`);
  return Number(text);
}

function parsePaxInteger(value: Buffer, key: string, offset: number): number {
  const text = value.toString('latin1');
  if (!/^[0-9]{1,16}$/.test(text)) throw malformed(offset, `malformed tar: PAX ${key}=${JSON.stringify(text)}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw malformed(offset, `malformed tar: PAX ${key} out of range`);
  return n;
}

function parsePaxTime(value: Buffer, key: string, offset: number): number {
  const text = value.toString('latin1');
  if (!/^-?[0-9]{1,16}(\.[0-9]{0,19})?$/.test(text)) throw malformed(offset, `malformed tar: PAX ${key}=${JSON.stringify(text)}`);
  return Number(text);
}
