/**
 * Peer: the two-tool path many build systems use — `skopeo copy` from the registry into
 * an OCI layout, then `umoci unpack` of the layout into a runtime bundle (a rootfs
 * folder plus an mtree manifest). Both steps are timed together; peak RSS is the larger
 * of the two processes'. No concurrency: each run is one copy and one unpack.
 */
import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError } from '../../src/errors.js';
import type { Puller, PullerSession, PullRequest } from '../lib/puller.js';
import { onPath, outputTail, runMeasured, type ProcessRun } from '../lib/proc.js';

export class SkopeoUmociPuller implements Puller {
  readonly name = 'skopeo+umoci';

  async unavailable(): Promise<string | undefined> {
    const missing = ['skopeo', 'umoci'].filter((tool) => !onPath(tool));
    return missing.length > 0 ? `${missing.join(' and ')} not installed (bash bench/setup.sh installs them)` : undefined;
  }

  unsupported(request: PullRequest): string | undefined {
    if ((request.concurrent ?? 1) > 1) return 'skopeo + umoci share nothing between concurrent copies';
    if (request.syncFs || request.workers !== undefined) return 'skopeo + umoci have no syncFs or worker-pool option';
    if (request.warm) return 'umoci keeps no unpacked layers: a re-pull unpacks everything again';
    if (request.image.built.manifests.some((m) => m.layers.some((l) => l.compression === 'zstd' || l.compression === 'lz4'))) {
      return 'umoci 0.4 unpacks only gzip and uncompressed layers';
    }
    return undefined;
  }

  async open(dir: string): Promise<PullerSession> {
    mkdirSync(dir, { recursive: true });
    const check = (run: ProcessRun, what: string): void => {
      if (run.code !== 0) throw new FailedPreconditionError(`${what} failed (exit ${run.code ?? run.signal}):\n${outputTail(run)}`);
    };
    return {
      pull: async (request) => {
        const layout = join(dir, 'layout');
        const bundle = join(dir, 'bundle');
        const copy = await runMeasured('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${request.image.ref}`, `oci:${layout}:latest`]);
        check(copy, `skopeo copy ${request.image.ref}`);
        const unpack = await runMeasured('umoci', ['unpack', ...(process.getuid?.() === 0 ? [] : ['--rootless']), '--image', `${layout}:latest`, bundle]);
        check(unpack, `umoci unpack ${layout}:latest`);
        const rss = Math.max(copy.peakRssKb ?? 0, unpack.peakRssKb ?? 0);
        return { ms: copy.wallMs + unpack.wallMs, ...(rss > 0 ? { rssKb: rss } : {}) };
      },
      close: () => rm(dir, { recursive: true, force: true }),
    };
  }
}
