/**
 * Stress: `npm run stress -- --duration 60s --concurrency 20 [--service-clients N]
 * [--no-service] [--seed S] [--max-ops N] [--json FILE] [--work DIR] [--keep]`.
 *
 * Two roots, one registry on 127.0.0.1, the same rotating set of images:
 * - library: `--concurrency` workers share one Client;
 * - service: `layerpool serve` owns the other root and `--service-clients` workers run
 *   `layerpool` CLI processes against it (skipped, with a note, when the CLI has no serve).
 * Workers pull, delete images, create leases that expire or are deleted, and run GC (the
 * scheduler collects in the background too), until the duration or the operation budget
 * is spent. Then the invariants (bench/stress/invariants.ts) are checked on both roots.
 * Prints a summary; exits 1 when an invariant is violated or a pull failed.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '../../src/client.js';
import { parseDuration, positiveInteger, runMain } from '../lib/cli.js';
import type { NodeEntry } from '../lib/puller.js';
import { openEnvironment, REPO, type StressEnvironment } from './environment.js';
import { checkDisk, checkImages, type DiskReport } from './invariants.js';
import { hasServeCommand, startService } from './service.js';
import { formatCounters, libraryTarget, newCounters, runWorkload, type WorkloadCounters, type WorkloadOptions } from './workload.js';

export const STRESS_RUN_DEFAULTS = { duration: '60s', concurrency: 20, seed: 'layerpool-stress', maxOperations: 100_000 } as const;

const CLI: NodeEntry = { command: process.execPath, args: ['--import', 'tsx', join(REPO, 'src', 'cli', 'main.ts')] };

interface ModeSummary {
  counters: WorkloadCounters;
  /** Image records left at the end (each one checked). */
  imageRecords: number;
  disk: Omit<DiskReport, 'violations'>;
  violations: string[];
}

export interface StressSummary {
  seed: string;
  durationMs: number;
  library: ModeSummary;
  /** A note instead when service mode could not run. */
  service: ModeSummary | string;
  violations: string[];
}

type Workload = Omit<WorkloadOptions, 'target' | 'counters' | 'concurrency'>;

/** Image invariants through a client, then disk invariants on the closed root. */
async function verify(client: Client, root: string, env: StressEnvironment, counters: WorkloadCounters): Promise<ModeSummary> {
  let imageRecords = 0;
  const violations: string[] = [];
  try {
    await client.gc();
    imageRecords = (await client.listImages()).length;
    violations.push(...(await checkImages(client, { expectedTrees: env.expectedTrees, scratchDir: env.work })));
  } finally {
    await client.close();
  }
  const { violations: diskViolations, ...disk } = await checkDisk(root);
  violations.push(...diskViolations);
  if (counters.pullsFailed > 0) violations.push(`${counters.pullsFailed} pull(s) failed`);
  else if (disk.ingests > 0) violations.push(`${disk.ingests} ingest(s) left although every pull succeeded`);
  return { counters, imageRecords, disk, violations };
}

async function libraryMode(env: StressEnvironment, workload: Workload, concurrency: number): Promise<ModeSummary> {
  const root = join(env.work, 'library');
  const counters = newCounters();
  const client = await Client.open({ root });
  await runWorkload({ ...workload, seed: `${workload.seed}/library`, concurrency, counters, target: libraryTarget(client) }).catch(async (err: unknown) => {
    await client.close();
    throw err;
  });
  return verify(client, root, env, counters);
}

async function serviceMode(env: StressEnvironment, workload: Workload, clients: number): Promise<ModeSummary> {
  const service = await startService({ cli: CLI, cwd: REPO, dir: join(env.work, 'svc') });
  const counters = newCounters();
  try {
    await runWorkload({ ...workload, seed: `${workload.seed}/service`, concurrency: clients, counters, target: service.target });
  } finally {
    await service.stop();
  }
  // What the service left on disk, before a new owner's start-up repair could tidy it.
  const shutdown = await checkDisk(service.root);
  const summary = await verify(await Client.open({ root: service.root }), service.root, env, counters);
  summary.violations.unshift(...shutdown.violations.map((v) => `after service shutdown: ${v}`));
  return summary;
}

function printMode(name: string, mode: ModeSummary | string): void {
  if (typeof mode === 'string') {
    console.log(`${name}: ${mode}`);
    return;
  }
  const errors = Object.entries(mode.counters.errors);
  console.log(`${name}: ${formatCounters(mode.counters)}`);
  console.log(`  errors by code: ${errors.length === 0 ? 'none' : errors.map(([c, n]) => `${c} ${n}`).join(', ')}`);
  console.log(`  at the end: ${mode.imageRecords} images (all checked), ${mode.disk.blobs} blobs, ${mode.disk.snapshots} snapshots, ${mode.disk.ingests} ingests`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: STRESS_RUN_DEFAULTS.duration },
      concurrency: { type: 'string', default: String(STRESS_RUN_DEFAULTS.concurrency) },
      'service-clients': { type: 'string' },
      'no-service': { type: 'boolean', default: false },
      seed: { type: 'string', default: STRESS_RUN_DEFAULTS.seed },
      'max-ops': { type: 'string', default: String(STRESS_RUN_DEFAULTS.maxOperations) },
      json: { type: 'string' },
      work: { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
  });
  const durationMs = parseDuration(values.duration);
  const concurrency = positiveInteger('concurrency', values.concurrency);
  // A CLI process costs a Node start-up: fewer service clients than library workers.
  const serviceClients = values['service-clients'] === undefined ? Math.max(1, Math.round(concurrency / 5)) : positiveInteger('service-clients', values['service-clients']);
  const maxOperations = positiveInteger('max-ops', values['max-ops']);

  const env = await openEnvironment({ label: 'stress', ...(values.work === undefined ? {} : { workDir: values.work }) });
  let keep = values.keep;
  try {
    const service = values['no-service'] ? false : await hasServeCommand(CLI, REPO);
    console.log(`stress: ${env.images.length} images on ${env.registry.host}; library ${concurrency} workers${service ? `, service ${serviceClients} CLI clients` : ''}; ${durationMs / 1000} s (seed ${values.seed}); work ${env.work}`);
    const started = Date.now();
    const workload: Workload = { images: env.images, seed: values.seed, deadline: started + durationMs, maxOperations, onError: (operation, err) => console.log(`  ${operation} failed: ${(err as Error).message.split('\n')[0]}`) };
    const [library, serviceSummary] = await Promise.all([
      libraryMode(env, workload, concurrency),
      service ? serviceMode(env, workload, serviceClients) : Promise.resolve(values['no-service'] ? 'skipped (--no-service)' : 'skipped: the CLI has no `serve` command'),
    ]);
    const violations = [...library.violations.map((v) => `library: ${v}`), ...(typeof serviceSummary === 'string' ? [] : serviceSummary.violations.map((v) => `service: ${v}`))];
    const summary: StressSummary = { seed: values.seed, durationMs: Date.now() - started, library, service: serviceSummary, violations };

    console.log('');
    printMode('library', library);
    printMode('service', serviceSummary);
    if (violations.length === 0) console.log('invariants: all hold');
    else {
      keep = true;
      console.log(`invariants: ${violations.length} VIOLATED (work folder kept: ${env.work})`);
      for (const v of violations) console.log(`  - ${v}`);
    }
    if (values.json !== undefined) await writeFile(values.json, `${JSON.stringify(summary, null, 1)}\n`);
    return violations.length === 0 ? 0 : 1;
  } finally {
    await env.close({ keep });
  }
}

runMain('stress', main);
