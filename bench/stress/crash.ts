/**
 * Crash stress: `npm run stress:crash -- --rounds N --seed S [--kill-window 2500ms]
 * [--mix default|gc-heavy] [--json FILE] [--work DIR] [--keep]`.
 *
 * Each round runs the stress workload in a child process (bench/stress/crash-child.ts) on
 * one root that lives across rounds, kills it with SIGKILL at a point drawn from a seeded
 * PRNG (0 to --kill-window after it is ready: mid-download, mid-apply, mid-commit,
 * mid-GC; with `--mix gc-heavy`, 0-20 ms after the start of the child's 1st to 4th
 * collection, so that most kills land inside a sweep), then reopens the root here —
 * start-up repair runs — re-pulls every image, and checks the invariants
 * (bench/stress/invariants.ts). Stops at the first violation and exits 1, keeping the
 * work folder; otherwise reports the rounds survived and how many kills hit a GC.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client } from '../../src/client.js';
import { InvalidArgumentError, UnavailableError } from '../../src/errors.js';
import { Rng } from '../fixtures/prng.js';
import { parseDuration, positiveInteger, runMain } from '../lib/cli.js';
import { openEnvironment, REPO, type StressEnvironment } from './environment.js';
import { checkDisk, checkImages } from './invariants.js';
import { WORKLOAD_MIXES } from './workload.js';

export const CRASH_DEFAULTS = { rounds: 10, seed: 'layerpool-crash', killWindow: '2500ms', readyTimeoutMs: 60_000 } as const;

interface RoundReport {
  round: number;
  killedAfterMs: number;
  /** The kill landed between a collection's start and its end. */
  killedDuringGC: boolean;
  reopenMs: number;
  repullMs: number;
  ingestsLeft: number;
  violations: string[];
}

export interface CrashSummary {
  seed: string;
  /** The workload's operation mix (WORKLOAD_MIXES). */
  mix: string;
  rounds: number;
  survived: number;
  /** Rounds whose kill landed inside a garbage collection. */
  killedDuringGC: number;
  reports: RoundReport[];
}

/** When to kill: `delayMs` after `ready`, or after the start of the child's `gcStart`-th collection. */
interface KillPoint {
  delayMs: number;
  gcStart?: number;
}

/**
 * Start the child, wait for `ready` (and the collection to kill in), wait `delayMs`,
 * SIGKILL it, wait for it to go. Returns when the kill came (ms after ready) and whether
 * it landed inside a collection (the child's last GC line was `gc-start`).
 */
async function runAndKill(args: string[], kill: KillPoint): Promise<{ killedAfterMs: number; killedDuringGC: boolean }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'bench', 'stress', 'crash-child.ts'), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let readyAt: number | undefined;
  // The child writes its stdout synchronously (a pipe): all it printed before the kill arrives before 'close'.
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new UnavailableError(`crash child was not ready within ${CRASH_DEFAULTS.readyTimeoutMs} ms:\n${output}`)), CRASH_DEFAULTS.readyTimeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (readyAt === undefined && /^ready$/m.test(output)) readyAt = performance.now();
      const gcStarted = kill.gcStart === undefined || (output.match(/^gc-start$/gm)?.length ?? 0) >= kill.gcStart;
      if (readyAt !== undefined && gcStarted) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new UnavailableError(`crash child exited (${code ?? signal}) before it was killed:\n${output.split('\n').slice(-10).join('\n')}`));
    });
  });
  await new Promise((resolve) => setTimeout(resolve, kill.delayMs));
  if (child.exitCode !== null || child.signalCode !== null) throw new UnavailableError(`crash child exited (${child.exitCode ?? child.signalCode}) before it was killed:\n${output}`);
  child.kill('SIGKILL');
  const killedAfterMs = Math.round(performance.now() - (readyAt as number));
  await exited;
  const gcLines = output.match(/^gc-(start|end)$/gm) ?? [];
  return { killedAfterMs, killedDuringGC: gcLines.at(-1) === 'gc-start' };
}

