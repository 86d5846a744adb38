/**
 * `layerpool demo` (the README's first command, `npm run demo`): a whole pull on a fresh
 * machine with nothing set up.
 *
 *   build a 3-layer sample image (bench/fixtures) ─▶ push it to docker-registry on
 *   127.0.0.1:<free port> (bench/lib/registry.ts) when installed, else pull straight from
 *   the OCI layout ─▶ pull into a fresh root with progress ─▶ pull again (every layer
 *   "Already exists") ─▶ where the snapshots are, and the mount command that shows the
 *   merged tree ─▶ registry stopped
 *
 * Runs as root (overlay snapshotter) or as any user (native snapshotter).
 */
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, delimiter, join, relative } from 'node:path';
import { buildImage, type ImageSpec } from '../../bench/fixtures/index.js';
import { startRegistry, type BenchRegistry } from '../../bench/lib/registry.js';
import { OCILayout } from '../layout/layout.js';
import { Label } from '../metadata/labels.js';
import { RegistryResolver } from '../remote/resolver.js';
import { pushImage } from '../remote/push.js';
import { formatMountCommand } from '../snapshots/mount.js';
import type { LayerpoolAPI } from '../server/types.js';
import { openAPI, type GlobalOptions } from './context.js';
import { formatBytes, formatTable } from './output.js';
import { PullProgress } from './progress.js';
import { progressMode } from './commands/pull.js';

export interface DemoFlags {
  snapshotter?: string;
  /** Remove the demo root at the end (by default it stays, so the mount command works). */
  rm?: boolean;
}

export const DEMO_DEFAULTS = { repository: 'demo/app:v1' } as const;

const MB = 1_000_000;

/** About 5 MB over three layers: a base, one that deletes and replaces, a small top. */
const SAMPLE_IMAGE: ImageSpec = {
  name: 'demo',
  seed: 'layerpool-demo',
  format: 'oci',
  compression: 'gzip',
  layers: [
    { files: 300, totalBytes: 2.5 * MB, sizeDistribution: 'small', dirs: 40, symlinks: 20, hardlinks: 4, whiteouts: 0, opaqueDirs: 0 },
    { files: 60, totalBytes: 2 * MB, sizeDistribution: 'mixed', dirs: 6, symlinks: 4, hardlinks: 1, whiteouts: 10, opaqueDirs: 1 },
    { files: 10, totalBytes: 0.5 * MB, sizeDistribution: 'small', dirs: 2, symlinks: 1, hardlinks: 0, whiteouts: 2, opaqueDirs: 0 },
  ],
};

function findOnPath(binary: string): string | undefined {
  for (const dir of `${process.env['PATH'] ?? ''}${delimiter}/usr/bin`.split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return join(dir, binary);
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/** How this process was started, for the command lines the demo prints. */
function invocation(): string {
  const script = process.argv[1] ?? 'layerpool';
  return basename(script) === 'layerpool' ? 'layerpool' : `node ${relative(process.cwd(), script) || script}`;
}

async function pullWithProgress(api: LayerpoolAPI, globals: GlobalOptions, ref: string, snapshotter: string | undefined): Promise<void> {
  const progress = new PullProgress({ out: globals.stdout, mode: progressMode({ ...globals, json: false }), ref });
  try {
    progress.finish(await api.pull({ ref, ...(snapshotter === undefined ? {} : { snapshotter }) }, { progress: (event) => progress.event(event) }));
  } catch (err) {
    progress.stop();
    throw err;
  }
}

export async function demoCommand(globals: GlobalOptions, flags: DemoFlags): Promise<void> {
  const say = (line = '') => void globals.stdout.write(`${line}\n`);
  const work = await mkdtemp(join(tmpdir(), 'layerpool-demo-'));
  const root = globals.root ?? join(work, 'root');
  let registry: BenchRegistry | undefined;
  try {
    say(`Building a sample image (3 layers, about 5 MB) in ${work}`);
    const image = await buildImage(SAMPLE_IMAGE, { dir: join(work, 'fixtures') });
    let ref = image.reference;
    const registryBinary = findOnPath('docker-registry');
    if (registryBinary) {
      registry = await startRegistry({ dir: join(work, 'registry'), binary: registryBinary });
      ref = `${registry.host}/${DEMO_DEFAULTS.repository}`;
      const layout = await OCILayout.open(image.layoutDir);
      const resolver = new RegistryResolver();
      try {
        await pushImage({ fetcher: layout, descriptor: image.descriptor, reference: ref, resolver });
      } finally {
        await resolver.close();
      }
      say(`Started docker-registry on ${registry.host} and pushed the sample image as ${ref}`);
    } else {
      say('docker-registry is not installed: pulling straight from the OCI image layout');
    }

    // The demo has its own root: never the running service's.
    const api = await openAPI({ ...globals, root, service: false });
    try {
      const info = await api.info();
      const snapshotter = flags.snapshotter ?? info.defaultSnapshotter;
      const cli = `${invocation()} --root ${root}`;
      say(`\n${cli} pull ${ref}`);
      await pullWithProgress(api, globals, ref, snapshotter);
      say(`\nPulling again: every layer is a committed snapshot already`);
      await pullWithProgress(api, globals, ref, snapshotter);

      const details = await api.inspectImage({ name: ref, snapshotter });
      const usage = await api.snapshotUsage({ snapshotter });
      say(`\nSnapshots (${snapshotter} snapshotter, one folder each under ${join(root, 'snapshots', snapshotter)}):`);
      globals.stdout.write(formatTable(['CHAIN ID', 'SIZE', 'FILES'], usage.map((u) => [u.key, formatBytes(u.size), String(u.inodes)])));
      const mounts = await api.viewSnapshot({ snapshotter, key: 'demo-view', parent: details.chainID, labels: { [Label.gcRoot]: new Date().toISOString() } });
      say(`\nThe merged root filesystem, as a read-only view (as root):`);
      say(`  mkdir -p /mnt/layerpool-demo && ${formatMountCommand(mounts, '/mnt/layerpool-demo')}`);
      say(`Or with layerpool: ${cli} mount ${ref} /mnt/layerpool-demo`);
      say(`Export it: ${cli} export ${ref} /tmp/demo-rootfs.tar`);
    } finally {
      await api.close();
    }
    if (flags.rm) say(`\nRemoving ${work}`);
    else say(`\nThe demo root stays in ${root}; remove ${globals.root === undefined ? work : root} when done (unmount first).`);
  } finally {
    await registry?.stop();
    // The work folder holds the sample image and the registry, and the root unless --root named one.
    if (flags.rm || globals.root !== undefined) await rm(work, { recursive: true, force: true });
    else for (const folder of ['registry', 'fixtures']) await rm(join(work, folder), { recursive: true, force: true });
  }
}
