/** `layerpool pull REF`: pull and unpack, with progress (src/cli/progress.ts). */
import { interruptible, withAPI, type GlobalOptions, type RegistryFlags } from '../context.js';
import type { PullParams } from '../../server/types.js';
import { PullProgress, type ProgressMode } from '../progress.js';

/** The pull's own options (commander leaves out those not given) and the registry ones. */
export type PullFlags = RegistryFlags & Omit<PullParams, 'ref'>;

export function progressMode(globals: GlobalOptions): ProgressMode {
  if (globals.json) return 'json';
  if (globals.quiet) return 'quiet';
  return globals.stdout.isTTY ? 'tty' : 'plain';
}

export async function pullCommand(globals: GlobalOptions, ref: string, flags: PullFlags): Promise<void> {
  const { plainHttp, hostsDir, user, retries, ...params } = flags;
  await withAPI(
    globals,
    (api) =>
      interruptible(async (signal) => {
        const progress = new PullProgress({ out: globals.stdout, mode: progressMode(globals), ref, summaryOnly: globals.json && globals.quiet });
        try {
          progress.finish(await api.pull({ ref, ...params }, { signal, progress: (event) => progress.event(event) }));
        } catch (err) {
          progress.stop();
          throw err;
        }
      }),
    { plainHttp, hostsDir, user, retries },
    ref,
  );
}
