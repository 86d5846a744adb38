import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isUnauthorized, isUnavailable } from '../../src/errors.js';
import { isLayerType } from '../../src/images/mediatypes.js';
import { dockerConfigCredentials, parseChallenges, pushImage } from '../../src/remote/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';
import { buildImage, imageFetcher, readStream, testResolver, type TestImage } from './fixtures.js';
import type { TestContext } from 'node:test';

const USERS = { puller: 'correct-horse-battery' };
const good = () => ({ username: 'puller', password: 'correct-horse-battery' });
const bad = () => ({ username: 'puller', password: 'wrong-password-123' });


async function withImage(t: TestContext, registry: TestRegistry, repo = 'test/app'): Promise<TestImage> {
  const image = await buildImage({ platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
  await pushImage({ fetcher: imageFetcher(image), descriptor: image.root, reference: `${registry.host}/${repo}:v1`, resolver: testResolver(t, { credentials: good }) });
  return image;
}

describe('registry auth', () => {
  test('parses WWW-Authenticate challenges with quoted parameters', () => {
    const challenges = parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push", Basic realm="x y"');
    assert.deepEqual(challenges, [
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
      { scheme: 'basic', params: { realm: 'x y' } },
    ]);
    assert.deepEqual(parseChallenges('Basic realm=simple'), [{ scheme: 'basic', params: { realm: 'simple' } }]);
    assert.deepEqual(parseChallenges(undefined), []);
  });

  test('pulls anonymously from an open registry without any Authorization', async (t) => {
    const registry = await startRegistry(t);
    const proxy = await startFaultProxy(t, registry);
    const image = await withImage(t, registry);
    const resolver = testResolver(t);
    const { descriptor } = await resolver.resolve(`${proxy.host}/test/app:v1`);
    assert.deepEqual(descriptor, image.root);
    assert.ok(proxy.requests.length > 0);
    assert.ok(proxy.requests.every((r) => r.headers.authorization === undefined));
  });

  test('htpasswd: good credentials pass with Basic auth', async (t) => {
    const registry = await startRegistry(t, { auth: 'htpasswd', users: USERS });
    const image = await withImage(t, registry);
    const resolver = testResolver(t, { credentials: good });
    const { descriptor } = await resolver.resolve(`${registry.host}/test/app:v1`);
    assert.deepEqual(descriptor, image.root);
    const fetcher = await resolver.fetcher(`${registry.host}/test/app:v1`);
    const layer = [...image.blobs.values()].find((b) => isLayerType(b.descriptor.mediaType));
    assert.equal((await readStream(await fetcher.fetch(layer!.descriptor))).length, layer!.data.length);
  });

  test('htpasswd: bad credentials fail fast with UnauthorizedError and no retry storm', async (t) => {
    const registry = await startRegistry(t, { auth: 'htpasswd', users: USERS });
    const proxy = await startFaultProxy(t, registry);
    await withImage(t, registry);
    const resolver = testResolver(t, { credentials: bad });
    await assert.rejects(resolver.resolve(`${proxy.host}/test/app:v1`), (err: Error) => {
      assert.ok(isUnauthorized(err));
      assert.match(err.message, new RegExp(proxy.host.replace(/\./g, '\\.')));
      assert.match(err.message, /credentials/);
      assert.ok(!err.message.includes('wrong-password-123'), 'no secret in the message');
      return true;
    });
    // One anonymous try, one with the credentials: then stop.
    assert.equal(proxy.requests.length, 2);
    // The host's challenge is known now: a second call costs one request.
    await assert.rejects(resolver.resolve(`${proxy.host}/test/app:v1`), (err: Error) => isUnauthorized(err));
    assert.equal(proxy.requests.length, 3);
  });

  test('htpasswd: no credentials is UnauthorizedError telling to log in', async (t) => {
    const registry = await startRegistry(t, { auth: 'htpasswd', users: USERS });
    await withImage(t, registry);
    await assert.rejects(testResolver(t).resolve(`${registry.host}/test/app:v1`), (err: Error) => isUnauthorized(err) && /log in/.test(err.message));
  });

  test('token auth: one token request serves the resolve and every blob fetch', async (t) => {
    const registry = await startRegistry(t, { auth: 'token', users: USERS });
    const image = await withImage(t, registry);
    const tokens = registry.tokenServer!;
    const before = tokens.requests.length;
    const resolver = testResolver(t, { credentials: good });
    const ref = `${registry.host}/test/app:v1`;
    await resolver.resolve(ref);
    const fetcher = await resolver.fetcher(ref);
    await Promise.all([...image.blobs.values()].map(async (b) => assert.equal((await readStream(await fetcher.fetch(b.descriptor))).length, b.data.length)));
    const pulls = tokens.requests.slice(before);
    assert.equal(pulls.length, 1);
    assert.deepEqual(pulls[0]?.scopes, ['repository:test/app:pull']);
    assert.equal(pulls[0]?.user, 'puller');
    assert.equal(pulls[0]?.account, 'puller');
  });

  test('token auth: a token is reused until it nears its expires_in, then fetched again', async (t) => {
    const registry = await startRegistry(t, { auth: 'token', users: USERS, token: { expiresIn: 2 } });
    await withImage(t, registry);
    const tokens = registry.tokenServer!;
    const resolver = testResolver(t, { credentials: good });
    const ref = `${registry.host}/test/app:v1`;
    const before = tokens.requests.length;
    await resolver.resolve(ref);
    await resolver.resolve(ref);
    assert.equal(tokens.requests.length - before, 1);
    // A 2 s token is refreshed after half its life (the margin is capped at half).
    await sleep(1100);
    await resolver.resolve(ref);
    assert.equal(tokens.requests.length - before, 2);
  });

  test('token auth: bad credentials are UnauthorizedError after one token request', async (t) => {
    const registry = await startRegistry(t, { auth: 'token', users: USERS });
    await withImage(t, registry);
    const tokens = registry.tokenServer!;
    const before = tokens.requests.length;
    await assert.rejects(testResolver(t, { credentials: bad }).resolve(`${registry.host}/test/app:v1`), (err: Error) => {
      return isUnauthorized(err) && err.message.includes(registry.host) && !err.message.includes('wrong-password-123');
    });
    assert.equal(tokens.requests.length - before, 1);
  });

  test('token auth: anonymous access without a grant is UnauthorizedError', async (t) => {
    const registry = await startRegistry(t, { auth: 'token', users: USERS });
    await withImage(t, registry);
    await assert.rejects(testResolver(t).resolve(`${registry.host}/test/app:v1`), (err: Error) => isUnauthorized(err) && err.message.includes(registry.host));
  });

  test('token auth: a failing token server is Unavailable after the retries', async (t) => {
    const registry = await startRegistry(t, { auth: 'token', users: USERS });
    await withImage(t, registry);
    const tokens = registry.tokenServer!;
    tokens.failing = true;
    const before = tokens.requests.length;
    const resolver = testResolver(t, { credentials: good, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } });
    await assert.rejects(resolver.resolve(`${registry.host}/test/app:v1`), (err: Error) => isUnavailable(err) && /500/.test(err.message));
    assert.equal(tokens.requests.length - before, 3);
  });

  test('token auth: a 401 on a cached token refreshes it once and retries', async (t) => {
    const registry = await startRegistry(t, { auth: 'token', users: USERS });
    const proxy = await startFaultProxy(t, registry);
    const image = await withImage(t, registry);
    const tokens = registry.tokenServer!;
    const resolver = testResolver(t, { credentials: good });
    const ref = `${proxy.host}/test/app:v1`;
    await resolver.resolve(ref);
    const before = tokens.requests.length;
    const layer = [...image.blobs.values()].find((b) => isLayerType(b.descriptor.mediaType))!;
    const path = `/v2/test/app/blobs/${layer.descriptor.digest}`;
    // As if the token had been revoked: the registry refuses it once.
    const challenge = `Bearer realm="${tokens.realm}",service="${tokens.service}",scope="repository:test/app:pull"`;
    proxy.addFault({ method: 'GET', path, fault: { kind: 'status', status: 401, headers: { 'www-authenticate': challenge } }, times: 1 });
    const fetcher = await resolver.fetcher(ref);
    assert.equal((await readStream(await fetcher.fetch(layer.descriptor))).length, layer.data.length);
    assert.equal(tokens.requests.length - before, 1);
    const tries = proxy.requests.filter((r) => r.path === path);
    assert.equal(tries.length, 2);
    assert.notEqual(tries[0]?.headers.authorization, tries[1]?.headers.authorization);
  });

  test('docker config.json: auths with a base64 auth entry', async (t) => {
    const registry = await startRegistry(t, { auth: 'htpasswd', users: USERS });
    const image = await withImage(t, registry);
    const configDir = tempDir(t);
    const auth = Buffer.from('puller:correct-horse-battery').toString('base64');
    writeFileSync(join(configDir, 'config.json'), JSON.stringify({ auths: { [`http://${registry.host}`]: { auth } } }));
    const resolver = testResolver(t, { credentials: undefined, dockerConfig: { configDir } });
    assert.deepEqual((await resolver.resolve(`${registry.host}/test/app:v1`)).descriptor, image.root);
  });

  test('docker config.json: username/password entries, and Docker Hub hosts share one key', async (t) => {
    const configDir = tempDir(t);
    writeFileSync(
      join(configDir, 'config.json'),
      JSON.stringify({ auths: { 'https://index.docker.io/v1/': { username: 'hubuser', password: 'hubpass' }, 'registry.example:5000': { identitytoken: 'refresh-me' } } }),
    );
    const creds = dockerConfigCredentials({ configDir });
    assert.deepEqual(await creds('registry-1.docker.io'), { username: 'hubuser', password: 'hubpass' });
    assert.deepEqual(await creds('docker.io'), { username: 'hubuser', password: 'hubpass' });
    assert.deepEqual(await creds('registry.example:5000'), { identityToken: 'refresh-me' });
    assert.equal(await creds('elsewhere.example'), undefined);
    assert.equal(await dockerConfigCredentials({ configDir: tempDir(t) })('registry.example:5000'), undefined);
  });

  test('docker config.json: credHelpers run docker-credential-<name> get with the server on stdin', async (t) => {
    const registry = await startRegistry(t, { auth: 'htpasswd', users: USERS });
    const image = await withImage(t, registry);
    const configDir = tempDir(t);
    const binDir = tempDir(t);
    const seen = join(binDir, 'stdin.txt');
    const helper = join(binDir, 'docker-credential-test');
    writeFileSync(
      helper,
      `#!/bin/sh\n[ "$1" = get ] || exit 2\ncat > '${seen}'\necho '{"ServerURL":"x","Username":"puller","Secret":"correct-horse-battery"}'\n`,
    );
    chmodSync(helper, 0o755);
    writeFileSync(join(configDir, 'config.json'), JSON.stringify({ credHelpers: { [registry.host]: 'test' } }));
    const env = { ...process.env, PATH: `${binDir}:${process.env['PATH'] ?? ''}` };
    const resolver = testResolver(t, { credentials: undefined, dockerConfig: { configDir, env } });
    assert.deepEqual((await resolver.resolve(`${registry.host}/test/app:v1`)).descriptor, image.root);
    assert.equal(readFileSync(seen, 'utf8'), registry.host);

    // A helper that has nothing answers "not found": anonymous, then refused.
    writeFileSync(helper, `#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n`);
    assert.equal(await dockerConfigCredentials({ configDir, env })(registry.host), undefined);
  });

  test('docker config.json: an identitytoken is exchanged at the token server with OAuth2', async (t) => {
    const registry = await startRegistry(t, { auth: 'token', users: USERS, token: { refreshTokens: { 'refresh-abc': 'puller' } } });
    const image = await withImage(t, registry);
    const configDir = tempDir(t);
    writeFileSync(join(configDir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { identitytoken: 'refresh-abc' } } }));
    const tokens = registry.tokenServer!;
    const before = tokens.requests.length;
    const resolver = testResolver(t, { credentials: undefined, dockerConfig: { configDir } });
    assert.deepEqual((await resolver.resolve(`${registry.host}/test/app:v1`)).descriptor, image.root);
    const used = tokens.requests.slice(before);
    assert.equal(used.length, 1);
    assert.equal(used[0]?.method, 'POST');
    assert.equal(used[0]?.user, 'puller');
  });
});
