import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isInvalidArgument } from '../../src/errors.js';
import { TarReader, type TarEntry, type TarVisitor } from '../../src/diff/tar.js';
import { applyBuffer, bind, sha256, tarLayer, type EntrySpec } from '../helpers/layers.js';
import { tempDir } from '../helpers/tmp.js';

const NAME_150 = `${'d'.repeat(60)}/${'e'.repeat(89)}`;
const NAME_300 = `${'a'.repeat(100)}/${'b'.repeat(100)}/${'c'.repeat(98)}`;

/** Collects entries and contents, to check the parser alone. */
class Collect implements TarVisitor {
  entries: TarEntry[] = [];
  contents: string[] = [];
  private current: Buffer = Buffer.alloc(0);
  entry(entry: TarEntry): boolean {
    this.entries.push(entry);
    this.contents.push('');
    this.current = Buffer.alloc(entry.size);
    return true;
  }
  data(chunk: Buffer, position: number): void {
    chunk.copy(this.current, position);
  }
  end(): void {
    this.contents[this.entries.length - 1] = this.current.toString('latin1');
  }
}

function parse(archive: Buffer, chunkSize = archive.length): Collect {
  const visitor = new Collect();
  const reader = new TarReader(visitor, { maxEntries: 1000 });
  for (let i = 0; i < archive.length; i += chunkSize) reader.write(archive.subarray(i, i + chunkSize));
  reader.end();
  return visitor;
}

const FILES: EntrySpec[] = [
  { name: 'a', content: 'alpha' },
  { name: 'b', content: 'b'.repeat(700) },
];

