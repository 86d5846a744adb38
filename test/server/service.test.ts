import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import type { PullSummary, ServiceInfo, SnapshotSummary } from '../../src/server/types.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { tempDir } from '../helpers/tmp.js';
import { buildCli, publishFixture, recordedModules, recordModulesArgs, runCli, runJSON, runOk, startCli, startStalledPull } from '../cli/helpers.js';
import { startDelayProxy, startService } from './helpers.js';

before(() => buildCli());

/** One raw request to the service socket: status and parsed JSON body. */
function call(socket: string, method: string, path: string, options: { body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request({ socketPath: socket, method, path, headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...options.headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const extractKeys = (snapshots: SnapshotSummary[]) => snapshots.map((s) => s.key).filter((key) => key.startsWith('extract-'));

describe('layerpool serve', () => {
  test('listens on a 0660 socket in a 0755 folder it creates, and clients find it', async (t) => {
    const service = await startService(t);
    assert.equal(statSync(dirname(service.socket)).mode & 0o777, 0o755);
    assert.ok(lstatSync(service.socket).isSocket());
    assert.equal(lstatSync(service.socket).mode & 0o777, 0o660);
    const { service: info } = await runJSON<{ service: ServiceInfo }>(t, ['version'], service.client);
    assert.deepEqual([info.pid, info.root, info.namespace, info.mode], [service.process.pid, service.root, 'default', 'service']);
  });

  test('two CLI pulls of one image through the service both succeed and fetch each blob once', async (t) => {
    const [published] = await publishFixture(t);
    const counting = await startFaultProxy(t, published!.registry);
    const slow = await startDelayProxy(t, counting, { path: /\/blobs\//, delayMs: 300 });
    const service = await startService(t);
    const ref = `${slow.host}/cli/tiny:v1`;
    const pulls = [0, 1].map(() => startCli(t, ['--json', '--quiet', 'pull', ref], service.client));
    const results = await Promise.all(pulls.map((p) => p.result));
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    const summaries = results.map((r) => JSON.parse(r.stdout) as PullSummary);
    assert.deepEqual(summaries.map((s) => s.name), [ref, ref]);
    assert.equal(summaries[0]!.layersApplied + summaries[1]!.layersApplied, 2, 'each layer applied once between them');
    const manifest = published!.image.manifests[0]!;
    for (const digest of [manifest.config.digest, ...manifest.layers.map((l) => l.descriptor.digest)]) {
      assert.equal(counting.count(`/v2/cli/tiny/blobs/${digest}`, 'GET'), 1, `${digest} fetched once`);
    }
  });

  test('a listing through the service equals the embedded listing of the same root', async (t) => {
    const [published] = await publishFixture(t);
    const service = await startService(t);
    await runOk(t, ['pull', published!.ref], service.client);
    await runOk(t, ['leases', 'create', '--id', 'kept', '--expire', '0'], service.client);
    const configDigest = published!.image.manifests[0]!.config.digest;
    const listings = [['images', 'ls'], ['content', 'ls'], ['snapshots', 'ls'], ['leases', 'ls'], ['du'], ['images', 'inspect', published!.ref]];
    const config = (await runOk(t, ['content', 'get', configDigest], service.client)).stdout;
    const served = [];
    for (const args of listings) served.push(await runJSON(t, args, service.client));
    assert.equal((await service.stop()).code, 0);
    const embedded = ['--no-service', '--root', service.root];
    for (const [i, args] of listings.entries()) assert.deepEqual(await runJSON(t, [...embedded, ...args]), served[i], args.join(' '));
    assert.equal((await runOk(t, [...embedded, 'content', 'get', configDigest])).stdout, config, 'content get streams the same bytes');
  });

  test('a client of the service loads neither SQLite, the worker pool, tar code nor the Client', async (t) => {
    const [published] = await publishFixture(t);
    const service = await startService(t);
    for (const args of [['pull', published!.ref], ['images', 'ls'], ['snapshots', 'ls'], ['du']]) {
      const file = join(tempDir(t), 'modules.txt');
      const result = await runCli(t, args, { ...service.client, nodeArgs: recordModulesArgs(file) });
      assert.equal(result.code, 0, result.stderr);
      const loaded = recordedModules(file);
      assert.ok(loaded.some((url) => url.endsWith('/src/server/remote.js')), `${args.join(' ')} went through the service client`);
      for (const heavy of ['better-sqlite3', 'piscina', 'tar-stream', '/src/client.js', '/src/root.js', '/src/server/local.js', '/src/diff/', '/src/unpack/pool.js']) {
        assert.deepEqual(loaded.filter((url) => url.includes(heavy)), [], `${args.join(' ')} does not load ${heavy}`);
      }
    }
  });

  test('a stale socket file is replaced at start; a live service on the socket is refused with exit 8', async (t) => {
    const socket = join(tempDir(t), 'layerpool.sock');
    // A unix socket bound by a process that is gone: the file stays, nothing listens.
    execFileSync('python3', ['-c', 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socket]);
    assert.ok(lstatSync(socket).isSocket());
    const service = await startService(t, { socket });
    await runOk(t, ['version'], service.client);
    const second = await runCli(t, ['--root', tempDir(t), 'serve'], service.client);
    assert.equal(second.code, 8);
    assert.match(second.stderr, /another layerpool service is listening on/);
  });

  test('requests from another user are refused (exit 4) unless --allow-uid names that user', async (t) => {
    const dir = tempDir(t);
    chmodSync(dir, 0o755);
    const socket = join(dir, 'run', 'layerpool.sock');
    const nobody = { uid: 65534, gid: 65534 };
    const service = await startService(t, { socket });
    chmodSync(socket, 0o666); // let the other user connect, so that the service has to say no
    const refused = await runCli(t, ['images', 'ls'], { ...service.client, ...nobody });
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /uid 65534 \(gid 65534, pid \d+\) may not use the layerpool service/);
    await service.stop();

    const allowing = await startService(t, { socket, args: ['--allow-uid', '65534'] });
    chmodSync(socket, 0o666);
    assert.deepEqual(await runJSON(t, ['images', 'ls'], { ...allowing.client, ...nobody }), []);
  });

  test('SIGTERM during a pull cancels it cleanly: the client exits 130, the socket goes, no extract-* snapshot stays', async (t) => {
    const service = await startService(t);
    const pull = await startStalledPull(t, [], service.client);
    const stopped = await service.stop();
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /layerpool service stopping \(SIGTERM\)/);
    const result = await pull.result;
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stderr, /shutting down \(LP_ERR_CANCELED\)/);
    assert.equal(existsSync(service.socket), false, 'the socket file is removed');
    const root = ['--no-service', '--root', service.root];
    assert.deepEqual(extractKeys(await runJSON<SnapshotSummary[]>(t, [...root, 'snapshots', 'ls'])), []);
    assert.deepEqual(await runJSON(t, [...root, 'images', 'ls']), []);
  });

  test('a client interrupted with Ctrl-C cancels its pull in the service, which keeps serving', async (t) => {
    const service = await startService(t);
    const pull = await startStalledPull(t, [], service.client);
    pull.kill('SIGINT');
    assert.equal((await pull.result).code, 130);
    let snapshots = await runJSON<SnapshotSummary[]>(t, ['snapshots', 'ls'], service.client);
    for (let tries = 0; extractKeys(snapshots).length > 0 && tries < 50; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      snapshots = await runJSON<SnapshotSummary[]>(t, ['snapshots', 'ls'], service.client);
    }
    assert.deepEqual(extractKeys(snapshots), [], 'the cancelled pull removed what it prepared');
    assert.deepEqual(await runJSON(t, ['leases', 'ls'], service.client), [], 'and released its lease');
    assert.equal(service.process.exitCode, null, 'the service still runs');
  });

  test('a command on the served root without the service says the root is in use and by which pid', async (t) => {
    const service = await startService(t);
    const direct = await runCli(t, ['--no-service', '--root', service.root, 'images', 'ls']);
    assert.equal(direct.code, 5);
    assert.match(direct.stderr, new RegExp(`in use by pid ${service.process.pid}`));
    const elsewhere = await runCli(t, ['--socket', join(tempDir(t), 'none.sock'), '--root', service.root, 'images', 'ls']);
    assert.equal(elsewhere.code, 5);
    assert.match(elsewhere.stderr, /no layerpool service answered on .*none\.sock; is `layerpool serve` running\? use --socket PATH/);
  });

  test('one service serves every namespace: each has its own images and snapshots, the blobs are fetched and stored once', async (t) => {
    const [published] = await publishFixture(t);
    const counting = await startFaultProxy(t, published!.registry);
    const service = await startService(t);
    const ref = `${counting.host}/cli/tiny:v1`;
    const { service: info } = await runJSON<{ service: ServiceInfo }>(t, ['--namespace', 'team-a', 'version'], service.client);
    assert.equal(info.namespace, 'team-a');
    await runOk(t, ['--namespace', 'team-a', 'pull', ref], service.client);
    assert.deepEqual((await runJSON<{ name: string }[]>(t, ['images', 'ls'], service.client)).map((i) => i.name), [], 'default has no image');
    assert.deepEqual((await runJSON<{ name: string }[]>(t, ['-n', 'team-a', 'images', 'ls'], service.client)).map((i) => i.name), [ref]);

    await runOk(t, ['pull', ref], service.client);
    assert.deepEqual((await runJSON<{ name: string }[]>(t, ['images', 'ls'], service.client)).map((i) => i.name), [ref]);
    const manifest = published!.image.manifests[0]!;
    for (const { digest } of manifest.layers.map((l) => l.descriptor)) {
      assert.equal(counting.requests.filter((r) => r.method === 'GET' && r.path.endsWith(digest)).length, 1, `layer ${digest} fetched once for both namespaces`);
    }
    // Each namespace has its own committed chain (containerd namespaces snapshots too).
    for (const namespace of ['default', 'team-a']) {
      const snapshots = await runJSON<SnapshotSummary[]>(t, ['-n', namespace, 'snapshots', 'ls'], service.client);
      assert.equal(snapshots.filter((s) => s.kind === 'committed').length, manifest.layers.length, namespace);
    }
    // Removing the image from one namespace and collecting keeps what the other uses.
    await runOk(t, ['-n', 'team-a', 'images', 'rm', ref], service.client);
    await runOk(t, ['gc'], service.client);
    const content = await runJSON<{ digest: string }[]>(t, ['content', 'ls'], service.client);
    for (const { digest } of manifest.layers.map((l) => l.descriptor)) assert.ok(content.some((c) => c.digest === digest), `${digest} stays for default`);
    assert.deepEqual(await runJSON<SnapshotSummary[]>(t, ['-n', 'team-a', 'snapshots', 'ls'], service.client), [], "team-a's snapshots were collected");
  });

  test('the API answers unknown endpoints, parameters, types and namespaces with typed errors', async (t) => {
    const service = await startService(t);
    const cases: [string, string, { body?: unknown; headers?: Record<string, string> }, number, string][] = [
      ['GET', '/v1/nope', {}, 404, 'LP_ERR_NOT_FOUND'],
      ['GET', '/v1/images?colour=red', {}, 400, 'LP_ERR_INVALID_ARGUMENT'],
      ['DELETE', '/v1/images', {}, 400, 'LP_ERR_INVALID_ARGUMENT'],
      ['POST', '/v1/leases', { body: { expireInMs: 'soon' } }, 400, 'LP_ERR_INVALID_ARGUMENT'],
      ['GET', '/v1/images/inspect?name=absent', {}, 404, 'LP_ERR_NOT_FOUND'],
      ['GET', '/v1/info', { headers: { 'x-layerpool-namespace': 'not a namespace!' } }, 400, 'LP_ERR_INVALID_ARGUMENT'],
    ];
    for (const [method, path, options, status, code] of cases) {
      const answer = await call(service.socket, method, path, options);
      assert.deepEqual([answer.status, answer.body.error?.code], [status, code], `${method} ${path}`);
    }
    const created = await call(service.socket, 'POST', '/v1/leases', { body: { id: 'raw', expireInMs: 60_000 } });
    assert.equal(created.status, 200);
    assert.equal((await call(service.socket, 'DELETE', '/v1/leases?id=raw')).status, 204);
  });
});
