/**
 * Peer: containerd's own pull path, `ctr images pull`, against a PRIVATE containerd —
 * its own root, state and socket in the session folder, the overlayfs snapshotter, the
 * CRI plugin disabled — so nothing on the host is touched and every session starts
 * empty (a fresh daemon per cold run is simpler and colder than deleting images).
 *
 * ctr fetches in its own process and unpacks through the daemon, so peak RSS is the
 * daemon's VmHWM (restarted per session: this pull's alone) plus each ctr's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { FailedPreconditionError, UnavailableError } from '../../src/errors.js';
import { unmount } from '../../src/snapshots/mount.js';
import { PULL_DEFAULTS, type Puller, type PullerSession, type PullRequest, type PullSample } from '../lib/puller.js';
import { onPath, outputTail, readVmHWM, runMeasured, type ProcessRun } from '../lib/proc.js';
import { stopChild } from '../lib/registry.js';

export const CONTAINERD_DEFAULTS = { namespace: 'bench', snapshotter: 'overlayfs', readyTimeoutMs: 15_000 } as const;

function configTOML(dir: string, socket: string): string {
  return `version = 2
root = "${join(dir, 'root')}"
state = "${join(dir, 'state')}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "${socket}"

[ttrpc]
  address = "${socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "${join(dir, 'opt')}"
`;
}

/** Mount points under `dir` (a daemon killed mid-unpack may leave some), deepest first. */
function mountsUnder(dir: string): string[] {
  const prefix = `${dir}/`;
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((target) => target.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

async function waitReady(socket: string, daemon: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + CONTAINERD_DEFAULTS.readyTimeoutMs;
  while (Date.now() < deadline) {
    if (daemon.exitCode !== null || daemon.signalCode !== null) break;
    const run = await runMeasured('ctr', ['--address', socket, 'version'], { rss: false, timeoutMs: 5_000 });
    if (run.code === 0) return;
    await sleep(50);
  }
  const log = readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
  throw new UnavailableError(`private containerd did not start (socket ${socket}); log:\n${log}`);
}

export class ContainerdPuller implements Puller {
  readonly name = 'ctr';

  async unavailable(): Promise<string | undefined> {
    const missing = ['containerd', 'ctr'].filter((tool) => !onPath(tool));
    if (missing.length > 0) return `${missing.join(' and ')} not installed (bash bench/setup.sh installs Debian's containerd)`;
    if (process.getuid?.() !== 0) return 'containerd needs root';
    return undefined;
  }

  unsupported(request: PullRequest): string | undefined {
    if (request.syncFs || request.workers !== undefined) return 'ctr has no syncFs or worker-pool option';
    return undefined;
  }

  async open(dir: string): Promise<PullerSession> {
    mkdirSync(dir, { recursive: true });
    // A unix socket path must fit in 108 bytes: keep it short, in the session folder.
    const socket = join(dir, 'c.sock');
    const configPath = join(dir, 'config.toml');
    const logFile = join(dir, 'containerd.log');
    writeFileSync(configPath, configTOML(dir, socket));
    const logFd = openSync(logFile, 'a');
    const daemon = spawn('containerd', ['--config', configPath], { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    const close = async (): Promise<void> => {
      await stopChild(daemon);
      for (const target of mountsUnder(dir)) await unmount(target);
      await rm(dir, { recursive: true, force: true });
    };
    try {
      await waitReady(socket, daemon, logFile);
    } catch (err) {
      await close();
      throw err;
    }
    const ctr = (ref: string, maxDownloads: number): Promise<ProcessRun> =>
      runMeasured('ctr', [
        '--address', socket, '-n', CONTAINERD_DEFAULTS.namespace,
        'images', 'pull', '--plain-http', '--snapshotter', CONTAINERD_DEFAULTS.snapshotter,
        '--max-concurrent-downloads', String(maxDownloads),
        ref,
      ]);
    return {
      pull: async (request): Promise<PullSample> => {
        const started = performance.now();
        const runs = await Promise.all(
          Array.from({ length: request.concurrent ?? 1 }, () => ctr(request.image.ref, request.maxConcurrentDownloads ?? PULL_DEFAULTS.maxConcurrentDownloads)),
        );
        const ms = performance.now() - started;
        const failed = runs.find((run) => run.code !== 0);
        if (failed) throw new FailedPreconditionError(`ctr images pull ${request.image.ref} failed (exit ${failed.code ?? failed.signal}):\n${outputTail(failed)}`);
        const daemonKb = daemon.pid === undefined ? undefined : readVmHWM(daemon.pid);
        const ctrKb = runs.reduce((sum, run) => sum + (run.peakRssKb ?? 0), 0);
        return { ms, ...(daemonKb === undefined ? {} : { rssKb: daemonKb + ctrKb }) };
      },
      close,
    };
  }
}
