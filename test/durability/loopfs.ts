/**
 * A small ext4 filesystem of its own for a test: a sparse image file in a temp dir,
 * attached to a loop device and mounted (as root). Disk-full tests fill it; power-cut
 * tests copy its image while it is still mounted, which captures only what the
 * filesystem had written to its block device (see power-cut.test.ts).
 *
 * Loop devices are asked for with `losetup --find`, which creates one through
 * /dev/loop-control when all are busy (other tests may hold some). A machine without
 * them (a container without /dev/loop-control) cannot run these tests meaningfully:
 * the error says so instead of skipping.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LoopFilesystem {
  /** The backing image file. */
  image: string;
  device: string;
  mountPoint: string;
  /** Bytes a root process may still write (statfs f_bavail). */
  available(): number;
  /** Unmount and detach (also done after the test); idempotent. */
  detach(): Promise<void>;
}

export interface LoopOptions {
  sizeMiB: number;
  /** Attach with `--direct-io=on`: the loop driver writes the image with O_DIRECT, past the host page cache. */
  directIO?: boolean;
}

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || (err as Error).message}`, { cause: err });
  }
}

/** Why loop filesystems cannot be made here, or undefined when they can. */
export function loopUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'loop filesystems need root';
  if (!existsSync('/dev/loop-control')) return 'there is no /dev/loop-control (a container without loop devices)';
  return undefined;
}

/**
 * Attach, mount and (after the test) tear down an ext4 filesystem of `sizeMiB`, in a
 * temp dir removed after it is unmounted (tempDir's hook would run too early).
 */
export function makeLoopExt4(t: TestContext, options: LoopOptions): LoopFilesystem {
  const reason = loopUnavailableReason();
  if (reason !== undefined) throw new Error(`this test needs a loop-mounted ext4 filesystem, but ${reason}`);
  const dir = mkdtempSync(join(tmpdir(), 'layerpool-loopfs-'));
  const image = join(dir, 'fs.img');
  const mountPoint = join(dir, 'mnt');
  run('truncate', ['-s', `${options.sizeMiB}M`, image]);
  // -m 0: no blocks reserved for root, so "full" means full for us too.
  run('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
  const { device, detach } = mountImage(t, image, mountPoint, options.directIO ?? false);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return {
    image,
    device,
    mountPoint,
    available: () => {
      const stats = statfsSync(mountPoint);
      return stats.bavail * stats.bsize;
    },
    detach,
  };
}

/** Mount an ext4 image (a new one, or a copy) on a fresh loop device; unmounted and detached after the test. */
export function mountImage(t: TestContext, image: string, mountPoint: string, directIO = false): { device: string; detach: () => Promise<void> } {
  mkdirSync(mountPoint, { recursive: true });
  const device = run('losetup', ['--find', '--show', ...(directIO ? ['--direct-io=on'] : []), image]).trim();
  try {
    run('mount', [device, mountPoint]);
  } catch (err) {
    run('losetup', ['-d', device]);
    throw err;
  }
  let attached = true;
  const detach = async (): Promise<void> => {
    if (!attached) return;
    // A worker thread or a test's open file may release the mount a moment later.
    for (let attempt = 0; ; attempt++) {
      try {
        run('umount', [mountPoint]);
        break;
      } catch (err) {
        if (attempt >= 20) throw err;
        await sleep(100);
      }
    }
    run('losetup', ['-d', device]);
    attached = false;
  };
  t.after(detach);
  return { device, detach };
}
