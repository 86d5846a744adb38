/** `layerpool serve`: own the root and serve the API on the socket until SIGTERM/SIGINT. */
import { once } from 'node:events';
import type { SnapshotterName } from '../../snapshots/index.js';
import { registryClientOptions, type GlobalOptions, type RegistryFlags } from '../context.js';

export interface ServeFlags extends RegistryFlags {
  allowUid?: number[];
  allowGid?: number[];
  snapshotter?: SnapshotterName;
  workers?: number;
}

export async function serveCommand(globals: GlobalOptions, flags: ServeFlags): Promise<void> {
  const [{ Client }, { LocalAPI }, { LayerpoolServer }] = await Promise.all([import('../../client.js'), import('../../server/local.js'), import('../../server/server.js')]);
  const client = await Client.open({
    ...(await registryClientOptions(flags)),
    ...(globals.root === undefined ? {} : { root: globals.root }),
    namespace: globals.namespace,
    ...(flags.snapshotter === undefined ? {} : { snapshotter: flags.snapshotter }),
    ...(flags.workers === undefined ? {} : { workers: flags.workers }),
  });
  // Requests naming another namespace get a view of the same client (one root, one pool).
  const apis = new Map<string, InstanceType<typeof LocalAPI>>();
  const apiFor = (namespace: string) => {
    let api = apis.get(namespace);
    if (api === undefined) {
      api = new LocalAPI(client.inNamespace(namespace), { mode: 'service' });
      apis.set(namespace, api);
    }
    return api;
  };
  let server;
  try {
    server = await LayerpoolServer.listen({
      socket: globals.socket,
      api: new LocalAPI(client, { mode: 'service' }),
      namespace: globals.namespace,
      apiFor,
      ...(flags.allowUid ? { allowUids: flags.allowUid } : {}),
      ...(flags.allowGid ? { allowGids: flags.allowGid } : {}),
    });
  } catch (err) {
    await client.close();
    throw err;
  }
  globals.stdout.write(`layerpool service (pid ${process.pid}) serving ${client.root.path} (default namespace ${globals.namespace}) on ${globals.socket}\n`);
  const stop = new AbortController();
  const signals = ['SIGTERM', 'SIGINT'].map((name) => once(process, name, { signal: stop.signal }));
  const signal = await Promise.race(signals);
  stop.abort();
  await Promise.allSettled(signals);
  if (!globals.quiet) globals.stdout.write(`layerpool service stopping (${String(signal[0] ?? 'signal')})\n`);
  await server.shutdown();
}
