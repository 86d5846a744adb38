/**
 * The two snapshotters must produce the same root filesystem from the same layers: the
 * overlay merge of a chain (layers with whiteouts and opaque directories) against the
 * native chain of full copies (layers applied by deleting).
 */
import assert from 'node:assert/strict';
import { chmodSync, linkSync, lutimesSync, mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Snapshotter } from '../../src/snapshots/snapshotter.js';
import { NativeSnapshotter } from '../../src/snapshots/native.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay.js';
import { assertTreesEqual, readTree } from '../helpers/tree.js';
import { assertNoLeakedMounts, layerOf, nativeWhiteouts, overlayWhiteouts, setupSnapshots, writeFiles, type LayerWhiteouts } from './helpers.js';

/** One layer: files to write, then deletions and opaque directories, then links. */
interface LayerSpec {
  files?: Record<string, string>;
  deletes?: string[];
  opaque?: string[];
  hardlinks?: Record<string, string>;
  symlinks?: Record<string, string>;
  modes?: Record<string, number>;
}

const LAYERS: LayerSpec[] = [
  {
    files: { 'etc/passwd': 'root:x:0:0\n', 'etc/motd': 'hello', 'usr/bin/tool': 'v1', 'var/cache/a': 'a', 'var/cache/b': 'b' },
    hardlinks: { 'usr/bin/tool-alias': 'usr/bin/tool', 'etc/passwd-': 'etc/passwd' },
    symlinks: { 'bin': 'usr/bin' },
    modes: { 'usr/bin/tool': 0o755, 'etc/passwd': 0o644 },
  },
  {
    files: { 'usr/bin/tool': 'v2', 'etc/hostname': 'box' },
    deletes: ['etc/motd'],
    opaque: ['var/cache'],
    modes: { 'usr/bin/tool': 0o750 },
  },
  {
    files: { 'var/cache/c': 'c', 'home/user/.rc': 'rc' },
    deletes: ['usr/bin/tool-alias'],
    symlinks: { 'etc/localtime': '/usr/share/zoneinfo/UTC' },
  },
];

function applySpec(layer: string, spec: LayerSpec, whiteouts: LayerWhiteouts): void {
  for (const path of spec.deletes ?? []) whiteouts.whiteout(layer, path);
  for (const path of spec.opaque ?? []) whiteouts.opaque(layer, path);
  writeFiles(layer, spec.files ?? {});
  for (const [path, target] of Object.entries(spec.hardlinks ?? {})) linkSync(join(layer, target), join(layer, path));
  for (const [path, target] of Object.entries(spec.symlinks ?? {})) {
    mkdirSync(dirname(join(layer, path)), { recursive: true });
    symlinkSync(target, join(layer, path));
  }
  for (const [path, mode] of Object.entries(spec.modes ?? {})) chmodSync(join(layer, path), mode);
  // Fixed times, as a tar would set them: the two chains are written at different moments.
  for (const path of [...Object.keys(spec.files ?? {}), ...Object.keys(spec.symlinks ?? {})]) {
    lutimesSync(join(layer, path), 1_700_000_000, 1_700_000_000);
  }
}

async function buildChain(sn: Snapshotter, whiteouts: LayerWhiteouts): Promise<string> {
  let parent: string | undefined;
  for (const [i, spec] of LAYERS.entries()) {
    applySpec(layerOf(await sn.prepare(`extract-${i}`, parent)), spec, whiteouts);
    await sn.commit(`layer-${i}`, `extract-${i}`);
    parent = `layer-${i}`;
  }
  return parent as string;
}

describe('overlay and native snapshotters', () => {
  after(assertNoLeakedMounts);

  test('the same layers give the same root filesystem through an overlay view and a native view', async (t) => {
    const env = await setupSnapshots(t, 'overlay');
    const overlay = await OverlaySnapshotter.open({ root: env.root, namespace: 'default' });
    const native = await NativeSnapshotter.open({ root: env.root, namespace: 'default' });
    const merged = await env.mount(await overlay.view('rootfs', await buildChain(overlay, overlayWhiteouts())));
    const copied = await env.mount(await native.view('rootfs', await buildChain(native, nativeWhiteouts)));

    const tree = readTree(merged);
    assert.deepEqual(
      [...tree.keys()].filter((path) => tree.get(path)?.type !== 'dir'),
      ['bin', 'etc/hostname', 'etc/localtime', 'etc/passwd', 'etc/passwd-', 'home/user/.rc', 'usr/bin/tool', 'var/cache/c'],
    );
    assert.equal(tree.get('etc/passwd-')?.hardlinkOf, 'etc/passwd');
    assert.equal(tree.get('usr/bin/tool')?.mode, 0o750);
    assertTreesEqual(tree, readTree(copied));
  });
});