/** Reopen (start-up repair), re-pull everything, check the images, close, check the disk. */
async function recoverAndCheck(env: StressEnvironment, root: string): Promise<Omit<RoundReport, 'round' | 'killedAfterMs' | 'killedDuringGC'>> {
  const opened = performance.now();
  const client = await Client.open({ root });
  const reopenMs = performance.now() - opened;
  const violations: string[] = [];
  const pulling = performance.now();
  let repullMs = 0;
  try {
    const pulls = await Promise.allSettled(env.images.map((image) => client.pull(image.ref)));
    repullMs = performance.now() - pulling;
    pulls.forEach((p, i) => {
      if (p.status === 'rejected') violations.push(`re-pull of ${env.images[i]?.ref} failed: ${(p.reason as Error).message}`);
    });
    violations.push(...(await checkImages(client, { expectedTrees: env.expectedTrees, scratchDir: env.work })));
  } finally {
    await client.close();
  }
  const disk = await checkDisk(root);
  violations.push(...disk.violations);
  if (disk.ingests > 0) violations.push(`${disk.ingests} ingest(s) left after every image was re-pulled`);
  return { reopenMs, repullMs, ingestsLeft: disk.ingests, violations };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: String(CRASH_DEFAULTS.rounds) },
      seed: { type: 'string', default: CRASH_DEFAULTS.seed },
      'kill-window': { type: 'string', default: CRASH_DEFAULTS.killWindow },
      mix: { type: 'string', default: 'default' },
      json: { type: 'string' },
      work: { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
  });
  const rounds = positiveInteger('rounds', values.rounds);
  const killWindowMs = parseDuration(values['kill-window']);
  if (!Object.hasOwn(WORKLOAD_MIXES, values.mix)) throw new InvalidArgumentError(`unknown --mix ${values.mix} (${Object.keys(WORKLOAD_MIXES).join(', ')})`);
  const rng = new Rng(values.seed);
  const env = await openEnvironment({ label: 'crash', ...(values.work === undefined ? {} : { workDir: values.work }) });
  const root = join(env.work, 'root');
  const imagesFile = join(env.work, 'images.json');
  await writeFile(imagesFile, JSON.stringify(env.images));
  const summary: CrashSummary = { seed: values.seed, mix: values.mix, rounds, survived: 0, killedDuringGC: 0, reports: [] };
  let keep = values.keep;
  try {
    console.log(`stress:crash: ${rounds} rounds (seed ${values.seed}, ${values.mix} mix), ${env.images.length} images on ${env.registry.host}, root ${root}`);
    for (let round = 1; round <= rounds; round++) {
      const kill: KillPoint = values.mix === 'gc-heavy' ? { gcStart: rng.range(1, 4), delayMs: rng.int(21) } : { delayMs: rng.int(killWindowMs + 1) };
      const { killedAfterMs, killedDuringGC } = await runAndKill(['--root', root, '--images', imagesFile, '--seed', `${values.seed}/round-${round}`, '--mix', values.mix], kill);
      const report = { round, killedAfterMs, killedDuringGC, ...(await recoverAndCheck(env, root)) };
      summary.reports.push(report);
      if (killedDuringGC) summary.killedDuringGC++;
      const line = `round ${round}/${rounds}: killed ${killedAfterMs} ms after ready${killedDuringGC ? ' (inside a GC)' : ''}; reopened in ${Math.round(report.reopenMs)} ms, re-pulled in ${Math.round(report.repullMs)} ms`;
      if (report.violations.length > 0) {
        keep = true;
        console.log(`${line}: ${report.violations.length} invariant(s) VIOLATED (work folder kept: ${env.work})`);
        for (const v of report.violations) console.log(`  - ${v}`);
        break;
      }
      summary.survived++;
      console.log(`${line}: invariants hold`);
    }
    console.log(`\nrounds survived: ${summary.survived}/${rounds} (${summary.killedDuringGC} killed inside a GC)`);
    if (values.json !== undefined) await writeFile(values.json, `${JSON.stringify(summary, null, 1)}\n`);
    return summary.survived === rounds ? 0 : 1;
  } finally {
    await env.close({ keep });
  }
}

runMain('stress:crash', main);
