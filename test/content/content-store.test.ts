import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestOf } from '../../src/digest.js';
import {
  isAlreadyExists,
  isCanceled,
  isDigestMismatch,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  isResourceExhausted,
  isSizeMismatch,
} from '../../src/errors.js';
import { Root } from '../../src/root.js';
import { openTestRoot } from '../helpers/root.js';
import { tempDir } from '../helpers/tmp.js';

const blob = (text: string) => ({ data: Buffer.from(text), digest: digestOf(text), size: Buffer.byteLength(text) });

async function writeBlob(root: Root, ns: string, data: Buffer, ref = `ref-${digestOf(data)}`) {
  const store = root.content.namespace(ns);
  const writer = await store.writer({ ref, expected: digestOf(data), total: data.length });
  await writer.write(data);
  return writer.commit();
}

describe('content store: write and read', () => {
  test('a committed blob is stored at blobs/sha256/<hex> and readable three ways', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const b = blob('hello layerpool');
    const writer = await store.writer({ ref: 'r1', expected: b.digest, total: b.size, labels: { a: '1' } });
    await writer.write(b.data.subarray(0, 5));
    await writer.write(b.data.subarray(5));
    assert.equal(writer.offset, b.size);
    assert.equal(writer.digest(), b.digest);
    const info = await writer.commit();
    assert.deepEqual([info.digest, info.size, info.labels], [b.digest, b.size, { a: '1' }]);

    const path = join(root.path, 'content', 'blobs', 'sha256', b.digest.slice(7));
    assert.deepEqual(readFileSync(path), b.data);
    assert.deepEqual(await store.readBlob(b.digest), b.data);

    const chunks: Buffer[] = [];
    for await (const chunk of await store.readStream(b.digest, { start: 6, end: 8 })) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'lay');

    const reader = await store.readerAt(b.digest);
    const buf = Buffer.alloc(4);
    assert.equal(await reader.readAt(buf, 11), 4);
    assert.equal(buf.toString(), 'pool');
    assert.equal(await reader.readAt(buf, b.size), 0);
    assert.equal(reader.size, b.size);
    await reader.close();
    assert.equal(readdirSync(join(root.path, 'content', 'ingest')).length, 0, 'ingest folder cleaned');
  });

  test('a Writable from writer.stream() works with pipeline', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const data = Buffer.alloc(3 << 20, 7);
    const writer = await store.writer({ ref: 'streamed', expected: digestOf(data), total: data.length });
    await pipeline(Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]), writer.stream());
    const info = await writer.commit();
    assert.equal(info.size, data.length);
  });

  test('commit without expectations stores what was written under its digest', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const writer = await store.writer({ ref: 'free' });
    await writer.write(Buffer.from('anything'));
    assert.equal((await writer.commit()).digest, digestOf('anything'));
  });

  test('sha512 expected digests are verified with sha512', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const expected = digestOf('five twelve', 'sha512');
    const writer = await store.writer({ ref: 's512', expected });
    await writer.write(Buffer.from('five twelve'));
    assert.equal((await writer.commit()).digest, expected);
    assert.equal((await store.readBlob(expected)).toString(), 'five twelve');
  });

  test('readBlob refuses blobs over maxSize with ResourceExhausted', async (t) => {
    const root = await openTestRoot(t);
    const info = await writeBlob(root, 'default', Buffer.alloc(100));
    await assert.rejects(root.content.namespace('default').readBlob(info.digest, { maxSize: 99 }), isResourceExhausted);
  });

  test('reading a blob the namespace does not have is NotFound, a malformed digest InvalidArgument', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    await assert.rejects(store.info(digestOf('nope')), isNotFound);
    await assert.rejects(store.readBlob(digestOf('nope')), isNotFound);
    await assert.rejects(store.info('sha256:xyz'), isInvalidArgument);
    await assert.rejects(store.writer({ ref: 'x', expected: 'md5:abc' }), isInvalidArgument);
    await assert.rejects(store.writer({ ref: '' }), isInvalidArgument);
  });

  test('an unknown namespace is InvalidArgument', async (t) => {
    const root = await openTestRoot(t);
    assert.throws(() => root.content.namespace('nosuch'), isInvalidArgument);
    assert.throws(() => root.content.namespace('bad name!'), isInvalidArgument);
  });
});

