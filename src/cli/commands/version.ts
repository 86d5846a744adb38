/** `layerpool version`: this CLI's version, and the service's when one answers on the socket. */
import { packageVersion } from '../../package.js';
import type { ServiceInfo } from '../../server/types.js';
import { mayUseService, type GlobalOptions } from '../context.js';
import { printJSON } from '../output.js';

export async function versionCommand(globals: GlobalOptions): Promise<void> {
  let service: ServiceInfo | undefined;
  if (mayUseService(globals)) {
    const { ServiceClient } = await import('../../server/remote.js');
    // `version` reports what it finds; a service it cannot use is not an error here.
    const found = await ServiceClient.connect({ socket: globals.socket, namespace: globals.namespace }).catch(() => undefined);
    if (found) {
      service = found.info;
      await found.client.close();
    }
  }
  const version = { version: packageVersion(), node: process.version, ...(service ? { service } : {}) };
  if (globals.json) return printJSON(globals.stdout, version);
  globals.stdout.write(`layerpool ${version.version} (node ${version.node})\n`);
  if (service) globals.stdout.write(`service: layerpool ${service.version} on ${globals.socket} (pid ${service.pid}, root ${service.root}, namespace ${service.namespace})\n`);
}
