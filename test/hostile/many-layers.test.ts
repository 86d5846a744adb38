/**
 * A flood of tiny layers must not grow the process: each apply hashes its diffID through
 * a shared-memory ring (src/diff/hasher.ts), and a ring allocated per apply is freed only
 * when the helper thread collects it, which it rarely does — 8 MiB per layer, gigabytes
 * after a few thousand layers, before rings were reused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { applyBuffer, bind, tarLayer } from '../helpers/layers.js';
import { tempDir } from '../helpers/tmp.js';

const LAYERS = 1500;
const MiB = 1 << 20;

test(`applying ${LAYERS} tiny layers one after another keeps shared memory bounded`, async (t) => {
  const base = tempDir(t, 'layerpool-many-layers-');
  const layer = tarLayer([{ name: 'etc/', type: 'dir' }, { name: 'etc/hostname', content: 'tiny\n' }]);
  const before = process.memoryUsage().arrayBuffers;
  let peak = before;
  for (let i = 0; i < LAYERS; i++) {
    const root = join(base, String(i));
    mkdirSync(root);
    await applyBuffer(layer, bind(root));
    rmSync(root, { recursive: true });
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  }
  assert.ok(peak - before < 64 * MiB, `array buffers grew by ${Math.round((peak - before) / MiB)} MiB over ${LAYERS} applies`);
});
