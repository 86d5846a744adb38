import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, openSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { native, type PeerCredentials } from '../../src/native.js';
import { assertErrno, isRoot, tempDir } from './helpers.js';

/** The fd of an accepted unix socket (libuv's pipe handle exposes it on Linux). */
function fdOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  assert.ok(typeof fd === 'number' && fd >= 0, 'an accepted unix socket has a file descriptor');
  return fd;
}

/** A unix socket server that reports the peer credentials of its first connection. */
async function credentialsServer(t: import('node:test').TestContext): Promise<{ path: string; first: Promise<PeerCredentials> }> {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const path = join(dir, 'peer.sock');
  let server: Server | undefined;
  const first = new Promise<PeerCredentials>((resolve, reject) => {
    server = createServer((socket) => {
      try {
        resolve(native().peercred(fdOf(socket)));
      } catch (err) {
        reject(err);
      }
      socket.end();
    });
  });
  const listening = server as unknown as Server;
  await new Promise<void>((resolve) => listening.listen(path, resolve));
  chmodSync(path, 0o666);
  t.after(() => new Promise<void>((resolve) => listening.close(() => resolve())));
  return { path, first };
}

const CONNECT = `require('node:net').connect(process.argv[1]).on('data', () => {}).on('end', () => process.exit(0));`;

test('peercred reports the pid, uid and gid of the process at the other end of a unix socket', async (t) => {
  const { path, first } = await credentialsServer(t);
  const child = spawn(process.execPath, ['-e', CONNECT, path], { stdio: 'ignore' });
  const creds = await first;
  assert.deepEqual(creds, { pid: child.pid, uid: process.getuid?.(), gid: process.getgid?.() });
  await new Promise((resolve) => child.once('exit', resolve));
});

test('peercred reports another user when the peer runs as one (root starts it; others get EPERM)', async (t) => {
  const { path, first } = await credentialsServer(t);
  if (!isRoot) {
    assert.throws(() => spawn(process.execPath, ['-e', CONNECT, path], { uid: 65534, gid: 65534 }), { code: 'EPERM' });
    return;
  }
  const child = spawn(process.execPath, ['-e', CONNECT, path], { stdio: 'ignore', uid: 65534, gid: 65534 });
  const creds = await first;
  assert.deepEqual(creds, { pid: child.pid, uid: 65534, gid: 65534 });
  await new Promise((resolve) => child.once('exit', resolve));
});

test('peercred on a file that is not a socket fails with ENOTSOCK', (t) => {
  const fd = openSync(join(tempDir(t)), 'r');
  t.after(() => closeSync(fd));
  assertErrno(() => native().peercred(fd), { code: 'ENOTSOCK', errno: 88, syscall: 'getsockopt' });
});
