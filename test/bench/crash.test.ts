import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CrashSummary } from '../../bench/stress/crash.js';
import { tempDir } from '../helpers/tmp.js';
import { describeRun, runBenchScript } from './helpers.js';

test('stress:crash survives 3 rounds of SIGKILL, start-up repair and re-pull with every invariant holding', async (t) => {
  const json = join(tempDir(t, 'layerpool-crash-out-'), 'summary.json');
  const run = await runBenchScript('bench/stress/crash.ts', ['--rounds', '3', '--seed', 'ci', '--json', json]);
  assert.equal(run.code, 0, describeRun(run));
  assert.match(run.stdout, /rounds survived: 3\/3/);

  const summary = JSON.parse(readFileSync(json, 'utf8')) as CrashSummary;
  assert.equal(summary.survived, 3);
  assert.deepEqual(summary.reports.map((r) => r.violations), [[], [], []]);
  assert.ok(summary.reports.every((r) => r.ingestsLeft === 0));
});
