/**
 * The benchmark runner: `npm run bench -- [scenario...] [--runs N] [--quick]`.
 *
 *   setup (peers' packages) ─▶ tsc build ─▶ private registry on 127.0.0.1 ─▶ fixtures pushed
 *   ─▶ scenarios (layerpool next to ctr and skopeo+umoci, same images, same registry)
 *   ─▶ bench/results/<date>.json + .html, a table on stdout, README's Benchmarks table
 *
 * Options:
 *   --runs N         runs per scenario (default 5; --quick: 2)
 *   --quick          tiny images (small + a scaled-down large), for CI smoke runs
 *   --no-peers       layerpool only (or --peers ctr,skopeo+umoci to choose)
 *   --baseline DIR   also run another checkout of layerpool (built there with its own tsc)
 *                    as a peer `layerpool@<its git revision>`: before/after figures for a
 *                    change, side by side in one run. DIR needs its node_modules, e.g.
 *                    `git worktree add /tmp/base HEAD~1 && ln -s $PWD/node_modules /tmp/base/`.
 *   --no-build       run layerpool through tsx instead of a fresh dist/ build (no CLI scenario)
 *   --out DIR        results folder (default bench/results; older dated results there are removed)
 *   --work DIR       where the registry storage and roots go (default /var/tmp; not tmpfs)
 *   --cache DIR      fixture build cache (default bench/.cache)
 *   --no-readme      leave README.md alone (quick runs and runs with --out never touch it)
 *   --note TEXT      a caveat stored with the results and shown under the table (repeatable)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { InvalidArgumentError } from '../src/errors.js';
import type { PresetName } from './fixtures/index.js';
import { positiveInteger, runMain } from './lib/cli.js';
import { publishPreset, type PublishedImage } from './lib/images.js';
import { describeMachine, machineInfo } from './lib/machine.js';
import { onPath } from './lib/proc.js';
import { LayerpoolPuller, type NodeEntry, type Puller } from './lib/puller.js';
import { startRegistry } from './lib/registry.js';
import type { BenchResults, ScenarioResult } from './lib/results.js';
import { ContainerdPuller } from './peers/containerd.js';
import { SkopeoUmociPuller } from './peers/skopeo-umoci.js';
import { htmlReport } from './report/html.js';
import { figuresTable, readmeBlock, resultsTable, updateReadme } from './report/markdown.js';
import type { Scenario, ScenarioContext } from './scenarios/context.js';
import { pullScenarios } from './scenarios/pulls.js';
import { applyBench, cliStartup, gcBench } from './scenarios/tools.js';

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));

export const BENCH_DEFAULTS = {
  runs: 5,
  quickRuns: 2,
  resultsDir: join(REPO, 'bench', 'results'),
  cacheDir: join(REPO, 'bench', '.cache'),
  workDir: '/var/tmp',
  /** Scenarios of a --quick run without names. */
  quickScenarios: ['small', 'large'],
  /** Presets shrunk for --quick (1: as is). */
  quickScales: { small: 1, medium: 0.1, large: 0.05, 'large-zstd': 0.05, 'many-files': 0.05 } as Partial<Record<PresetName, number>>,
} as const;

/** layerpool pulls through tsx: without a build, or when the build wrote no dist/. */
const PULL_ONCE_TSX: NodeEntry = { command: process.execPath, args: ['--import', 'tsx', join(REPO, 'bench', 'lib', 'pull-once.ts')] };

const USAGE = `usage: npm run bench -- [scenario...] [--runs N] [--quick] [--no-peers | --peers ctr,skopeo+umoci] [--baseline DIR] [--no-build] [--out DIR] [--work DIR] [--cache DIR] [--no-readme] [--note TEXT]`;

/** Every scenario, in the order a full run takes them. */
function allScenarios(): Scenario[] {
  return [cliStartup, ...pullScenarios(), gcBench, applyBench];
}

