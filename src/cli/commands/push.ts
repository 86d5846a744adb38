/** `layerpool push REF [--source NAME]`: push a local image to a registry or an OCI layout. */
import { interruptible, withAPI, type GlobalOptions, type RegistryFlags } from '../context.js';
import { printJSON } from '../output.js';

export async function pushCommand(globals: GlobalOptions, ref: string, flags: RegistryFlags & { source?: string }): Promise<void> {
  const pushed = await withAPI(globals, (api) => interruptible((signal) => api.push({ ref, ...(flags.source === undefined ? {} : { source: flags.source }) }, { signal })), flags, ref);
  if (globals.json) printJSON(globals.stdout, pushed);
  else if (globals.quiet) globals.stdout.write(`${pushed.digest}\n`);
  else globals.stdout.write(`Pushed ${pushed.ref}: ${pushed.digest} (${pushed.mediaType})\n`);
}
