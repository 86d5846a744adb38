/** Run one of the bench scripts as `npm run` would (through tsx), from the repository root. */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMeasured, type ProcessRun } from '../../bench/lib/proc.js';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export function runBenchScript(script: string, args: string[], timeoutMs = 110_000): Promise<ProcessRun> {
  return runMeasured(process.execPath, ['--import', 'tsx', join(REPO, script), ...args], { cwd: REPO, rss: false, timeoutMs });
}

/** What to show when a script failed. */
export function describeRun(run: ProcessRun): string {
  return `exit ${run.code ?? run.signal}\n--- stdout\n${run.stdout.slice(-4000)}\n--- stderr\n${run.stderr.slice(-4000)}`;
}
