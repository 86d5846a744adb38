import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApplyStats } from '../../src/diff/types.js';
import { native } from '../../src/native.js';
import { tarLayer } from '../helpers/layers.js';
import { tempDir } from '../helpers/tmp.js';

const NOBODY = 65534;
const CHILD = join(import.meta.dirname, 'fixtures', 'apply-child.ts');

test('unprivileged (a real setpriv child as nobody): devices skipped and counted with one warning, the rest applied', (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const layer = join(dir, 'layer.tar');
  writeFileSync(
    layer,
    tarLayer([
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3 },
      { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0 },
      { name: 'run/fifo', type: 'fifo', mode: 0o600 },
      { name: 'owned-by-1000', content: 'x', uid: 1000, gid: 1000, xattrs: { 'user.kept': 'yes', 'trusted.needs-root': 'no' } },
      { name: 'readonly/', type: 'dir', mode: 0o555 },
      { name: 'readonly/inside', content: 'written before the directory became read-only', mode: 0o400 },
    ]),
  );
  const target = join(dir, 'target');
  mkdirSync(target);
  chownSync(target, NOBODY, NOBODY);
  const child = spawnSync(
    'setpriv',
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--import', 'tsx', CHILD, layer, target],
    { encoding: 'utf8', env: { ...process.env, LAYERPOOL_LOG: 'warn' } },
  );
  assert.equal(child.status, 0, child.stderr);
  const stats = JSON.parse(child.stdout) as ApplyStats;
  assert.equal(stats.skipped, 2);
  assert.equal(lstatSync(join(target, 'dev/null'), { throwIfNoEntry: false }), undefined);
  assert.ok(lstatSync(join(target, 'run/fifo')).isFIFO());
  const owned = statSync(join(target, 'owned-by-1000'));
  assert.deepEqual([owned.uid, owned.gid], [NOBODY, NOBODY], 'ownership is not kept unprivileged');
  assert.equal(native().lgetxattr(join(target, 'owned-by-1000'), 'user.kept')?.toString(), 'yes');
  assert.equal(native().lgetxattr(join(target, 'owned-by-1000'), 'trusted.needs-root'), null);
  assert.equal(statSync(join(target, 'readonly')).mode & 0o777, 0o555);
  assert.equal(readFileSync(join(target, 'readonly/inside'), 'utf8'), 'written before the directory became read-only');
  const warnings = child.stderr.split('\n').filter((line) => line.includes('device nodes skipped'));
  assert.equal(warnings.length, 1, child.stderr);
});
