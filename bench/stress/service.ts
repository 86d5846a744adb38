/**
 * Service mode for the stress run: `layerpool serve` owns a root of its own, and every
 * operation is a `layerpool` CLI process talking to it over the socket — what many
 * clients of one node agent look like. A failed command's `(LP_ERR_*)` becomes the
 * typed error again, so the workload counts and tolerates the same kinds either way.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { deserializeError, UnavailableError } from '../../src/errors.js';
import { outputTail, runMeasured } from '../lib/proc.js';
import type { NodeEntry } from '../lib/puller.js';
import { stopChild } from '../lib/registry.js';
import { WORKLOAD_DEFAULTS, type StressTarget } from './workload.js';

export const SERVICE_DEFAULTS = { readyTimeoutMs: 60_000 } as const;

export interface StressService {
  readonly root: string;
  readonly socket: string;
  readonly target: StressTarget;
  /** SIGTERM and wait: the service shuts down cleanly and releases the root. */
  stop(): Promise<void>;
}

/** Whether this CLI has `serve` (its help lists the command). */
export async function hasServeCommand(cli: NodeEntry, cwd: string): Promise<boolean> {
  const help = await runMeasured(cli.command, [...cli.args, 'help'], { cwd, rss: false });
  return /^\s+serve\b/m.test(help.stdout);
}

export async function startService(options: { cli: NodeEntry; cwd: string; dir: string }): Promise<StressService> {
  const root = join(options.dir, 'root');
  // Unix socket paths are short (108 bytes): the work folder is.
  const socket = join(options.dir, 'lp.sock');
  const global = ['--root', root, '--socket', socket];
  const child = spawn(options.cli.command, [...options.cli.args, ...global, 'serve'], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const deadline = Date.now() + SERVICE_DEFAULTS.readyTimeoutMs;
  while (!/serving/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stopChild(child);
      throw new UnavailableError(`layerpool serve did not start:\n${output.split('\n').slice(-10).join('\n')}`);
    }
    await sleep(50);
  }

  const cli = async (args: string[], timeoutMs = WORKLOAD_DEFAULTS.pullTimeoutMs): Promise<string> => {
    const run = await runMeasured(options.cli.command, [...options.cli.args, ...global, ...args], { cwd: options.cwd, rss: false, timeoutMs });
    if (run.code === 0) return run.stdout;
    const code = /\((LP_ERR_[A-Z_]+)\)\s*$/m.exec(run.stderr)?.[1];
    const message = `layerpool ${args.join(' ')}: ${outputTail(run, 3)}`;
    if (code !== undefined) throw deserializeError({ code, message });
    throw Object.assign(new Error(message), { code: `exit ${run.code ?? run.signal}` });
  };
  const target: StressTarget = {
    pull: async (ref, pullOptions) => {
      await cli(['pull', '--quiet', '--max-concurrent-downloads', String(pullOptions.maxConcurrentDownloads), ...(pullOptions.discardContent ? ['--discard-content'] : []), ref]);
    },
    deleteImage: async (name, deleteOptions) => {
      await cli(['images', 'rm', ...(deleteOptions.sync ? ['--sync'] : []), name]);
    },
    // The CLI creates leases without resources: the lease exercises expiry and deletion.
    createLease: async (expireInMs) => (await cli(['leases', 'create', '--expire', `${Math.max(1, expireInMs)}ms`])).trim(),
    deleteLease: async (id, deleteOptions) => {
      await cli(['leases', 'rm', ...(deleteOptions.sync ? ['--sync'] : []), id]);
    },
    gc: async () => {
      await cli(['gc']);
    },
  };
  return { root, socket, target, stop: () => stopChild(child, 30_000) };
}
