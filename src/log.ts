/**
 * The one pino logger. Quiet by default (warnings and errors only, on stderr) so a
 * library user sees nothing unless something is wrong; `LAYERPOOL_LOG=debug` (or
 * info/trace/silent) turns it up or down. Components log through `logger(name)`.
 */
import { pino, type Logger } from 'pino';
import { InvalidArgumentError } from './errors.js';

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function levelFromEnv(): string {
  const level = (process.env['LAYERPOOL_LOG'] ?? '').trim().toLowerCase();
  return LEVELS.has(level) ? level : 'warn';
}

const root: Logger = pino(
  {
    name: 'layerpool',
    level: levelFromEnv(),
    // Credentials must never reach a log line, whatever a caller passes in.
    redact: { paths: ['password', 'token', 'auth', 'authorization', '*.password', '*.token', '*.authorization'], censor: '[redacted]' },
  },
  pino.destination({ fd: 2, sync: true }),
);

export type { Logger };

/** A child logger for one component (`content`, `metadata`, `remote`, ...). */
export function logger(component: string): Logger {
  return root.child({ component });
}

/** Change the level at run time (the CLI's --log-level). */
export function setLogLevel(level: string): void {
  if (!LEVELS.has(level)) throw new InvalidArgumentError(`unknown log level ${JSON.stringify(level)}: one of ${[...LEVELS].join(', ')}`);
  root.level = level;
}