describe('tar parsing', () => {
  test('entries and contents are the same whatever the chunk boundaries (1, 7, 511, 512, 513 bytes)', () => {
    const archive = tarLayer([...FILES, { name: NAME_300, content: 'long' }, { name: 'l', type: 'symlink', linkname: NAME_300 }]);
    const whole = parse(archive);
    for (const size of [1, 7, 511, 512, 513]) {
      const split = parse(archive, size);
      assert.deepEqual(split.entries, whole.entries, `chunk size ${size}`);
      assert.deepEqual(split.contents, whole.contents, `chunk size ${size}`);
    }
    assert.deepEqual(whole.contents, ['alpha', 'b'.repeat(700), 'long', '']);
    assert.equal(whole.entries[3]?.linkname, NAME_300);
  });

  test('PAX long names over 100 and over 255 bytes, and long link names', async (t) => {
    const root = tempDir(t);
    await applyBuffer(
      tarLayer([
        { name: NAME_150, content: '150' },
        { name: NAME_300, content: '300' },
        { name: 'link', type: 'symlink', linkname: NAME_300 },
        { name: 'hard', type: 'hardlink', linkname: NAME_300 },
      ]),
      bind(root),
    );
    assert.equal(readFileSync(join(root, NAME_150), 'utf8'), '150');
    assert.equal(readFileSync(join(root, NAME_300), 'utf8'), '300');
    assert.equal(readlinkSync(join(root, 'link')), NAME_300);
    assert.equal(statSync(join(root, 'hard')).ino, statSync(join(root, NAME_300)).ino);
  });

  test('GNU long names and long link names (L and K entries)', async (t) => {
    const root = tempDir(t);
    await applyBuffer(
      tarLayer(
        [
          { name: NAME_300, content: 'gnu' },
          { name: 'link', type: 'symlink', linkname: NAME_300 },
        ],
        { format: 'gnu' },
      ),
      bind(root),
    );
    assert.equal(readFileSync(join(root, NAME_300), 'utf8'), 'gnu');
    assert.equal(readlinkSync(join(root, 'link')), NAME_300);
  });

  test('base-256 numeric fields: uid, gid, mtime and size', () => {
    const parsed = parse(tarLayer([{ name: 'f', content: 'base256', uid: 3_000_000_000, gid: 70_000, mtime: 1_700_000_001, base256: true }]));
    const entry = parsed.entries[0] as TarEntry;
    assert.equal(entry.uid, 3_000_000_000);
    assert.equal(entry.gid, 70_000);
    assert.equal(entry.mtime, 1_700_000_001);
    assert.equal(entry.size, 7);
    assert.equal(parsed.contents[0], 'base256');
  });

  test('a base-256 uid beyond the octal field range is applied as the owner', async (t) => {
    const root = tempDir(t);
    await applyBuffer(tarLayer([{ name: 'f', content: 'x', uid: 2_500_000, gid: 2_600_000, base256: true }]), bind(root));
    const st = statSync(join(root, 'f'));
    assert.deepEqual([st.uid, st.gid], [2_500_000, 2_600_000]);
  });

  test('PAX uid, gid, size and sub-second mtime/atime override the header', async (t) => {
    const root = tempDir(t);
    await applyBuffer(
      tarLayer([{ name: 'f', content: 'pax', uid: 1, gid: 1, pax: { uid: '4000000', gid: '4000001', mtime: '1700000000.25', atime: '1700000100.5' } }]),
      bind(root),
    );
    const st = statSync(join(root, 'f'), { bigint: true });
    assert.deepEqual([st.uid, st.gid], [4_000_000n, 4_000_001n]);
    assert.equal(st.mtimeNs, 1_700_000_000_250_000_000n);
    assert.equal(st.atimeNs, 1_700_000_100_500_000_000n);
  });

  test('a PAX global header is ignored, as containerd does', () => {
    const archive = Buffer.concat([
      tarLayer([{ name: 'pax_global_header', typeflag: 'g', content: '17 path=injected\n' }], { end: 0 }),
      tarLayer([{ name: 'real', content: 'x' }]),
    ]);
    assert.deepEqual(parse(archive).entries.map((e) => e.name), ['real']);
  });

  test('old-style directories (a regular entry with a trailing slash) and contiguous files (type 7)', () => {
    const parsed = parse(tarLayer([{ name: 'olddir/', typeflag: '\0' }, { name: 'cont', typeflag: '7', content: 'c' }]));
    assert.deepEqual(parsed.entries.map((e) => [e.name, e.type]), [['olddir/', 'dir'], ['cont', 'file']]);
    assert.equal(parsed.contents[1], 'c');
  });

  test('header-only types carry no content, whatever their size field says (as Go reads them)', () => {
    const archive = tarLayer([{ name: 'd/', type: 'dir', size: 1024 }, { name: 'after', content: 'ok' }]);
    // The writer put no content after the directory header, so a reader honouring the size would misparse.
    const parsed = parse(archive);
    assert.deepEqual(parsed.entries.map((e) => e.name), ['d/', 'after']);
    assert.equal(parsed.contents[1], 'ok');
  });
});

describe('liberal where real tools are', () => {
  test('no end-of-archive blocks', async (t) => {
    const root = tempDir(t);
    await applyBuffer(tarLayer(FILES, { end: 0 }), bind(root));
    assert.equal(readFileSync(join(root, 'a'), 'utf8'), 'alpha');
  });

  test('one zero block only', async (t) => {
    const root = tempDir(t);
    await applyBuffer(tarLayer(FILES, { end: 1 }), bind(root));
    assert.equal(readFileSync(join(root, 'b'), 'utf8'), 'b'.repeat(700));
  });

  test('no padding after the last entry', async (t) => {
    const root = tempDir(t);
    const archive = tarLayer(FILES, { end: 0, omitFinalPadding: true });
    assert.equal(archive.length % 512, 700 % 512, 'the archive really ends right after the content');
    await applyBuffer(archive, bind(root));
    assert.equal(readFileSync(join(root, 'b'), 'utf8'), 'b'.repeat(700));
  });

  test('bytes after the end-of-archive marker are not parsed but are part of the diffID', async (t) => {
    const root = tempDir(t);
    const archive = tarLayer(FILES, { trailing: Buffer.from('garbage that is not a tar header at all'.repeat(40)) });
    const stats = await applyBuffer(archive, bind(root));
    assert.equal(stats.diffID, sha256(archive));
    assert.equal(stats.uncompressedBytes, archive.length);
    assert.equal(stats.entries, 2);
  });

  test('leading "./" and "/" are stripped', async (t) => {
    const root = tempDir(t);
    await applyBuffer(tarLayer([{ name: './dot', content: '1' }, { name: '/abs/file', content: '2' }, { name: './/x//y/./z', content: '3' }]), bind(root));
    assert.equal(readFileSync(join(root, 'dot'), 'utf8'), '1');
    assert.equal(readFileSync(join(root, 'abs/file'), 'utf8'), '2');
    assert.equal(readFileSync(join(root, 'x/y/z'), 'utf8'), '3');
  });
});

