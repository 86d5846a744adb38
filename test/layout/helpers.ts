import { execFile, spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { Compression } from '../../bench/fixtures/index.js';

const execFileAsync = promisify(execFile);

/** Run a tool; its stdout, or an error carrying its stderr. */
export async function run(command: string, args: string[], options: { cwd?: string } = {}): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { maxBuffer: 64 << 20, ...options });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/** skopeo without a signature policy (the layouts are our own). */
export function skopeo(...args: string[]): Promise<string> {
  return run('skopeo', ['--insecure-policy', ...args]);
}

const DECOMPRESSOR: Record<Compression, string[] | undefined> = {
  gzip: ['gzip', '-dc'],
  zstd: ['zstd', '-dcq'],
  lz4: ['lz4', '-dcq'],
  none: undefined,
};

/** Decompress a layer blob with the system's own tool (gzip, zstd, lz4) into `target`. */
export async function decompressWithCLI(blob: string, compression: Compression, target: string): Promise<void> {
  const tool = DECOMPRESSOR[compression];
  if (!tool) {
    await pipeline(createReadStream(blob), createWriteStream(target));
    return;
  }
  const child = spawn(tool[0] as string, [...tool.slice(1), blob], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await pipeline(child.stdout, createWriteStream(target));
  const code = await exited;
  if (code !== 0) throw new Error(`${tool.join(' ')} ${blob} exited with ${code}`);
}

/**
 * Apply uncompressed layer tars onto `root` the way the OCI spec describes, with GNU tar
 * doing the extraction and whiteouts applied by hand: before a layer is extracted its
 * `.wh.<name>` entries delete lower paths and `.wh..wh..opq` entries empty lower
 * directories; after, the marker files themselves are removed.
 */
export async function extractLayersWithGnuTar(tars: string[], root: string): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const tarPath of tars) {
    const names = (await run('tar', ['-tf', tarPath])).split('\n').filter((n) => n !== '').map((n) => n.replace(/\/$/, ''));
    const markers = names.filter((n) => n.split('/').at(-1)?.startsWith('.wh.'));
    for (const marker of markers) {
      const slash = marker.lastIndexOf('/');
      const dir = slash < 0 ? '' : marker.slice(0, slash);
      const base = marker.slice(slash + 1);
      if (base === '.wh..wh..opq') {
        for (const child of await readdir(join(root, dir)).catch(() => [] as string[])) await rm(join(root, dir, child), { recursive: true, force: true });
      } else {
        await rm(join(root, dir, base.slice('.wh.'.length)), { recursive: true, force: true });
      }
    }
    await run('tar', ['-xf', tarPath, '-C', root, '--numeric-owner', '--same-owner', '--same-permissions', '--xattrs', '--xattrs-include=*']);
    for (const marker of markers) await rm(join(root, marker), { force: true });
  }
}
