import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StressSummary } from '../../bench/stress/stress.js';
import { tempDir } from '../helpers/tmp.js';
import { describeRun, runBenchScript } from './helpers.js';

test('stress for 10 s with 4 workers pulls, deletes, leases and collects, and every invariant holds', async (t) => {
  const json = join(tempDir(t, 'layerpool-stress-out-'), 'summary.json');
  const run = await runBenchScript('bench/stress/stress.ts', ['--duration', '10s', '--concurrency', '4', '--json', json]);
  assert.equal(run.code, 0, describeRun(run));
  assert.match(run.stdout, /invariants: all hold/);

  const summary = JSON.parse(readFileSync(json, 'utf8')) as StressSummary;
  assert.deepEqual(summary.violations, []);
  const { counters } = summary.library;
  assert.ok(counters.pulls > 0 && counters.pullsFailed === 0, JSON.stringify(counters));
  assert.ok(counters.deletes + counters.leases + counters.gcs > 0, JSON.stringify(counters));
  assert.equal(summary.library.disk.ingests, 0);
  // Service mode runs where the CLI has `serve`; each of its operations is a CLI process.
  if (typeof summary.service !== 'string') {
    const service = summary.service.counters;
    assert.ok(service.pulls + service.deletes + service.leases + service.gcs > 0 && service.pullsFailed === 0, JSON.stringify(service));
  }
});
