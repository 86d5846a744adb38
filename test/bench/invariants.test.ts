import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '../../src/client.js';
import { digestOf } from '../../src/digest.js';
import { checkDisk } from '../../bench/stress/invariants.js';
import { tempDir } from '../helpers/tmp.js';

test('the disk invariants hold on a fresh root and catch a stray blob, staging folder, removal and ingest', async (t) => {
  const root = join(tempDir(t), 'root');
  await (await Client.open({ root, gc: false })).close();
  assert.deepEqual((await checkDisk(root)).violations, []);

  const stray = digestOf('not recorded anywhere');
  writeFileSync(join(root, 'content', 'blobs', 'sha256', stray.slice('sha256:'.length)), 'not recorded anywhere');
  mkdirSync(join(root, 'snapshots', 'overlay', 'new-1234'), { recursive: true });
  mkdirSync(join(root, 'snapshots', 'overlay', '7-removing'));
  mkdirSync(join(root, 'snapshots', 'overlay', '8'));
  mkdirSync(join(root, 'content', 'ingest', 'abc'));

  const report = await checkDisk(root);
  assert.deepEqual(report.violations.sort(), [
    `blob file ${stray} has no content row`,
    'ingest folder abc has no row',
    'snapshots/overlay/7-removing: a removal left behind',
    'snapshots/overlay/8: a snapshot folder without a row',
    'snapshots/overlay/new-1234: a staging folder left behind',
  ]);
});