describe('content store: verification', () => {
  test('a digest mismatch creates no blob and removes the ingest by default', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const expected = digestOf('good bytes');
    const writer = await store.writer({ ref: 'bad', expected, total: 9 });
    await writer.write(Buffer.from('evil byte'));
    await assert.rejects(writer.commit(), (e) => isDigestMismatch(e) && (e as Error).message.includes(expected));
    assert.equal(existsSync(join(root.path, 'content/blobs/sha256', expected.slice(7))), false);
    await assert.rejects(store.info(expected), isNotFound);
    await assert.rejects(store.status('bad'), isNotFound);
    assert.equal(readdirSync(join(root.path, 'content', 'ingest')).length, 0);
  });

  test('with onVerifyFailure keep, a mismatching ingest stays for inspection', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const writer = await store.writer({ ref: 'kept', expected: digestOf('x'), onVerifyFailure: 'keep' });
    await writer.write(Buffer.from('y'));
    await assert.rejects(writer.commit(), isDigestMismatch);
    assert.equal((await store.status('kept')).offset, 1);
    await store.abort('kept');
    await assert.rejects(store.status('kept'), isNotFound);
  });

  test('a short ingest fails commit with SizeMismatch and stays usable', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const b = blob('0123456789');
    const writer = await store.writer({ ref: 'short', expected: b.digest, total: b.size });
    await writer.write(b.data.subarray(0, 4));
    await assert.rejects(writer.commit(), isSizeMismatch);
    await writer.write(b.data.subarray(4));
    assert.equal((await writer.commit()).digest, b.digest);
  });

  test('bytes past the announced total are refused as they arrive', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const writer = await store.writer({ ref: 'long', expected: digestOf('abc'), total: 3 });
    await writer.write(Buffer.from('ab'));
    await assert.rejects(writer.write(Buffer.from('cd')), isSizeMismatch);
    assert.equal(writer.offset, 2, 'the refused chunk was not written');
    await writer.write(Buffer.from('c'));
    await writer.commit();
  });

  test('commit size given at commit time is checked against what was written', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const writer = await store.writer({ ref: 'sz' });
    await writer.write(Buffer.from('abcd'));
    await assert.rejects(writer.commit({ size: 3 }), isSizeMismatch);
    await assert.rejects(store.status('sz'), isNotFound, 'over-long ingest removed');
  });

  test('a writer is unusable after commit', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const writer = await store.writer({ ref: 'once' });
    await writer.write(Buffer.from('x'));
    await writer.commit();
    await assert.rejects(writer.write(Buffer.from('y')), isFailedPrecondition);
  });

  test('truncate(0) restarts the ingest and its digest', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const writer = await store.writer({ ref: 'trunc', expected: digestOf('right') });
    await writer.write(Buffer.from('wrong'));
    await writer.truncate(0);
    assert.equal(writer.offset, 0);
    await writer.write(Buffer.from('right'));
    assert.equal((await writer.commit()).digest, digestOf('right'));
  });

  test('truncate to a middle offset rehashes the kept prefix', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const writer = await store.writer({ ref: 'trunc2', expected: digestOf('abcXY') });
    await writer.write(Buffer.from('abcdef'));
    await writer.truncate(3);
    await writer.write(Buffer.from('XY'));
    assert.equal((await writer.commit()).digest, digestOf('abcXY'));
  });
});

