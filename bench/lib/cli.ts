/** Command-line plumbing of the bench and stress scripts: checked values (bad input is InvalidArgument) and exit codes. */
import { InvalidArgumentError } from '../../src/errors.js';

export function positiveInteger(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`--${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

/** `60s`, `2m`, `1500ms`, or a plain number of seconds, in milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new InvalidArgumentError(`invalid duration ${JSON.stringify(text)}: use e.g. 60s, 2m or 1500ms`);
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  return Math.round(value * (unit === 'ms' ? 1 : unit === 's' ? 1000 : 60_000));
}

/**
 * Run a script's main and exit with its code: 0 success, 1 what it found (a violation, a
 * failed scenario), 2 when it could not run at all (bad arguments, no registry).
 */
export function runMain(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      // A typed error says what is wrong in its message; anything else needs its stack.
      const code = (err as { code?: unknown } | null)?.code;
      const text = typeof code === 'string' ? `${(err as Error).message} (${code})` : err instanceof Error ? (err.stack ?? err.message) : String(err);
      console.error(`${name}: ${text}`);
      process.exitCode = 2;
    },
  );
}
