import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { buildCli, runOk } from './helpers.js';

before(() => buildCli());

/** What every demo run shows, whatever the user and snapshotter. */
function assertDemoOutput(stdout: string, root: string, snapshotter: string): void {
  assert.match(stdout, /Started docker-registry on 127\.0\.0\.1:\d+ and pushed the sample image as 127\.0\.0\.1:\d+\/demo\/app:v1/);
  assert.match(stdout, /Pulled 127\.0\.0\.1:\d+\/demo\/app:v1 \(sha256:[0-9a-f]{64}\): 3\/3 layers applied/);
  assert.match(stdout, /Pulled 127\.0\.0\.1:\d+\/demo\/app:v1 \(sha256:[0-9a-f]{64}\): 0\/3 layers applied, 0B fetched/, 'the second pull reuses every layer');
  assert.equal(stdout.match(/: Already exists/g)?.length, 3);
  assert.ok(stdout.includes(`one folder each under ${join(root, 'snapshots', snapshotter)}`));
  assert.equal(stdout.match(/^sha256:[0-9a-f]{64} /gm)?.length, 3, 'three committed snapshots listed');
}

describe('layerpool demo', () => {
  test('as root: pushes the sample image to a local registry, pulls it twice, prints the overlay mount command', async (t) => {
    const root = join(tempDir(t), 'root');
    const { stdout } = await runOk(t, ['--root', root, 'demo']);
    assertDemoOutput(stdout, root, 'overlay');
    assert.match(stdout, /mkdir -p \/mnt\/layerpool-demo && mount -t overlay overlay -o ro,index=off,lowerdir=\S+:\S+:\S+ \/mnt\/layerpool-demo/);
    assert.ok(existsSync(join(root, 'metadata.db')), 'the demo root stays');
  });

  test('as an unprivileged user: the native snapshotter and a bind mount command; --rm removes everything', async (t) => {
    const work = tempDir(t);
    chmodSync(work, 0o777);
    const before = readdirSync('/tmp').filter((name) => name.startsWith('layerpool-demo-'));
    const { stdout } = await runOk(t, ['--root', join(work, 'root'), 'demo', '--rm'], { uid: 65534, gid: 65534 });
    assertDemoOutput(stdout, join(work, 'root'), 'native');
    assert.match(stdout, /mount -o rbind \S+\/snapshots\/native\/\d+\/fs \/mnt\/layerpool-demo/);
    const after = readdirSync('/tmp').filter((name) => name.startsWith('layerpool-demo-'));
    assert.deepEqual(after.filter((name) => !before.includes(name)), [], 'the demo removed its work folder');
  });
});
