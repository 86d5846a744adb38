import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { bindMount, formatMountCommand, MAX_OVERLAY_LAYERS, mountAll, unmount } from '../../src/snapshots/mount.js';
import type { Mount } from '../../src/snapshots/snapshotter.js';
import { assertNoLeakedMounts, setupSnapshots } from './helpers.js';

/** An overlay of `count` lower layers under `dir` (`dir/<i>/fs`, top first), read-only. */
function overlayOf(dir: string, count: number): Mount {
  const lowerdirs = Array.from({ length: count }, (_, i) => join(dir, String(count - i), 'fs'));
  return { type: 'overlay', source: 'overlay', options: ['ro', 'index=off', `lowerdir=${lowerdirs.join(':')}`] };
}

describe('formatMountCommand', () => {
  test('prints a bind, and a read-only bind with the remount that makes it read-only', () => {
    assert.equal(formatMountCommand([bindMount('/snap/1/fs', { readOnly: false })], '/mnt'), 'mount -o rbind /snap/1/fs /mnt');
    assert.equal(
      formatMountCommand([bindMount('/snap/1/fs', { readOnly: true })], '/mnt'),
      'mount -o rbind /snap/1/fs /mnt\nmount -o remount,ro,bind /mnt',
    );
  });

  test('prints an overlay as mount -t overlay overlay -o <options> <target>, quoting what the shell would split', () => {
    const mount: Mount = { type: 'overlay', source: 'overlay', options: ['index=off', 'upperdir=/a b/2/fs', 'workdir=/a b/2/work', 'lowerdir=/a b/1/fs'] };
    assert.equal(
      formatMountCommand([mount], '/mnt/it\'s'),
      `mount -t overlay overlay -o 'index=off,upperdir=/a b/2/fs,workdir=/a b/2/work,lowerdir=/a b/1/fs' '/mnt/it'\\''s'`,
    );
  });

  test('options longer than a page get lowerdirs relative to their common folder, run from that folder', () => {
    const dir = `/var/lib/layerpool/snapshots/overlay${'/deep'.repeat(20)}`;
    const line = formatMountCommand([overlayOf(dir, 60)], '/mnt');
    const relative = Array.from({ length: 60 }, (_, i) => `${60 - i}/fs`).join(':');
    assert.equal(line, `(cd ${dir} && mount -t overlay overlay -o ro,index=off,lowerdir=${relative} /mnt)`);
  });

  test('more lower layers than overlayfs stacks, or options too long even when relative, fail with ResourceExhausted', () => {
    assert.throws(() => formatMountCommand([overlayOf('/s', MAX_OVERLAY_LAYERS + 1)], '/mnt'), {
      code: ErrorCode.ResourceExhausted,
      message: /501 lower layers/,
    });
    const wide = overlayOf('/s', 400).options.map((o) => o.replace(/\/fs/g, `/${'f'.repeat(20)}`));
    assert.throws(() => formatMountCommand([{ type: 'overlay', source: 'overlay', options: wide }], '/mnt'), {
      code: ErrorCode.ResourceExhausted,
      message: /even with lowerdirs relative to \/s/,
    });
  });
});

describe('mountAll and unmount', () => {
  after(assertNoLeakedMounts);

  test('a read-only bind shows the source and refuses writes with EROFS until unmounted', async (t) => {
    const env = await setupSnapshots(t, 'none');
    const source = join(env.root.path, 'source');
    mkdirSync(source);
    writeFileSync(join(source, 'f'), 'content');
    const target = await env.mount([bindMount(source, { readOnly: true })]);
    assert.equal(readFileSync(join(target, 'f'), 'utf8'), 'content');
    await assert.rejects(writeFile(join(target, 'g'), 'x'), { code: 'EROFS' });
    await env.unmount(target);
    writeFileSync(join(target, 'g'), 'x');
  });

  test('unmount where nothing is mounted fails with NotFound', async (t) => {
    const env = await setupSnapshots(t, 'none');
    await assert.rejects(unmount(env.root.path), { code: ErrorCode.NotFound });
  });

  test('a mount the kernel refuses fails with Unavailable naming the command', async (t) => {
    const env = await setupSnapshots(t, 'none');
    const target = join(env.root.path, 'target');
    mkdirSync(target);
    await assert.rejects(mountAll([overlayOf(join(env.root.path, 'missing'), 2)], target), {
      code: ErrorCode.Unavailable,
      message: /^mount -t overlay overlay -o ro,index=off,lowerdir=.* failed: /,
    });
  });
});