function parseOptions(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      peers: { type: 'string' },
      'no-peers': { type: 'boolean', default: false },
      baseline: { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      'no-readme': { type: 'boolean', default: false },
      out: { type: 'string' },
      work: { type: 'string' },
      cache: { type: 'string' },
      note: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const runs = values.runs === undefined ? (values.quick ? BENCH_DEFAULTS.quickRuns : BENCH_DEFAULTS.runs) : positiveInteger('runs', values.runs);
  const known = allScenarios();
  const wanted = positionals.length > 0 ? positionals : values.quick ? [...BENCH_DEFAULTS.quickScenarios] : known.map((s) => s.id);
  const scenarios = wanted.map((id) => {
    const scenario = known.find((s) => s.id === id);
    if (!scenario) throw new InvalidArgumentError(`unknown scenario ${JSON.stringify(id)}; scenarios: ${known.map((s) => s.id).join(', ')}`);
    return scenario;
  });
  const peerNames = values['no-peers'] ? [] : values.peers === undefined ? ['ctr', 'skopeo+umoci'] : values.peers.split(',').filter((p) => p !== '');
  for (const name of peerNames) {
    if (!['ctr', 'skopeo+umoci'].includes(name)) throw new InvalidArgumentError(`unknown peer ${JSON.stringify(name)}; peers: ctr, skopeo+umoci`);
  }
  return {
    help: values.help,
    runs,
    quick: values.quick,
    scenarios,
    peerNames,
    baselineDir: values.baseline === undefined ? undefined : resolve(values.baseline),
    build: !values['no-build'],
    readme: !values['no-readme'] && !values.quick && values.out === undefined,
    outDir: resolve(values.out ?? BENCH_DEFAULTS.resultsDir),
    workDir: resolve(values.work ?? BENCH_DEFAULTS.workDir),
    cacheDir: resolve(values.cache ?? BENCH_DEFAULTS.cacheDir),
    notes: values.note ?? [],
  };
}

/** Install the peers' packages when missing and we are root (bench/setup.sh). */
function setupPeers(notes: string[]): void {
  if (['containerd', 'ctr', 'skopeo', 'umoci', '/usr/bin/time'].every(onPath)) return;
  if (process.getuid?.() !== 0) {
    notes.push('peer tools missing and not root: run `sudo bash bench/setup.sh`');
    return;
  }
  console.log('installing peer tools (bench/setup.sh) ...');
  const run = spawnSync('bash', [join(REPO, 'bench', 'setup.sh')], { stdio: 'inherit' });
  if (run.status !== 0) notes.push(`bench/setup.sh failed (exit ${run.status}): peers that are missing are skipped`);
}

/** tsc into `repo`/dist/: the CLI start-up scenario needs it, and pulls then run the built library. */
function build(notes: string[], repo = REPO): { pullOnce: NodeEntry; cliPath: string | undefined; via: 'dist' | 'tsx' } {
  console.log(`building ${relative(REPO, join(repo, 'dist')) || join(repo, 'dist')} (tsc) ...`);
  const run = spawnSync(join(repo, 'node_modules', '.bin', 'tsc'), ['-p', join(repo, 'tsconfig.json')], { cwd: repo, encoding: 'utf8' });
  const pullOnce = join(repo, 'dist', 'bench', 'lib', 'pull-once.js');
  const cli = join(repo, 'dist', 'src', 'cli', 'main.js');
  // tsc emits even when some file does not type-check: use what it wrote, but say so.
  if (run.status !== 0) notes.push(`tsc reported errors in ${repo} (exit ${run.status}); its dist/ was built anyway`);
  if (!existsSync(pullOnce)) {
    notes.push('no dist/ build: layerpool ran through tsx');
    return { pullOnce: PULL_ONCE_TSX, cliPath: existsSync(cli) ? cli : undefined, via: 'tsx' };
  }
  return { pullOnce: { command: process.execPath, args: [pullOnce] }, cliPath: existsSync(cli) ? cli : undefined, via: 'dist' };
}

/** Another checkout of layerpool, built there, as a peer named after its revision. */
function baselinePuller(dir: string, notes: string[]): LayerpoolPuller {
  const built = build(notes, dir);
  if (built.via !== 'dist') throw new InvalidArgumentError(`--baseline ${dir}: tsc wrote no dist/bench/lib/pull-once.js there`);
  const revision = spawnSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() || 'baseline';
  notes.push(`layerpool@${revision} is the build of ${dir}, run as a peer for before/after figures`);
  return new LayerpoolPuller(built.pullOnce, dir, `layerpool@${revision}`);
}

/** Drops the page cache before cold runs while it works; notes once why it cannot. */
function pageCacheDropper(notes: string[]): { drop: () => void; dropped: () => boolean } {
  let working = process.getuid?.() === 0;
  if (!working) notes.push('page cache not dropped between cold runs (not root)');
  return {
    drop: () => {
      if (!working) return;
      const run = spawnSync('sh', ['-c', 'sync && echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });
      if (run.status !== 0) {
        working = false;
        notes.push('page cache not dropped between cold runs (/proc/sys/vm/drop_caches refused the write)');
      }
    },
    dropped: () => working,
  };
}

/** Keep only this session's dated results in the folder: the latest is what gets committed. */
function removeOlderResults(outDir: string, keep: string): string[] {
  const dated = /^\d{4}-\d{2}-\d{2}\.(json|html)$/;
  const removed = readdirSync(outDir).filter((f) => dated.test(f) && !f.startsWith(keep));
  for (const file of removed) rmSync(join(outDir, file));
  return removed;
}

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  if (options.help) {
    console.log(`${USAGE}\nscenarios: ${allScenarios().map((s) => `${s.id} (${s.title})`).join(', ')}`);
    return 0;
  }
  const started = new Date();
  const notes: string[] = [...options.notes];
  if (options.peerNames.length > 0) setupPeers(notes);
  const { pullOnce, cliPath, via } = options.build
    ? build(notes)
    : { pullOnce: PULL_ONCE_TSX, cliPath: undefined, via: 'tsx' as const };

  mkdirSync(options.workDir, { recursive: true });
  const work = mkdtempSync(join(options.workDir, 'layerpool-bench-'));
  const machine = machineInfo(work);
  if (machine.disk?.fsType === 'tmpfs') notes.push(`${options.workDir} is tmpfs: pulls never touch a disk (use --work on a real filesystem)`);
  const caches = pageCacheDropper(notes);
  const registry = await startRegistry({ dir: join(work, 'registry') });
  const results: ScenarioResult[] = [];
  try {
    const peers: Puller[] = [];
    for (const peer of [new ContainerdPuller(), new SkopeoUmociPuller()].filter((p) => options.peerNames.includes(p.name))) {
      const why = await peer.unavailable();
      if (why === undefined) peers.push(peer);
      else notes.push(`${peer.name} skipped: ${why}`);
    }
    if (options.baselineDir !== undefined) peers.push(baselinePuller(options.baselineDir, notes));
    const images = new Map<PresetName, Promise<PublishedImage>>();
    let sessions = 0;
    const ctx: ScenarioContext = {
      quick: options.quick,
      runs: options.runs,
      repoDir: REPO,
      registry,
      image: (preset) => {
        let image = images.get(preset);
        if (!image) {
          const scale = options.quick ? (BENCH_DEFAULTS.quickScales[preset] ?? 1) : 1;
          image = publishPreset(preset, {
            registry,
            fixturesDir: join(options.cacheDir, 'fixtures'),
            scale,
            onBuild: (p) => console.log(`fixture ${p}${scale === 1 ? '' : ` (scale ${scale})`}: building or reusing in ${relative(REPO, options.cacheDir) || options.cacheDir}, pushing ...`),
          }).then((list) => list[0] as PublishedImage);
          images.set(preset, image);
        }
        return image;
      },
      layerpool: new LayerpoolPuller(pullOnce, REPO),
      peers,
      sessionDir: (label) => join(work, `s${++sessions}-${label.replace(/[^a-z0-9]+/gi, '_')}`),
      dropCaches: caches.drop,
      cliPath,
      tsScript: (path) => ({ command: process.execPath, args: ['--import', 'tsx', join(REPO, path)] }),
      log: (line) => console.log(line),
    };
    for (const scenario of options.scenarios) {
      console.log(`\n== ${scenario.title}`);
      try {
        results.push(await scenario.run(ctx));
      } catch (err) {
        console.log(`  FAILED: ${(err as Error).message}`);
        results.push({ id: scenario.id, title: scenario.title, what: scenario.what, series: [], figures: {}, notes: [`failed: ${(err as Error).message.split('\n')[0]}`], failed: true });
      }
    }
  } finally {
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  }

  const bench: BenchResults = {
    date: started.toISOString(),
    command: ['npm run bench', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' '),
    quick: options.quick,
    runs: options.runs,
    machine,
    via,
    pageCache: caches.dropped() ? 'dropped between cold runs' : 'not dropped (needs root and a writable /proc/sys/vm/drop_caches)',
    notes,
    scenarios: results,
  };
  mkdirSync(options.outDir, { recursive: true });
  const name = started.toISOString().slice(0, 10);
  const jsonPath = join(options.outDir, `${name}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(bench, null, 1)}\n`);
  writeFileSync(join(options.outDir, `${name}.html`), htmlReport(bench));
  const removed = removeOlderResults(options.outDir, name);

  console.log(`\n${describeMachine(machine)}\n\n${resultsTable(bench)}\n\n${figuresTable(bench)}\n`);
  console.log(`results: ${jsonPath} and ${name}.html${removed.length > 0 ? ` (removed older: ${removed.join(', ')})` : ''}`);
  if (options.readme) {
    const updated = await updateReadme(join(REPO, 'README.md'), readmeBlock(bench, relative(REPO, jsonPath)));
    console.log(updated ? 'README.md Benchmarks table updated' : 'README.md has no bench markers: table not written');
  }
  return results.some((r) => r.failed) ? 1 : 0;
}

runMain('bench', () => main(process.argv.slice(2)));
