import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import {
  chainID,
  chainIDs,
  Digester,
  digestOf,
  isValidDigest,
  parseDigest,
  verifyingStream,
} from '../../src/digest.js';
import { isDigestMismatch, isInvalidArgument, isSizeMismatch } from '../../src/errors.js';

const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

// sha256sum is an implementation independent of ours: vectors come from it.
function sha256sum(text: string): string {
  return `sha256:${execFileSync('sha256sum', { input: text }).toString().split(' ')[0]}`;
}

describe('parseDigest', () => {
  test('accepts sha256 and sha512', () => {
    assert.deepEqual(parseDigest(EMPTY_SHA256), { algorithm: 'sha256', encoded: EMPTY_SHA256.slice(7) });
    const sha512 = digestOf('x', 'sha512');
    assert.equal(parseDigest(sha512).algorithm, 'sha512');
  });

  for (const bad of [
    '',
    'sha256',
    'sha256:',
    ':abc',
    'sha256:' + 'a'.repeat(63),
    'sha256:' + 'a'.repeat(65),
    'sha256:' + 'A'.repeat(64),
    'sha256:' + 'g'.repeat(64),
    'md5:d41d8cd98f00b204e9800998ecf8427e',
    'SHA256:' + 'a'.repeat(64),
    'sha256:' + 'a'.repeat(64) + '\n',
    'sha512:' + 'a'.repeat(64),
    '../../etc/passwd',
    'sha256:../' + 'a'.repeat(61),
  ]) {
    test(`rejects ${JSON.stringify(bad.slice(0, 30))} as InvalidArgument`, () => {
      assert.throws(() => parseDigest(bad), (e) => isInvalidArgument(e));
      assert.equal(isValidDigest(bad), false);
    });
  }
});

describe('chainID', () => {
  const d1 = digestOf('layer one');
  const d2 = digestOf('layer two');
  const d3 = digestOf('layer three');

  test('single layer chain ID is its diffID', () => {
    assert.equal(chainID([d1]), d1);
  });

  test('matches sha256("<parent> <diffID>") computed by sha256sum', () => {
    const c2 = sha256sum(`${d1} ${d2}`);
    const c3 = sha256sum(`${c2} ${d3}`);
    assert.deepEqual(chainIDs([d1, d2, d3]), [d1, c2, c3]);
    assert.equal(chainID([d1, d2, d3]), c3);
  });

  test('order matters', () => {
    assert.notEqual(chainID([d1, d2]), chainID([d2, d1]));
  });

  test('known vector from the OCI image spec example', () => {
    // Two identical empty layers (the empty tar is the digest of 1024 zero bytes).
    const emptyTar = digestOf(Buffer.alloc(1024));
    assert.equal(emptyTar, 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
    assert.equal(chainID([emptyTar, emptyTar]), sha256sum(`${emptyTar} ${emptyTar}`));
  });

  test('empty list and malformed diffIDs are InvalidArgument', () => {
    assert.throws(() => chainID([]), (e) => isInvalidArgument(e));
    assert.throws(() => chainIDs([d1, 'sha256:nope']), (e) => isInvalidArgument(e));
  });
});

describe('Digester', () => {
  test('incremental digest equals one-shot digest and stays usable', () => {
    const d = new Digester();
    d.update(Buffer.from('hello '));
    assert.equal(d.digest(), digestOf('hello '));
    d.update(Buffer.from('world'));
    assert.equal(d.digest(), digestOf('hello world'));
    assert.equal(d.size, 11);
  });

  test('verify reports size before digest', () => {
    const d = new Digester();
    d.update(Buffer.from('abc'));
    assert.throws(() => d.verify(digestOf('abc'), 4), (e) => isSizeMismatch(e));
    assert.throws(() => d.verify(digestOf('abd'), 3), (e) => isDigestMismatch(e));
    d.verify(digestOf('abc'), 3);
  });
});

describe('verifyingStream', () => {
  async function drain(chunks: Buffer[], expected: string, size?: number): Promise<Buffer> {
    const out: Buffer[] = [];
    await pipeline(
      Readable.from(chunks),
      verifyingStream(expected, size === undefined ? {} : { size }),
      new Writable({
        write(chunk: Buffer, _e, cb) {
          out.push(chunk);
          cb();
        },
      }),
    );
    return Buffer.concat(out);
  }

  test('passes bytes through when digest and size match', async () => {
    const data = [Buffer.from('a'.repeat(1000)), Buffer.from('b'.repeat(5))];
    const out = await drain(data, digestOf(Buffer.concat(data)), 1005);
    assert.equal(out.length, 1005);
  });

  test('fails with DigestMismatch on wrong bytes', async () => {
    await assert.rejects(drain([Buffer.from('evil')], digestOf('good')), (e) => isDigestMismatch(e));
  });

  test('fails with SizeMismatch as soon as the stream runs long', async () => {
    let produced = 0;
    async function* endless() {
      for (;;) {
        produced += 1;
        yield Buffer.alloc(1024);
      }
    }
    await assert.rejects(
      pipeline(endless(), verifyingStream(EMPTY_SHA256, { size: 4096 }), new Writable({ write: (_c, _e, cb) => cb() })),
      (e) => isSizeMismatch(e),
    );
    assert.ok(produced < 10, `stopped reading early (read ${produced} chunks)`);
  });

  test('fails with SizeMismatch when the stream ends short', async () => {
    await assert.rejects(drain([Buffer.from('ab')], digestOf('abc'), 3), (e) => isSizeMismatch(e));
  });
});