describe('strict where safety or integrity is at stake', () => {
  const rejects = async (t: import('node:test').TestContext, archive: Buffer, pattern: RegExp): Promise<void> => {
    const root = tempDir(t);
    await assert.rejects(applyBuffer(archive, bind(root)), (err: Error) => isInvalidArgument(err) && pattern.test(err.message));
  };

  test('a bad header checksum is InvalidArgument', (t) => rejects(t, tarLayer([{ name: 'f', content: 'x', badChecksum: true }]), /checksum/));

  test('content cut short is InvalidArgument', (t) => {
    const archive = tarLayer([{ name: 'f', content: 'x'.repeat(2000) }], { end: 0 });
    return rejects(t, archive.subarray(0, 1000), /truncated/);
  });

  test('a header cut short is InvalidArgument', (t) => {
    const archive = tarLayer(FILES, { end: 0 });
    return rejects(t, archive.subarray(0, 1024 + 512 + 100), /truncated/);
  });

  test('a PAX header without its entry is InvalidArgument', (t) => {
    const archive = tarLayer([{ name: 'x'.repeat(200), content: 'x' }], { end: 0 });
    return rejects(t, archive.subarray(0, 1024), /truncated/);
  });

  test('a zero block followed by a header is InvalidArgument (Go archive/tar rejects it too)', (t) =>
    rejects(t, Buffer.concat([tarLayer(FILES.slice(0, 1), { end: 1 }), tarLayer(FILES.slice(1))]), /zero block/));

  test('an unknown entry type is InvalidArgument', (t) => rejects(t, tarLayer([{ name: 'vol', typeflag: 'V' }]), /unsupported tar entry type 'V'/));

  test('a PAX sparse map with bad regions, or not matching the stored bytes, is InvalidArgument', async (t) => {
    const sparse = (map: string, content: string, more: Record<string, string> = {}): Buffer =>
      tarLayer([{ name: 'f', content, pax: { 'GNU.sparse.major': '0', 'GNU.sparse.minor': '1', 'GNU.sparse.size': '100', 'GNU.sparse.map': map, ...more } }]);
    await rejects(t, sparse('0,3,2,2', 'abcde'), /overlap/);
    await rejects(t, sparse('50,2,0,3', 'abcde'), /overlap or are out of order/);
    await rejects(t, sparse('0,3,99,2', 'abcde'), /past the file's size/);
    await rejects(t, sparse('0,3,50,2', 'abcdef'), /covers 5 bytes, the entry stores 6/);
    await rejects(t, sparse('0,3,50', 'abcde'), /numblocks/);
    await rejects(t, sparse('0,3,50,2', 'abcde', { 'GNU.sparse.numblocks': '3' }), /numblocks/);
    await rejects(t, sparse('0,x', 'abcde'), /sparse map value/);
    await rejects(t, tarLayer([{ name: 'f', content: 'x', pax: { 'GNU.sparse.numbytes': '1', 'GNU.sparse.offset': '0' } }]), /out of order/);
    await rejects(t, tarLayer([{ name: 'd', type: 'dir', pax: { 'GNU.sparse.major': '0', 'GNU.sparse.minor': '1', 'GNU.sparse.map': '0,0' } }]), /dir entry "d" has a sparse map/);
    const root = tempDir(t);
    await assert.rejects(
      applyBuffer(tarLayer([{ name: 'f', content: 'x', pax: { 'GNU.sparse.major': '2', 'GNU.sparse.minor': '0' } }]), bind(root)),
      { code: 'LP_ERR_NOT_IMPLEMENTED', message: /sparse format 2\.0/ },
    );
  });

  test('PAX sparse maps 0.1 (in records) and 1.0 (before the data) place the regions, in any chunking', () => {
    const v01 = tarLayer([{ name: 'GNUSparseFile.1/f', content: 'abcde', pax: { 'GNU.sparse.major': '0', 'GNU.sparse.minor': '1', 'GNU.sparse.name': 'f', 'GNU.sparse.size': '100', 'GNU.sparse.numblocks': '2', 'GNU.sparse.map': '0,3,50,2' } }]);
    const map = Buffer.alloc(512);
    map.write('2\n0\n3\n50\n2\n');
    const v10 = tarLayer([{ name: 'GNUSparseFile.1/f', content: Buffer.concat([map, Buffer.from('abcde')]), pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'f', 'GNU.sparse.realsize': '100' } }]);
    const expected = Buffer.alloc(100);
    expected.write('abc', 0);
    expected.write('de', 50);
    for (const archive of [v01, v10]) {
      for (const size of [1, 7, 512, archive.length]) {
        const { entries, contents } = parse(archive, size);
        assert.equal(entries.length, 1);
        assert.equal(entries[0]?.name, 'f');
        assert.equal(entries[0]?.size, 100);
        assert.deepEqual(entries[0]?.sparse, [{ offset: 0, length: 3 }, { offset: 50, length: 2 }]);
        assert.equal(contents[0], expected.toString('latin1'), `chunk size ${size}`);
      }
    }
  });

  test('a stream that ends inside a 1.0 sparse map is truncated', (t) => {
    const map = Buffer.alloc(512);
    map.write('2\n0\n3\n50\n2\n');
    const archive = tarLayer([{ name: 'f', content: Buffer.concat([map, Buffer.from('abcde')]), pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.realsize': '100' } }]);
    const header = archive.indexOf(map);
    return rejects(t, archive.subarray(0, header + 100), /inside a sparse file's map/);
  });

  test('a name that is not valid UTF-8 is refused rather than renamed', async (t) => {
    const archive = tarLayer([{ name: 'placeholder', content: 'x' }]);
    archive.write('caf\xe9', 0, 'latin1');
    archive.fill(0, 4, 100);
    // Recompute the checksum for the edited header.
    archive.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += archive[i] as number;
    archive.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const root = tempDir(t);
    await assert.rejects(applyBuffer(archive, bind(root)), { code: 'LP_ERR_NOT_IMPLEMENTED' });
    assert.equal(existsSync(join(root, 'caf\ufffd')), false);
  });

  test('a NUL byte in a PAX path is InvalidArgument', (t) => rejects(t, tarLayer([{ name: 'f', content: 'x', pax: { path: 'a\0b' } }]), /NUL/));

  test('a malformed PAX record is InvalidArgument', (t) => {
    const archive = tarLayer([{ name: 'f', content: 'x', pax: { uid: 'not-a-number' } }]);
    return rejects(t, archive, /PAX uid/);
  });

  test('a device with a major number out of range is InvalidArgument', async (t) => {
    const root = tempDir(t);
    await assert.rejects(applyBuffer(tarLayer([{ name: 'dev', type: 'char', devmajor: 5000, devminor: 1 }]), bind(root)), (err: Error) => isInvalidArgument(err));
    assert.equal(lstatSync(join(root, 'dev'), { throwIfNoEntry: false }), undefined);
  });
});
