/**
 * The README demo for the foundation: a root in a temp dir, a blob written in two
 * pieces across a "crash" (writer closed, root reopened, write resumed), a corrupt
 * write refused, and the content listed. Replaced by a real image pull once the pull
 * path lands.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '../digest.js';
import { isDigestMismatch } from '../errors.js';
import { Root } from '../root.js';

export interface DemoOptions {
  out: NodeJS.WritableStream;
  /** Keep the root instead of removing it at the end. */
  keep?: boolean;
}

export async function runDemo({ out, keep = false }: DemoOptions): Promise<void> {
  const say = (line: string) => out.write(`${line}\n`);
  const path = await mkdtemp(join(tmpdir(), 'layerpool-demo-'));
  const layer = Buffer.alloc(8 << 20);
  for (let i = 0; i < layer.length; i += 4) layer.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, i);
  const digest = digestOf(layer);
  try {
    say(`root: ${path}`);
    let root = await Root.open({ path, namespaces: ['default'] });
    let store = root.content.namespace('default');
    const first = await store.writer({ ref: 'demo-layer', expected: digest, total: layer.length });
    await first.write(layer.subarray(0, 3 << 20));
    await first.close();
    root.close();
    say(`wrote 3 MiB of ${digest.slice(0, 19)}..., closed the root mid-download`);

    root = await Root.open({ path });
    store = root.content.namespace('default');
    const resumed = await store.writer({ ref: 'demo-layer', expected: digest, total: layer.length });
    say(`reopened: ingest resumes at offset ${resumed.offset}`);
    await resumed.write(layer.subarray(resumed.offset));
    const info = await resumed.commit();
    say(`committed ${info.digest} (${info.size} bytes), digest verified`);

    const corrupt = await store.writer({ ref: 'corrupt', expected: digestOf('the real bytes') });
    await corrupt.write(Buffer.from('forged bytes!!'));
    await corrupt.commit().catch((err: unknown) => {
      if (!isDigestMismatch(err)) throw err;
      say(`corrupt blob refused: ${(err as Error).message}`);
    });

    say('content in namespace default:');
    await store.walk((blob) => void say(`  ${blob.digest}  ${blob.size} bytes`));
    say(`blob file: ${root.content.files.blobPath(digest)}`);
    say('image pull and unpack are not built yet: see `issues` 3-5.');
    root.close();
  } finally {
    if (!keep) await rm(path, { recursive: true, force: true });
  }
}
