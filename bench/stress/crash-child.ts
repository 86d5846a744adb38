/**
 * The process bench/stress/crash.ts kills: opens the root, prints `ready`, and runs the
 * stress workload (pulls, deletions, leases, GC) until it is killed, or until
 * `--max-ms` passes (so a parent that died never leaves it pulling forever). It prints
 * `gc-start` and `gc-end` around every collection, so the parent knows whether its kill
 * landed inside one.
 *
 *   node --import tsx bench/stress/crash-child.ts --root <dir> --images <file.json> --seed <s> [--concurrency 4] [--mix default|gc-heavy]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Client } from '../../src/client.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { positiveInteger, runMain } from '../lib/cli.js';
import type { PublishedImage } from '../lib/images.js';
import { libraryTarget, newCounters, runWorkload, WORKLOAD_MIXES } from './workload.js';

export const CRASH_CHILD_DEFAULTS = { concurrency: 4, maxMs: 60_000 } as const;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      root: { type: 'string' },
      images: { type: 'string' },
      seed: { type: 'string', default: 'crash' },
      concurrency: { type: 'string', default: String(CRASH_CHILD_DEFAULTS.concurrency) },
      'max-ms': { type: 'string', default: String(CRASH_CHILD_DEFAULTS.maxMs) },
      mix: { type: 'string', default: 'default' },
    },
  });
  if (values.root === undefined || values.images === undefined) throw new InvalidArgumentError('crash-child needs --root <dir> and --images <file.json>');
  const weights = Object.hasOwn(WORKLOAD_MIXES, values.mix) ? WORKLOAD_MIXES[values.mix] : undefined;
  if (weights === undefined) throw new InvalidArgumentError(`unknown --mix ${values.mix} (${Object.keys(WORKLOAD_MIXES).join(', ')})`);
  const images = JSON.parse(await readFile(values.images, 'utf8')) as PublishedImage[];
  const client = await Client.open({ root: values.root });
  process.stdout.write('ready\n');
  const library = libraryTarget(client);
  await runWorkload({
    target: {
      ...library,
      gc: async () => {
        process.stdout.write('gc-start\n');
        await library.gc();
        process.stdout.write('gc-end\n');
      },
    },
    weights,
    images,
    seed: values.seed,
    concurrency: positiveInteger('concurrency', values.concurrency),
    deadline: Date.now() + positiveInteger('max-ms', values['max-ms']),
    maxOperations: Number.MAX_SAFE_INTEGER,
    counters: newCounters(),
  });
  await client.close();
}

runMain('crash-child', async () => {
  await main();
  return 0;
});
