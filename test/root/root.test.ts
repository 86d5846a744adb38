import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { digestOf } from '../../src/digest.js';
import { isUnavailable } from '../../src/errors.js';
import { RESERVE_BYTES } from '../../src/metadata/db.js';
import { Root } from '../../src/root.js';
import { ingestData } from '../fixtures/crash-child.js';
import { tempDir } from '../helpers/tmp.js';

const CHILD = fileURLToPath(new URL('../fixtures/crash-child.ts', import.meta.url));

function startChild(args: string[]): { child: ChildProcessWithoutNullStreams; lines: AsyncIterableIterator<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return { child, lines };
}

async function waitFor(lines: AsyncIterableIterator<string>, predicate: (line: string) => boolean): Promise<string> {
  for (;;) {
    const next = await lines.next();
    if (next.done) throw new Error('child exited before the expected output');
    if (predicate(next.value)) return next.value;
  }
}

function killed(child: ChildProcessWithoutNullStreams): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

// Seeded PRNG (mulberry32): crash points differ per round but every run is the same.
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** What must hold after any crash: the database and the files agree, every blob verifies. */
async function assertConsistent(path: string): Promise<void> {
  const root = await Root.open({ path });
  try {
    const rows = root.db.sqlite.prepare('SELECT DISTINCT digest, size FROM content').all() as { digest: string; size: number }[];
    const files = readdirSync(join(path, 'content/blobs/sha256')).map((hex) => `sha256:${hex}`);
    assert.deepEqual(files.sort(), rows.map((r) => r.digest).sort(), 'blob files are exactly the recorded content');
    for (const { digest, size } of rows) {
      const bytes = readFileSync(join(path, 'content/blobs/sha256', digest.slice(7)));
      assert.equal(bytes.length, size, `${digest} size`);
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, digest, `${digest} content`);
    }
    const ingestRows = root.db.sqlite.prepare('SELECT dir FROM ingests').all() as { dir: string }[];
    assert.deepEqual(readdirSync(join(path, 'content/ingest')).sort(), ingestRows.map((r) => r.dir).sort());
  } finally {
    root.close();
  }
}

describe('root ownership', () => {
  test('a second process gets "root in use by pid N" until the owner closes', async (t) => {
    const path = tempDir(t);
    const root = await Root.open({ path });
    const { child } = startChild(['hold', path]);
    t.after(() => killed(child));
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exit = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(exit, 1);
    assert.match(stderr, new RegExp(`root ${path} is in use by pid ${process.pid}`));
    root.close();

    const second = startChild(['hold', path]);
    t.after(() => killed(second.child));
    assert.equal(await waitFor(second.lines, () => true), 'ready');
    await assert.rejects(Root.open({ path }), (e) => isUnavailable(e) && (e as Error).message.includes(`pid ${second.child.pid}`));
    await killed(second.child);
    // The kernel drops a dead owner's flock: the root is usable again at once.
    const again = await Root.open({ path });
    again.close();
  });

  test('opening the same root twice in one process is refused too', async (t) => {
    const path = tempDir(t);
    const root = await Root.open({ path });
    t.after(() => root.close());
    await assert.rejects(Root.open({ path }), isUnavailable);
  });

  test('a root directory that cannot be created is Unavailable', async (t) => {
    const path = join(tempDir(t), 'file');
    (await import('node:fs')).writeFileSync(path, 'not a directory');
    await assert.rejects(Root.open({ path: join(path, 'root') }), isUnavailable);
  });
});

describe('crash safety (kill -9)', () => {
  test('an ingest killed mid-write resumes at a offset at least as far as reported, and commits', async (t) => {
    const path = tempDir(t);
    const size = 8 << 20;
    const { child, lines } = startChild(['ingest', path, String(size)]);
    t.after(() => killed(child));
    const line = await waitFor(lines, (l) => l.startsWith('wrote ') && Number(l.slice(6)) >= 3 << 20);
    await killed(child);
    const reported = Number(line.slice(6));

    const root = await Root.open({ path });
    t.after(() => root.close());
    const store = root.content.namespace('default');
    const status = await store.status('big');
    assert.ok(status.offset >= reported && status.offset < size, `offset ${status.offset} vs reported ${reported}`);
    const data = ingestData(size);
    const writer = await store.writer({ ref: 'big', expected: digestOf(data), total: size });
    assert.equal(writer.offset, status.offset);
    await writer.write(data.subarray(writer.offset));
    assert.equal((await writer.commit()).digest, digestOf(data));
  });

  test('killed at random points while committing, deleting and aborting, the store stays consistent', async (t) => {
    const path = tempDir(t);
    const random = prng(42);
    for (let round = 0; round < 8; round++) {
      const { child, lines } = startChild(['churn', path, String(round)]);
      const target = 1 + Math.floor(random() * 25);
      await waitFor(lines, (l) => l.startsWith('op ') && Number(l.slice(3)) >= target);
      // Let it run into the middle of the next operation, then pull the plug.
      await new Promise((r) => setTimeout(r, Math.floor(random() * 20)));
      await killed(child);
      await assertConsistent(path);
    }
    assert.equal(existsSync(join(path, 'metadata.db')), true);
  });
});

describe('metadata space reserve', () => {
  test('a root keeps a filled reserve beside its database, refilled once it was used', async (t) => {
    const path = tempDir(t, 'layerpool-root-');
    const reserve = join(path, 'metadata.reserve');
    const root = await Root.open({ path });
    try {
      const stat = statSync(reserve);
      assert.equal(stat.size, RESERVE_BYTES);
      assert.ok(stat.blocks * 512 >= RESERVE_BYTES, 'its blocks are allocated, not a hole');
      // What a full disk does: the transaction that needed room deleted it.
      unlinkSync(reserve);
      root.db.restoreReserve();
      assert.equal(statSync(reserve).size, RESERVE_BYTES);
    } finally {
      root.close();
    }
  });
});
