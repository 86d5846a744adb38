import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OCILayout } from '../../src/layout/layout.js';
import { RegistryResolver } from '../../src/remote/resolver.js';
import { presetImage, publish, startPullEnvironment } from '../helpers/images.js';
import { tempDir } from '../helpers/tmp.js';

test('client.push writes a pulled image to an OCI layout under the given tag', async (t) => {
  const env = await startPullEnvironment(t);
  const image = await presetImage('tiny');
  const ref = await publish(env, image, 'push/source');
  await env.client.pull(ref);
  const dir = join(tempDir(t), 'layout');

  const pushed = await env.client.push(`oci-layout://${dir}:copy`, { source: ref });

  assert.equal(pushed.digest, image.descriptor.digest);
  const layout = await OCILayout.open(dir);
  assert.equal((await layout.resolve('copy')).descriptor.digest, image.descriptor.digest);
  assert.deepEqual((await layout.listImages()).map((i) => i.name), ['copy'], 'only the root is tagged');
});

test('client.push sends a pulled image to another repository of a registry', async (t) => {
  const env = await startPullEnvironment(t);
  const image = await presetImage('tiny');
  const ref = await publish(env, image, 'push/origin');
  await env.client.pull(ref);
  const target = `${env.registry.host}/push/copy:v2`;

  await env.client.push(target, { source: ref });

  const resolver = new RegistryResolver({});
  t.after(() => resolver.close());
  const resolved = await resolver.resolve(target);
  assert.equal(resolved.descriptor.digest, image.descriptor.digest);
});
