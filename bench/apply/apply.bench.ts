/**
 * Layer apply against GNU tar: the same layer (written by GNU tar), applied by
 * applyLayer in this process (no pool) and extracted by `tar -x` with ownership, modes,
 * mtimes and xattrs, each into an empty directory, runs alternating. Reports medians.
 *
 *   node --import tsx bench/apply/apply.bench.ts [--runs 5] [--dir /var/tmp/layerpool-bench-apply] [--big-mib 64] [--out DIR]
 *
 * Layers (deterministic, built once and cached in --dir):
 * - many-small: 30,000 files of 0-10 KiB (~150 MB) in 300 directories, 1% with a user xattr;
 * - few-big: 4 files of --big-mib MiB. The issue asks for 4 x 256 MiB; the default is
 *   64 MiB per file so that a full run (4 layers x 2 tools x 5 runs) stays under 2 minutes
 *   on 2 cores: per-byte costs are the same at either size.
 * each as .tar and as .tar.gz (gzip -6, like Docker's and Go's default).
 *
 * Targets (the issue): gzip layers <= 1.0x `tar -xzf`, uncompressed <= 1.3x `tar -xf`.
 *
 * Where the output goes: by default a fresh ext4 filesystem on a loop device backed by
 * /dev/shm (needs root), mounted for the run and removed after it. On the CI VMs the root
 * ext4 gets slower with every extract-and-delete cycle of 30,000 files (GNU tar alone:
 * 5 s, 8.7 s, 15 s for the same extraction, all kernel time), which turns any comparison
 * into noise; a RAM-backed ext4 keeps ext4's code paths (journal, xattrs, inode
 * allocation) and gives the same times run after run. `--out DIR` benches on a real disk.
 * Outputs are deleted and synced between runs, outside the timings.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { applyLayer } from '../../src/diff/apply.js';
import { MediaType } from '../../src/images/mediatypes.js';
import { native } from '../../src/native.js';
import { ContentGenerator } from '../fixtures/content.js';
import { Rng } from '../fixtures/prng.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    dir: { type: 'string', default: '/var/tmp/layerpool-bench-apply' },
    'big-mib': { type: 'string', default: '64' },
    out: { type: 'string' },
  },
});
const runs = Number(values.runs);
const workDir = values.dir as string;
const bigMiB = Number(values['big-mib']);
const MTIME = 1_704_067_200;

interface Layer {
  name: string;
  files: number;
  tarPath: string;
  tarBytes: number;
}

function writeFile(path: string, content: ContentGenerator, size: number): void {
  const chunks = [...content.file(size)];
  writeFileSync(path, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
}

/** Write the source tree, tar it with GNU tar (PAX, xattrs), gzip it; cached by name. */
function buildLayer(name: string, populate: (src: string) => number): Layer {
  // Bump the suffix when what a layer holds changes, so stale caches are not reused.
  const tarPath = join(workDir, `${name}-v2.tar`);
  const countPath = join(workDir, `${name}-v2.files`);
  if (!existsSync(`${tarPath}.gz`)) {
    const src = join(workDir, `${name}.src`);
    rmSync(src, { recursive: true, force: true });
    mkdirSync(src, { recursive: true });
    const files = populate(src);
    // PAX records only where needed (xattrs), as Go-written layers have: GNU tar would add
    // atime and ctime to every entry, which also makes the bytes differ from run to run.
    const pax = ['--format=pax', '--pax-option=delete=atime,delete=ctime', '--xattrs', '--xattrs-include=*'];
    execFileSync('tar', [...pax, '--numeric-owner', '--sort=name', `--mtime=@${MTIME}`, '-C', src, '-cf', `${tarPath}.tmp`, '.']);
    execFileSync('bash', ['-c', `gzip -6 -n -c '${tarPath}.tmp' > '${tarPath}.gz.tmp'`]);
    rmSync(src, { recursive: true, force: true });
    renameSync(`${tarPath}.tmp`, tarPath);
    writeFileSync(countPath, String(files));
    renameSync(`${tarPath}.gz.tmp`, `${tarPath}.gz`);
  }
  const files = Number(readFileSync(countPath, 'utf8'));
  return { name, files, tarPath, tarBytes: statSync(tarPath).size };
}

function manySmall(src: string): number {
  const rng = new Rng('bench/apply/many-small');
  const content = new ContentGenerator('bench/apply/many-small/content');
  const dirs: string[] = [];
  for (let a = 0; a < 30; a++) for (let b = 0; b < 10; b++) dirs.push(`d${a}/s${b}`);
  for (const dir of dirs) mkdirSync(join(src, dir), { recursive: true });
  const count = 30_000;
  for (let i = 0; i < count; i++) {
    const path = join(src, dirs[i % dirs.length] as string, `file-${i}.dat`);
    writeFile(path, content, rng.int(10 * 1024 + 1));
    if (i % 100 === 0) native().lsetxattr(path, 'user.bench', Buffer.from(`file ${i}`));
  }
  return count;
}

