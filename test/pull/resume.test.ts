import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Client } from '../../src/client.js';
import { ingestRef } from '../../src/remote/fetch.js';
import { buildTestImage, expectedTree, openTestClient, plainLayer, publish, snapshotKeys, testSpec } from '../helpers/images.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry } from '../helpers/registry.js';
import { assertPulled, assertResumedFrom } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/pull-child.ts', import.meta.url));

// The timeout only bounds a hang (a child that never reports progress), it asserts nothing.
test('a pull killed mid-download leaves its ingest, and the next pull continues it with a Range request', { timeout: 120_000 }, async (t) => {
  const registry = await startRegistry(t);
  const proxy = await startFaultProxy(t, registry);
  const image = await buildTestImage(t, testSpec('resume', [plainLayer(3, 16 << 10), plainLayer(2, 4 << 20, { sizeDistribution: 'large' })]));
  const manifest = image.manifests[0]!;
  const big = manifest.layers[1]!.descriptor;
  assert.ok(big.size > 1 << 20, `the big layer is ${big.size} bytes`);
  const ref = await publish({ registry, proxy }, image, 'resume/big');
  // The big layer's response stops after a first part: the child is stuck mid-download.
  const sentBeforeStall = 256 << 10;
  proxy.addFault({ method: 'GET', path: `/v2/resume/big/blobs/${big.digest}`, fault: { kind: 'stall', afterBytes: sentBeforeStall } });

  const root = mkdtempSync(join(tmpdir(), 'layerpool-resume-'));
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, root, ref], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let client: Client | undefined;
  // One hook, in this order: the root goes only once nothing has it open.
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
    await client?.close();
    rmSync(root, { recursive: true, force: true });
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  for await (const line of createInterface({ input: child.stdout })) {
    assert.notEqual(line, 'done', 'the child must not finish: the big layer stalls');
    const event = JSON.parse(line) as { digest: string; fetched: number };
    if (event.digest === big.digest && event.fetched >= sentBeforeStall) break;
  }
  assert.equal(child.exitCode, null, `the child is still running (stderr: ${stderr})`);
  child.kill('SIGKILL');
  await exited;

  proxy.clearFaults();
  client = await openTestClient(t, { root });
  const status = await client.content.status(ingestRef(big));
  assert.ok(status.offset > 0 && status.offset <= sentBeforeStall, `the ingest kept ${status.offset} bytes`);
  assert.equal(status.expected, big.digest);
  const before = proxy.requests.length;

  const result = await client.pull(ref);

  assertResumedFrom(proxy.requests.slice(before).find((r) => r.method === 'GET' && r.path.endsWith(big.digest)), status.offset, big.size);
  assert.equal(result.unpacked[0]!.layersApplied, manifest.layers.length);
  assert.deepEqual(await client.content.listStatuses(), []);
  // The killed pull's lease (24 h expiry, as containerd's) still holds the snapshots it
  // had prepared; deleting it lets GC remove them and nothing the image needs.
  const [stale, ...others] = client.leases.list();
  assert.ok(stale && others.length === 0, 'the killed pull left its lease');
  const held = new Set(client.leases.listResources(stale.id).map((r) => r.id));
  const leftovers = (await snapshotKeys(await client.snapshotter())).filter((key) => key.startsWith('extract-'));
  for (const key of leftovers) assert.ok(held.has(key), `${key} is held by the killed pull's lease`);
  await client.leases.delete(stale.id, { sync: true });
  await assertPulled(t, client, manifest, await expectedTree(manifest));
});
