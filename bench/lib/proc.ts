/**
 * Child processes timed from the outside: wall time around spawn → exit, and peak RSS.
 * Peak RSS comes from GNU time (`%M`, kilobytes, the kernel's ru_maxrss of the child)
 * when /usr/bin/time is there, else from polling /proc/<pid>/status VmHWM (which misses
 * whatever happens in the last poll interval).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { performance } from 'node:perf_hooks';

export const PROC_DEFAULTS = { gnuTime: '/usr/bin/time', pollMs: 20, timeoutMs: 30 * 60_000 } as const;

export interface ProcessRun {
  wallMs: number;
  /** Peak resident set of the process, KiB; undefined when it could not be read. */
  peakRssKb: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Killed (SIGKILL) after this long. */
  timeoutMs?: number;
  /** Measure peak RSS (wraps the command in GNU time, or polls /proc). Default true. */
  rss?: boolean;
}

/** VmHWM of a live process in KiB (its peak RSS so far), or undefined once it is gone. */
export function readVmHWM(pid: number | 'self'): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Run a command to its end; never throws for a non-zero exit (the caller judges `code`). */
export async function runMeasured(command: string, args: readonly string[], options: RunOptions = {}): Promise<ProcessRun> {
  const rss = options.rss ?? true;
  const useTime = rss && existsSync(PROC_DEFAULTS.gnuTime);
  const scratch = useTime ? mkdtempSync(join(tmpdir(), 'layerpool-bench-time-')) : undefined;
  const timeFile = scratch === undefined ? undefined : join(scratch, 'rss');
  const [file, argv] = timeFile === undefined ? [command, [...args]] : [PROC_DEFAULTS.gnuTime, ['-f', '%M', '-o', timeFile, command, ...args]];
  try {
    const started = performance.now();
    const child = spawn(file, argv, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    let polled: number | undefined;
    const poll = rss && !useTime && child.pid !== undefined
      ? setInterval(() => {
          const now = readVmHWM(child.pid as number);
          if (now !== undefined) polled = Math.max(polled ?? 0, now);
        }, PROC_DEFAULTS.pollMs)
      : undefined;
    const timeout = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? PROC_DEFAULTS.timeoutMs);
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve({ code: c, signal: s }));
    });
    const wallMs = performance.now() - started;
    clearTimeout(timeout);
    if (poll) clearInterval(poll);
    let peakRssKb = polled;
    if (timeFile !== undefined && existsSync(timeFile)) {
      // GNU time writes "Command exited with non-zero status N" before the value on failure.
      const value = Number(readFileSync(timeFile, 'utf8').trim().split('\n').at(-1));
      peakRssKb = Number.isFinite(value) && value > 0 ? value : undefined;
    }
    return { wallMs, peakRssKb, code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
  } finally {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

/** True when `tool` is an executable in PATH (or an absolute path to one). */
export function onPath(tool: string): boolean {
  const dirs = tool.includes('/') ? [''] : (process.env['PATH'] ?? '/usr/bin:/bin').split(delimiter);
  return dirs.some((dir) => {
    try {
      accessSync(dir === '' ? tool : join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The last lines of a failed run's output, for an error message. */
export function outputTail(run: Pick<ProcessRun, 'stdout' | 'stderr'>, lines = 8): string {
  return `${run.stderr}\n${run.stdout}`.trim().split('\n').slice(-lines).join('\n');
}