describe('content store: ingests and resume', () => {
  test('a closed writer resumes at its offset with the same digest state', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const data = Buffer.from('a'.repeat(1000) + 'b'.repeat(1000));
    const first = await store.writer({ ref: 'resume', expected: digestOf(data), total: data.length });
    await first.write(data.subarray(0, 1234));
    await first.close();
    const status = await store.status('resume');
    assert.deepEqual([status.offset, status.total, status.expected], [1234, data.length, digestOf(data)]);

    const second = await store.writer({ ref: 'resume', expected: digestOf(data), total: data.length });
    assert.equal(second.offset, 1234);
    await second.write(data.subarray(1234));
    assert.equal((await second.commit()).size, data.length);
  });

  test('an ingest survives closing and reopening the root', async (t) => {
    const path = tempDir(t);
    const data = Buffer.alloc(50_000, 3);
    let root = await Root.open({ path, namespaces: ['default'] });
    const w1 = await root.content.namespace('default').writer({ ref: 'persist', expected: digestOf(data), total: data.length });
    await w1.write(data.subarray(0, 20_000));
    await w1.close();
    root.close();

    root = await Root.open({ path });
    t.after(() => root.close());
    const w2 = await root.content.namespace('default').writer({ ref: 'persist', expected: digestOf(data), total: data.length });
    assert.equal(w2.offset, 20_000);
    await w2.write(data.subarray(20_000));
    assert.equal((await w2.commit()).digest, digestOf(data));
  });

  test('the same ref with a different expected digest starts over', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const w1 = await store.writer({ ref: 'retarget', expected: digestOf('one') });
    await w1.write(Buffer.from('on'));
    await w1.close();
    const w2 = await store.writer({ ref: 'retarget', expected: digestOf('two') });
    assert.equal(w2.offset, 0);
    await w2.write(Buffer.from('two'));
    await w2.commit();
  });

  test('a second writer on the same ref waits for the first instead of failing', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const b = blob('shared ref');
    const first = await store.writer({ ref: 'same', expected: b.digest, total: b.size });
    let secondSettled = false;
    const second = store.writer({ ref: 'same', expected: b.digest, total: b.size }).then(
      (w) => ({ w }),
      (e: unknown) => ({ e }),
    );
    void second.finally(() => (secondSettled = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(secondSettled, false, 'second writer is waiting');
    await first.write(b.data);
    await first.commit();
    const outcome = await second;
    assert.ok('e' in outcome && isAlreadyExists(outcome.e), 'after the first committed, the second learns it exists');
  });

  test('waiting for a busy ref is cancellable', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const first = await store.writer({ ref: 'busy' });
    const controller = new AbortController();
    const second = store.writer({ ref: 'busy', signal: controller.signal });
    controller.abort();
    await assert.rejects(second, isCanceled);
    await first.close();
    const third = await store.writer({ ref: 'busy' });
    await third.close();
  });

  test('listStatuses filters by ref and expected', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    for (const ref of ['layer-1', 'layer-2', 'config']) {
      const w = await store.writer({ ref, expected: digestOf(ref) });
      await w.write(Buffer.from('x'));
      await w.close();
    }
    assert.deepEqual((await store.listStatuses()).map((s) => s.ref), ['config', 'layer-1', 'layer-2']);
    assert.deepEqual((await store.listStatuses('ref~=^layer-')).map((s) => s.ref), ['layer-1', 'layer-2']);
    assert.deepEqual((await store.listStatuses(`expected==${digestOf('config')}`)).map((s) => s.ref), ['config']);
  });

  test('abort waits for the writer, then removes row and folder', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const writer = await store.writer({ ref: 'gone' });
    await writer.write(Buffer.from('partial'));
    const aborted = store.abort('gone');
    await writer.close();
    await aborted;
    await assert.rejects(store.status('gone'), isNotFound);
    assert.equal(readdirSync(join(root.path, 'content', 'ingest')).length, 0);
    await assert.rejects(store.abort('gone'), isNotFound);
  });
});

