/**
 * Exit codes scripts can rely on, and the one line a failure prints:
 * `layerpool: <message> (<code>)`, with the stack only at `--log-level debug`.
 * Loaded by main.ts at start-up: keep it free of anything heavier than src/errors.ts.
 */
import { ErrorCode } from '../errors.js';

export const ExitCode = {
  Ok: 0,
  /** Anything not listed below (an internal error, a failed mount command). */
  Failure: 1,
  /** Unknown command or option, missing argument. */
  Usage: 2,
  /** The image, blob, snapshot or lease does not exist. */
  NotFound: 3,
  /** The registry refused the credentials, or the service refused this user. */
  Unauthorized: 4,
  /** Registry or service unreachable, root in use: retrying later may help. */
  Unavailable: 5,
  /** Bad reference, digest, platform or option value; a malformed or unsupported image. */
  InvalidInput: 6,
  /** Disk full, or a configured limit reached. */
  ResourceExhausted: 7,
  /** The state forbids it: exists already, a snapshot with children, a busy mount. */
  Conflict: 8,
  /** Interrupted (Ctrl-C) or cancelled. */
  Interrupted: 130,
} as const;

const BY_ERROR_CODE: Record<string, number> = {
  [ErrorCode.NotFound]: ExitCode.NotFound,
  [ErrorCode.Unauthorized]: ExitCode.Unauthorized,
  [ErrorCode.Unavailable]: ExitCode.Unavailable,
  [ErrorCode.InvalidArgument]: ExitCode.InvalidInput,
  [ErrorCode.DigestMismatch]: ExitCode.InvalidInput,
  [ErrorCode.SizeMismatch]: ExitCode.InvalidInput,
  [ErrorCode.NotImplemented]: ExitCode.InvalidInput,
  [ErrorCode.ResourceExhausted]: ExitCode.ResourceExhausted,
  ENOSPC: ExitCode.ResourceExhausted,
  EDQUOT: ExitCode.ResourceExhausted,
  [ErrorCode.AlreadyExists]: ExitCode.Conflict,
  [ErrorCode.FailedPrecondition]: ExitCode.Conflict,
  [ErrorCode.Canceled]: ExitCode.Interrupted,
};

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function exitCodeOf(err: unknown): number {
  return BY_ERROR_CODE[codeOf(err) ?? ''] ?? ExitCode.Failure;
}

/** Print the failure line (and, when debugging, the stack) on stderr; returns the exit code. */
export function reportError(err: unknown, options: { stderr: NodeJS.WritableStream; debug: boolean }): number {
  const code = codeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  options.stderr.write(`layerpool: ${message.split('\n', 1)[0]}${code ? ` (${code})` : ''}\n`);
  if (options.debug && err instanceof Error && err.stack) options.stderr.write(`${err.stack}\n`);
  return exitCodeOf(err);
}
