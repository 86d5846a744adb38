/**
 * Scenarios that are not registry pulls: CLI start-up next to bare Node, and the two
 * micro-benchmarks that live beside this runner (bench/gc, bench/apply), run as child
 * processes whose printed figures are parsed into the results.
 */
import { FailedPreconditionError } from '../../src/errors.js';
import { outputTail, runMeasured, type ProcessRun } from '../lib/proc.js';
import type { ScenarioResult, Series } from '../lib/results.js';
import { summarize } from '../lib/stats.js';
import type { Scenario, ScenarioContext } from './context.js';

const CLI_RUNS = { full: 20, quick: 5 } as const;

function seriesOfRuns(label: string, puller: string, runs: ProcessRun[]): Series {
  const rss = runs.flatMap((r) => (r.peakRssKb === undefined ? [] : [r.peakRssKb]));
  return {
    label,
    puller,
    samples: runs.map((r) => Math.round(r.wallMs * 10) / 10),
    summary: summarize(runs.map((r) => r.wallMs)),
    ...(rss.length > 0 ? { rssKb: summarize(rss) } : {}),
  };
}

/** A series of one figure a sub-benchmark printed (its own median, min, max). */
function printedSeries(label: string, puller: string, median: number, min = median, max = median): Series {
  return { label, puller, samples: [], summary: { n: 1, min, median, max } };
}

async function runScript(ctx: ScenarioContext, script: string, args: string[]): Promise<string> {
  const entry = ctx.tsScript(script);
  const run = await runMeasured(entry.command, [...entry.args, ...args], { cwd: ctx.repoDir, rss: false });
  if (run.code !== 0) throw new FailedPreconditionError(`${script} failed (exit ${run.code ?? run.signal}):\n${outputTail(run)}`);
  return run.stdout;
}

export const cliStartup: Scenario = {
  id: 'cli',
  title: 'CLI start-up',
  what: '`node dist/src/cli/main.js version` against bare `node -e ""`, alternating, each run a new process: what every CLI command pays before it does anything.',
  run: async (ctx): Promise<ScenarioResult> => {
    const base = { id: cliStartup.id, title: cliStartup.title, what: cliStartup.what };
    if (ctx.cliPath === undefined) {
      return { ...base, series: [], figures: {}, notes: ['skipped: no built CLI (dist/src/cli/main.js); run without --no-build'] };
    }
    const count = ctx.quick ? CLI_RUNS.quick : CLI_RUNS.full;
    const cli: ProcessRun[] = [];
    const bare: ProcessRun[] = [];
    for (let i = 0; i < count; i++) {
      const pair = [
        async () => cli.push(await runMeasured(process.execPath, [ctx.cliPath as string, 'version'], { cwd: ctx.repoDir })),
        async () => bare.push(await runMeasured(process.execPath, ['-e', ''], { cwd: ctx.repoDir })),
      ];
      if (i % 2 === 1) pair.reverse();
      for (const step of pair) await step();
    }
    const failed = cli.find((r) => r.code !== 0);
    if (failed) throw new FailedPreconditionError(`layerpool version failed:\n${outputTail(failed)}`);
    const series = [seriesOfRuns('layerpool version', 'layerpool', cli), seriesOfRuns('node -e ""', 'node', bare)];
    const [ours, node] = series.map((s) => s.summary.median) as [number, number];
    return { ...base, series, figures: { 'overhead over node (ms)': Math.round(ours - node), 'layerpool ÷ node': Math.round((ours / node) * 100) / 100 }, notes: [] };
  },
};

const GC_LINE = /mark median ([\d.]+) ms \(min ([\d.]+), max ([\d.]+)\), pause median ([\d.]+) ms/;

export const gcBench: Scenario = {
  id: 'gc',
  title: 'GC on a big store',
  what: 'bench/gc: mark & sweep over 10,000 blobs and 2,000 snapshots (100 images of 20-layer chains, a quarter garbage); mark time and pause.',
  run: async (ctx) => {
    const args = ['--runs', String(ctx.runs), ...(ctx.quick ? ['--blobs', '1000', '--snapshots', '200'] : [])];
    const output = await runScript(ctx, 'bench/gc/gc.bench.ts', args);
    const match = GC_LINE.exec(output);
    if (!match) throw new FailedPreconditionError(`bench/gc printed no figures:\n${output}`);
    const [mark, min, max, pause] = match.slice(1).map(Number) as [number, number, number, number];
    return {
      id: gcBench.id,
      title: gcBench.title,
      what: ctx.quick ? gcBench.what.replace('10,000 blobs and 2,000 snapshots', '1,000 blobs and 200 snapshots (quick)') : gcBench.what,
      series: [printedSeries('gc mark', 'layerpool', mark, min, max), printedSeries('gc pause', 'layerpool', pause)],
      figures: { markMedianMs: mark, pauseMedianMs: pause },
      notes: [],
      output: output.trim(),
    };
  },
};

/** A row of bench/apply's table: `| many-small | tar.gz | 1.234 s | 1.100 s | ... |`. */
const APPLY_ROW = /^\|\s*(\S+)\s*\|\s*(tar(?:\.gz)?)\s*\|\s*([\d.]+) s\s*\|\s*([\d.]+) s\s*\|/;

export const applyBench: Scenario = {
  id: 'apply',
  title: 'Layer apply vs GNU tar',
  what: 'bench/apply: one layer applied in-process (no pool) against `tar -x` with owners, modes and xattrs, into empty folders: 30,000 small files, and 4 big files; as tar and tar.gz.',
  run: async (ctx) => {
    const args = ['--runs', String(ctx.runs), ...(ctx.quick ? ['--big-mib', '4'] : [])];
    const output = await runScript(ctx, 'bench/apply/apply.bench.ts', args);
    const series: Series[] = [];
    const figures: Record<string, number> = {};
    for (const line of output.split('\n')) {
      const row = APPLY_ROW.exec(line);
      if (!row) continue;
      const [, layer, format, ours, tar] = row as unknown as [string, string, string, string, string];
      series.push(printedSeries(`layerpool ${layer} ${format}`, 'layerpool', Number(ours) * 1000), printedSeries(`GNU tar ${layer} ${format}`, 'GNU tar', Number(tar) * 1000));
      figures[`layerpool ÷ GNU tar ${layer} ${format}`] = Math.round((Number(ours) / Number(tar)) * 100) / 100;
    }
    if (series.length === 0) throw new FailedPreconditionError(`bench/apply printed no table:\n${output}`);
    return { id: applyBench.id, title: applyBench.title, what: applyBench.what, series, figures, notes: [], output: output.trim() };
  },
};