describe('content store: namespaces, sharing and races', () => {
  test('writing content the namespace has is AlreadyExists at once', async (t) => {
    const root = await openTestRoot(t);
    const info = await writeBlob(root, 'default', Buffer.from('dup'));
    await assert.rejects(root.content.namespace('default').writer({ ref: 'again', expected: info.digest }), isAlreadyExists);
  });

  test('a blob shared by two namespaces is one file; it goes when the last namespace deletes it', async (t) => {
    const root = await openTestRoot(t);
    const b = blob('shared across namespaces');
    await writeBlob(root, 'default', b.data);
    const other = root.content.namespace('other');
    await assert.rejects(other.info(b.digest), isNotFound, 'not visible before it is written there');
    await assert.rejects(other.writer({ ref: 'o', expected: b.digest, total: b.size, labels: { x: 'y' } }), isAlreadyExists);
    assert.deepEqual((await other.info(b.digest)).labels, { x: 'y' });
    const file = join(root.path, 'content/blobs/sha256', b.digest.slice(7));
    assert.equal(readdirSync(join(root.path, 'content/blobs/sha256')).length, 1);

    await root.content.namespace('default').delete(b.digest);
    assert.equal(existsSync(file), true, 'still used by the other namespace');
    assert.deepEqual(await other.readBlob(b.digest), b.data);
    await other.delete(b.digest);
    assert.equal(existsSync(file), false);
    await assert.rejects(other.delete(b.digest), isNotFound);
  });

  test('two refs writing the same blob at once: one commits, the other gets AlreadyExists, one file', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const data = Buffer.alloc(200_000, 9);
    const writers = await Promise.all(['a', 'b'].map((ref) => store.writer({ ref, total: data.length })));
    await Promise.all(writers.map((w) => w.write(data)));
    const results = await Promise.allSettled(writers.map((w) => w.commit({ expected: digestOf(data) })));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(isAlreadyExists(rejected.reason));
    assert.equal(readdirSync(join(root.path, 'content/blobs/sha256')).length, 1);
    assert.equal(readdirSync(join(root.path, 'content/ingest')).length, 0);
    assert.deepEqual(await store.readBlob(digestOf(data), { maxSize: 1 << 20 }), data);
  });

  test('labels update with field paths and walk with filters', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    const a = await writeBlob(root, 'default', Buffer.from('a'));
    const b = await writeBlob(root, 'default', Buffer.from('b'));
    await store.update({ digest: a.digest, labels: { 'containerd.io/gc.root': 'true', keep: 'me' } });
    await store.update({ digest: a.digest, labels: {} }, ['labels.keep']);
    assert.deepEqual((await store.info(a.digest)).labels, { 'containerd.io/gc.root': 'true' });
    await assert.rejects(store.update({ digest: a.digest, labels: { ['k'.repeat(4097)]: '' } }), isInvalidArgument);
    const seen: string[] = [];
    await store.walk((info) => void seen.push(info.digest), 'labels."containerd.io/gc.root"==true');
    assert.deepEqual(seen, [a.digest]);
    seen.length = 0;
    await store.walk((info) => void seen.push(info.digest));
    assert.deepEqual(seen.sort(), [a.digest, b.digest].sort());
  });

  test('a writer under a lease attributes the ingest, then the content, to it', async (t) => {
    const root = await openTestRoot(t);
    const ns = root.db.namespace('default');
    ns.leases.create({ id: 'pull-1' });
    const store = root.content.namespace('default');
    const b = blob('leased');
    const writer = await store.writer({ ref: 'leased-ref', expected: b.digest, lease: 'pull-1' });
    assert.deepEqual(ns.leases.listResources('pull-1'), [{ type: 'ingests', id: 'leased-ref' }]);
    await writer.write(b.data);
    await writer.commit();
    assert.deepEqual(ns.leases.listResources('pull-1'), [{ type: 'content', id: b.digest }]);
    // Content the namespace already has is attributed too, so the lease protects it.
    ns.leases.create({ id: 'pull-2' });
    await assert.rejects(store.writer({ ref: 'again', expected: b.digest, lease: 'pull-2' }), isAlreadyExists);
    assert.deepEqual(ns.leases.listResources('pull-2'), [{ type: 'content', id: b.digest }]);
  });

  test('a writer naming a missing lease fails with NotFound and leaves nothing', async (t) => {
    const root = await openTestRoot(t);
    const store = root.content.namespace('default');
    await assert.rejects(store.writer({ ref: 'orphan', lease: 'no-such-lease' }), isNotFound);
    await assert.rejects(store.status('orphan'), isNotFound);
  });
});

describe('content store: start-up repair', () => {
  test('orphan ingest folders and blobs are removed, dangling rows dropped, good data kept', async (t) => {
    const path = tempDir(t);
    let root = await Root.open({ path, namespaces: ['default'] });
    const kept = await writeBlob(root, 'default', Buffer.from('kept'));
    const lost = await writeBlob(root, 'default', Buffer.from('lost'));
    const w = await root.content.namespace('default').writer({ ref: 'kept-ingest' });
    await w.write(Buffer.from('12'));
    await w.close();
    const w2 = await root.content.namespace('default').writer({ ref: 'lost-ingest' });
    await w2.close();
    const lostIngestDir = root.db.namespace('default').ingests.get('lost-ingest').dir;
    root.close();

    // What a crash or a lost disk write can leave behind:
    const orphanBlob = digestOf('orphan');
    writeFileSync(join(path, 'content/blobs/sha256', orphanBlob.slice(7)), 'orphan');
    mkdirSync(join(path, 'content/ingest/deadbeef'));
    writeFileSync(join(path, 'content/ingest/deadbeef/data'), 'junk');
    const { rmSync } = await import('node:fs');
    rmSync(join(path, 'content/ingest', lostIngestDir), { recursive: true });
    rmSync(join(path, 'content/blobs/sha256', lost.digest.slice(7)));

    root = await Root.open({ path });
    t.after(() => root.close());
    const store = root.content.namespace('default');
    assert.deepEqual(await store.readBlob(kept.digest), Buffer.from('kept'));
    assert.equal((await store.status('kept-ingest')).offset, 2);
    await assert.rejects(store.status('lost-ingest'), isNotFound);
    await assert.rejects(store.info(lost.digest), isNotFound);
    assert.equal(existsSync(join(path, 'content/blobs/sha256', orphanBlob.slice(7))), false);
    assert.equal(existsSync(join(path, 'content/ingest/deadbeef')), false);
  });
});
