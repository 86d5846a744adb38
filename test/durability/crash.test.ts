/**
 * Crash rounds aimed at garbage collection: bench/stress/crash.ts with the gc-heavy mix
 * (deletions and collections as frequent as pulls, each child killed just after one of
 * its first collections starts). After every SIGKILL the root is reopened (start-up
 * repair), every image re-pulled, and the invariants checked: every blob file has a row
 * and every row its file, every snapshot folder a row (no new-* or *-removing left), every
 * image unpacks to its fixture tree. test/bench/crash.test.ts runs the default mix (kills
 * mostly during pulls); more rounds: `npm run stress:crash -- --rounds 200 --mix gc-heavy`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CrashSummary } from '../../bench/stress/crash.js';
import { checkDisk } from '../../bench/stress/invariants.js';
import { Client } from '../../src/client.js';
import { digestOf } from '../../src/digest.js';
import { describeRun, runBenchScript } from '../bench/helpers.js';
import { tempDir } from '../helpers/tmp.js';

const ROUNDS = 5;

test(`stress:crash --mix gc-heavy survives ${ROUNDS} SIGKILLs, most inside a GC, with every invariant holding after repair and re-pull`, async (t) => {
  const json = join(tempDir(t, 'layerpool-crash-gc-'), 'summary.json');
  const run = await runBenchScript('bench/stress/crash.ts', ['--rounds', String(ROUNDS), '--seed', 'ci-gc', '--mix', 'gc-heavy', '--json', json]);
  assert.equal(run.code, 0, describeRun(run));
  const summary = JSON.parse(readFileSync(json, 'utf8')) as CrashSummary;
  t.diagnostic(`${summary.killedDuringGC} of ${ROUNDS} kills landed inside a garbage collection`);
  assert.equal(summary.mix, 'gc-heavy');
  assert.equal(summary.survived, ROUNDS);
  assert.deepEqual(summary.reports.map((r) => r.violations), Array.from({ length: ROUNDS }, () => []));
  assert.ok(summary.reports.every((r) => r.ingestsLeft === 0), 'the re-pulls committed every ingest the kills left');
  assert.ok(summary.killedDuringGC > 0, 'at least one kill interrupted a collection');
});

test('the crash rounds\' disk check catches a blob file whose bytes do not hash to its name', async (t) => {
  const root = join(tempDir(t), 'root');
  await (await Client.open({ root, gc: false })).close();
  const named = digestOf('what the name promises');
  writeFileSync(join(root, 'content', 'blobs', 'sha256', named.slice('sha256:'.length)), 'torn by a crash');
  assert.ok((await checkDisk(root)).violations.includes(`blob file ${named} hashes to ${digestOf('torn by a crash')}`));
});
