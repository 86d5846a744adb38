import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchResults } from '../../bench/lib/results.js';
import { tempDir } from '../helpers/tmp.js';
import { describeRun, REPO, runBenchScript } from './helpers.js';

test('bench --quick on the small scenario without peers writes JSON and HTML results with a layer timeline, and leaves README alone', async (t) => {
  const out = tempDir(t, 'layerpool-bench-out-');
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const run = await runBenchScript('bench/run.ts', ['small', '--quick', '--no-peers', '--no-build', '--runs', '1', '--out', out]);
  assert.equal(run.code, 0, describeRun(run));

  const files = readdirSync(out).sort();
  assert.equal(files.length, 2, files.join(', '));
  const [html, json] = files as [string, string];
  assert.match(json, /^\d{4}-\d{2}-\d{2}\.json$/);
  assert.equal(html, json.replace('.json', '.html'));

  const results = JSON.parse(readFileSync(join(out, json), 'utf8')) as BenchResults;
  assert.equal(results.quick, true);
  assert.ok(results.machine.cores >= 1 && results.machine.kernel.length > 0 && results.machine.node === process.version);
  assert.deepEqual(results.scenarios.map((s) => s.id), ['small']);
  const [small] = results.scenarios;
  assert.ok(small && !small.failed, JSON.stringify(small?.notes));
  assert.deepEqual(small.series.map((s) => s.label), ['layerpool']);
  const [layerpool] = small.series;
  assert.equal(layerpool?.samples.length, 1);
  assert.ok((layerpool?.summary.median ?? 0) > 0);
  assert.ok((layerpool?.rssKb?.median ?? 0) > 0, 'peak RSS of the pull process is recorded');
  assert.equal(small.image?.layers, 1);
  assert.equal(small.timeline?.length, 1);
  const [layer] = small.timeline ?? [];
  for (const lane of [layer?.fetch, layer?.apply, layer?.commit]) assert.ok(lane && lane[0] <= lane[1], JSON.stringify(layer));

  const page = readFileSync(join(out, html), 'utf8');
  assert.match(page, /<svg[^>]*>.*<rect/s);
  assert.match(page, /Cold pull: small/);
  assert.doesNotMatch(page, /<script|https?:\/\/(?!www\.w3\.org)/, 'the report is self-contained');
  assert.match(run.stdout, /\| Cold pull: small .* \| layerpool \|/);
  assert.equal(readFileSync(join(REPO, 'README.md'), 'utf8'), readme);
});

test('bench rejects an unknown scenario with the list of known ones', async () => {
  const run = await runBenchScript('bench/run.ts', ['no-such-scenario', '--no-build']);
  assert.equal(run.code, 2, describeRun(run));
  assert.match(run.stderr, /unknown scenario "no-such-scenario"; scenarios: cli, small, medium, large/);
});