function fewBig(src: string): number {
  const content = new ContentGenerator('bench/apply/few-big/content');
  for (let i = 0; i < 4; i++) writeFile(join(src, `big-${i}.bin`), content, bigMiB << 20);
  return 4;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

let outRoot = '';

function freshDir(): string {
  return mkdtempSync(join(outRoot, 'out-'));
}

/** A fresh ext4 in RAM, mounted; returns the unmount-and-remove function. */
function mountScratchExt4(sizeBytes: number): () => void {
  const image = `/dev/shm/layerpool-bench-apply-${process.pid}.img`;
  const mountPoint = mkdtempSync('/tmp/layerpool-bench-apply-mnt-');
  execFileSync('truncate', ['-s', String(sizeBytes), image]);
  execFileSync('mkfs.ext4', ['-q', '-F', image]);
  execFileSync('mount', ['-o', 'loop', image, mountPoint]);
  outRoot = mountPoint;
  return () => {
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
    rmSync(image, { force: true });
  };
}

function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  execFileSync('sync');
}

async function ours(layer: Layer, gzip: boolean): Promise<number> {
  const dir = freshDir();
  const started = performance.now();
  await applyLayer(createReadStream(gzip ? `${layer.tarPath}.gz` : layer.tarPath, { highWaterMark: 1 << 20 }), [{ type: 'bind', source: dir, options: ['rbind'] }], {
    mediaType: gzip ? MediaType.OCILayerGzip : MediaType.OCILayer,
  });
  const elapsed = performance.now() - started;
  cleanup(dir);
  return elapsed;
}

function gnuTar(layer: Layer, gzip: boolean): number {
  const dir = freshDir();
  const args = ['-x', gzip ? '-z' : '', '-p', '--same-owner', '--numeric-owner', '--xattrs', '--xattrs-include=*', '-f', gzip ? `${layer.tarPath}.gz` : layer.tarPath, '-C', dir].filter((a) => a !== '');
  const started = performance.now();
  const result = spawnSync('tar', args, { stdio: 'inherit' });
  const elapsed = performance.now() - started;
  if (result.status !== 0) throw new Error(`tar ${args.join(' ')} failed`);
  cleanup(dir);
  return elapsed;
}

mkdirSync(workDir, { recursive: true });
const buildStarted = performance.now();
const layers = [buildLayer('many-small', manySmall), buildLayer(`few-big-${bigMiB}m`, fewBig)];
console.log(`layers ready in ${((performance.now() - buildStarted) / 1000).toFixed(1)} s (cached in ${workDir})`);

let unmount: (() => void) | undefined;
if (values.out) {
  outRoot = values.out;
  mkdirSync(outRoot, { recursive: true });
} else {
  unmount = mountScratchExt4(Math.max(...layers.map((l) => l.tarBytes)) * 3 + (512 << 20));
}
console.log(`output on ${values.out ? outRoot : 'a fresh ext4 on /dev/shm (loop)'}`);

const rows: string[][] = [];
const targets = { tar: 1.3, gzip: 1.0 };
try {
for (const layer of layers) {
  for (const gzip of [false, true]) {
    const oursTimes: number[] = [];
    const tarTimes: number[] = [];
    for (let run = 0; run < runs; run++) {
      // Alternate who goes first, so neither always meets the other's writeback.
      if (run % 2 === 0) {
        oursTimes.push(await ours(layer, gzip));
        tarTimes.push(gnuTar(layer, gzip));
      } else {
        tarTimes.push(gnuTar(layer, gzip));
        oursTimes.push(await ours(layer, gzip));
      }
    }
    const o = median(oursTimes);
    const g = median(tarTimes);
    const mb = layer.tarBytes / 1e6;
    const ratio = o / g;
    const target = gzip ? targets.gzip : targets.tar;
    rows.push([
      layer.name,
      gzip ? 'tar.gz' : 'tar',
      `${(o / 1000).toFixed(3)} s`,
      `${(g / 1000).toFixed(3)} s`,
      `${Math.round(layer.files / (o / 1000))} / ${Math.round(layer.files / (g / 1000))}`,
      `${(mb / (o / 1000)).toFixed(0)} / ${(mb / (g / 1000)).toFixed(0)}`,
      `${ratio.toFixed(2)}x`,
      `<= ${target.toFixed(1)}x ${ratio <= target ? 'met' : 'MISSED'}`,
    ]);
  }
}
} finally {
  unmount?.();
}

const header = ['layer', 'format', 'ours (median)', 'GNU tar (median)', 'files/s ours / tar', 'MB/s ours / tar', 'ours/tar', 'target'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
console.log(`\n${runs} runs each, MB = uncompressed tar bytes\n`);
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of rows) console.log(line(row));
