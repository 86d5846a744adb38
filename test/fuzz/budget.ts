/**
 * How long the fuzz properties run. CI keeps each property to a few seconds (the whole
 * fuzz folder well under 30 s); a longer hunt sets the environment:
 *
 *   LAYERPOOL_FUZZ_RUNS=100000 LAYERPOOL_FUZZ_SECONDS=600 bash test/run.sh test/fuzz
 *   LAYERPOOL_FUZZ_SEED=<seed printed by a failure> ...   (replays that run)
 */
import type { Parameters } from 'fast-check';

export const FUZZ_DEFAULTS = { runs: 2000, seconds: 4 } as const;

function positiveFromEnv(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
}

/** fast-check parameters for one property: at most `runs` runs or `seconds` of running, whichever comes first. */
export function fuzzBudget(scale = 1): Parameters<unknown> {
  const seed = process.env['LAYERPOOL_FUZZ_SEED'];
  return {
    numRuns: Math.max(1, Math.round(positiveFromEnv('LAYERPOOL_FUZZ_RUNS', FUZZ_DEFAULTS.runs) * scale)),
    // Runs past the limit are skipped, not failed: the budget bounds CI time, it asserts nothing.
    interruptAfterTimeLimit: positiveFromEnv('LAYERPOOL_FUZZ_SECONDS', FUZZ_DEFAULTS.seconds) * 1000,
    ...(seed === undefined || seed === '' ? {} : { seed: Number(seed) }),
  };
}
