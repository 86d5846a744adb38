import assert from 'node:assert/strict';
import { chmodSync, constants, linkSync, lchownSync, lutimesSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { native } from '../../src/native.js';
import { NativeSnapshotter } from '../../src/snapshots/native.js';
import { assertTreesEqual, readTree } from '../helpers/tree.js';
import { assertNoLeakedMounts, commitLayer, layerOf, nativeWhiteouts, setupSnapshots, snapshotId, writeFiles } from './helpers.js';
import { runSnapshotterTestsuite } from './testsuite.js';

runSnapshotterTestsuite('native', {
  open: (root, namespace) => NativeSnapshotter.open({ root, namespace }),
  ...nativeWhiteouts,
});

/** A version 2 file capability (cap_net_bind_service, permitted + effective), as setcap writes it. */
const CAP_NET_BIND_SERVICE = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

describe('NativeSnapshotter', () => {
  after(assertNoLeakedMounts);

  async function setup(t: TestContext) {
    const env = await setupSnapshots(t, 'native');
    const sn = await NativeSnapshotter.open({ root: env.root, namespace: 'default' });
    const fs = (key: string) => join(env.dir, String(snapshotId(env.root, 'native', key)), 'fs');
    return { ...env, sn, fs };
  }

  test('an active snapshot is a read-write bind of its own copy; a view binds its parent read-only', async (t) => {
    const { sn, fs } = await setup(t);
    await commitLayer(sn, 'base', undefined, { f: 'x' });
    assert.deepEqual(await sn.prepare('a', 'base'), [{ type: 'bind', source: fs('a'), options: ['rbind', 'rw'] }]);
    assert.deepEqual(await sn.view('v', 'base'), [{ type: 'bind', source: fs('base'), options: ['rbind', 'ro'] }]);
    assert.deepEqual(await sn.view('v0', undefined), [{ type: 'bind', source: fs('v0'), options: ['rbind', 'ro'] }]);
    // The view copied nothing: its own tree stays empty.
    assert.deepEqual(readdirSync(fs('v')), []);
  });

  test('prepare on a parent copies its tree with modes, owners, mtimes, xattrs, links, devices and FIFOs', async (t) => {
    const { sn, fs } = await setup(t);
    const layer = layerOf(await sn.prepare('extract-base', undefined));
    writeFiles(layer, { 'etc/passwd': 'root:x:0:0\n', 'bin/ping': 'elf', 'home/user/.profile': 'export A=1\n', 'big': 'z'.repeat(100_000) });
    chmodSync(join(layer, 'etc/passwd'), 0o644);
    chmodSync(join(layer, 'bin/ping'), 0o4755);
    chmodSync(join(layer, 'home/user'), 0o700);
    lchownSync(join(layer, 'home/user'), 1000, 1000);
    lchownSync(join(layer, 'home/user/.profile'), 1000, 1000);
    native().lsetxattr(join(layer, 'bin/ping'), 'security.capability', CAP_NET_BIND_SERVICE);
    native().lsetxattr(join(layer, 'etc/passwd'), 'user.origin', Buffer.from('layer 1'));
    linkSync(join(layer, 'bin/ping'), join(layer, 'bin/ping6'));
    symlinkSync('../etc/passwd', join(layer, 'bin/passwd-link'));
    lchownSync(join(layer, 'bin/passwd-link'), 7, 7);
    native().mknod(join(layer, 'null'), constants.S_IFCHR | 0o666, native().makedev(1, 3));
    native().mknod(join(layer, 'loop0'), constants.S_IFBLK | 0o660, native().makedev(7, 0));
    native().mknod(join(layer, 'fifo'), constants.S_IFIFO | 0o600, 0);
    lutimesSync(join(layer, 'etc/passwd'), 1_000_000_000.123, 1_000_000_000.123456);
    lutimesSync(join(layer, 'bin/passwd-link'), 1_200_000_000, 1_200_000_000);
    await sn.commit('base', 'extract-base');

    await sn.prepare('copy', 'base');
    const original = readTree(fs('base'));
    assert.equal(original.get('bin/ping6')?.hardlinkOf, 'bin/ping');
    assert.equal(original.get('null')?.type, 'char');
    assertTreesEqual(readTree(fs('copy')), original);
  });

  test('a prepare whose copy fails leaves neither a row nor a folder', async (t) => {
    const env = await setup(t);
    const { sn, fs } = env;
    await commitLayer(sn, 'base', undefined, { f: 'x' });
    const folders = readdirSync(env.dir);
    rmSync(fs('base'), { recursive: true });
    await assert.rejects(sn.prepare('a', 'base'), { code: ErrorCode.Unavailable, message: /copying snapshot tree/ });
    await assert.rejects(sn.stat('a'), { code: ErrorCode.NotFound });
    assert.deepEqual(readdirSync(env.dir), folders);
  });

  test('a copy is independent of its parent: writes to it leave the parent unchanged', async (t) => {
    const env = await setup(t);
    const { sn, fs } = env;
    await commitLayer(sn, 'base', undefined, { 'etc/hosts': 'a' });
    const before = readTree(fs('base'));
    const child = await env.mount(await sn.prepare('a', 'base'));
    writeFiles(child, { 'etc/hosts': 'b', 'etc/new': 'c' });
    rmSync(join(child, 'etc/hosts'));
    assertTreesEqual(readTree(fs('base')), before);
  });
});
