/**
 * What every command needs: the global options, and the service API to call — the
 * running `layerpool serve` when one answers on the socket, else the root opened in
 * this process (embedded). Both give the same LayerpoolAPI, so commands format their
 * output the same way whichever answered. Heavy modules are imported only on the path
 * that needs them: a client of the service never loads SQLite, the worker pool or tar code.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { CanceledError, FailedPreconditionError, InvalidArgumentError, isUnavailable, UnavailableError } from '../errors.js';
import type { ClientOptions } from '../client.js';
import type { LayerpoolAPI } from '../server/types.js';

export const DEFAULT_SOCKET = '/run/layerpool/layerpool.sock';

export interface GlobalOptions {
  /** Set only when given (--root or LAYERPOOL_ROOT): a service on another root is not used. */
  root?: string;
  namespace: string;
  socket: string;
  /** False with --no-service (or LAYERPOOL_NO_SERVICE=1): always open the root here. */
  service: boolean;
  json: boolean;
  quiet: boolean;
  debug: boolean;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

/** Registry settings of an embedded client (a service has its own, given to `layerpool serve`). */
export interface RegistryFlags {
  plainHttp?: string[];
  hostsDir?: string;
  /** `user:password` for the registry of `ref`. */
  user?: string;
  /** Tries per registry request, the first included. */
  retries?: number;
}

function givenRegistryFlags(flags: RegistryFlags): string[] {
  return [
    ...(flags.plainHttp && flags.plainHttp.length > 0 ? ['--plain-http'] : []),
    ...(flags.hostsDir !== undefined ? ['--hosts-dir'] : []),
    ...(flags.user !== undefined ? ['--user'] : []),
    ...(flags.retries !== undefined ? ['--retries'] : []),
  ];
}

/** ClientOptions for registry flags; `--user` is sent only to the registry of `ref`. */
export async function registryClientOptions(flags: RegistryFlags, ref?: string): Promise<Partial<ClientOptions>> {
  const options: Partial<ClientOptions> = {};
  if (flags.plainHttp && flags.plainHttp.length > 0) options.plainHTTP = flags.plainHttp;
  if (flags.hostsDir !== undefined) options.hostsDir = flags.hostsDir;
  if (flags.retries !== undefined) options.retry = { attempts: flags.retries };
  if (flags.user !== undefined) {
    const colon = flags.user.indexOf(':');
    if (colon <= 0) throw new InvalidArgumentError('--user takes USER:PASSWORD');
    if (ref === undefined) throw new InvalidArgumentError('--user needs a registry reference');
    const { parseReference, registryAPIHost } = await import('../reference.js');
    const host = registryAPIHost(parseReference(ref).domain);
    const credentials = { username: flags.user.slice(0, colon), password: flags.user.slice(colon + 1) };
    options.credentials = (asked) => (asked === host ? credentials : undefined);
  }
  return options;
}

async function openEmbedded(globals: GlobalOptions, clientOptions: Partial<ClientOptions>, triedService: boolean): Promise<LayerpoolAPI> {
  const [{ Client }, { LocalAPI }] = await Promise.all([import('../client.js'), import('../server/local.js')]);
  try {
    const client = await Client.open({
      ...clientOptions,
      ...(globals.root === undefined ? {} : { root: globals.root }),
      namespace: globals.namespace,
    });
    return new LocalAPI(client, { mode: 'embedded' });
  } catch (err) {
    if (!isUnavailable(err) || !triedService) throw err;
    throw new UnavailableError(`${(err as Error).message} (no layerpool service answered on ${globals.socket}; is \`layerpool serve\` running? use --socket PATH)`, { cause: err });
  }
}

/** Whether to try the service: allowed, and a socket file exists (checking first spares loading node:http). */
export function mayUseService(globals: GlobalOptions): boolean {
  return globals.service && existsSync(globals.socket);
}

/**
 * The API this invocation talks to. Registry flags only apply to an embedded client:
 * through a service they are an error rather than silently ignored.
 */
export async function openAPI(globals: GlobalOptions, registry: RegistryFlags = {}, ref?: string): Promise<LayerpoolAPI> {
  if (mayUseService(globals)) {
    const { ServiceClient } = await import('../server/remote.js');
    const found = await ServiceClient.connect({ socket: globals.socket, namespace: globals.namespace }).catch((err: unknown) => {
      if (!isUnavailable(err)) throw err;
      throw new UnavailableError(`${(err as Error).message} (pass --no-service to open the root directly)`, { cause: err });
    });
    if (found && (globals.root === undefined || resolve(globals.root) === found.info.root)) {
      const given = givenRegistryFlags(registry);
      if (given.length > 0) {
        await found.client.close();
        throw new FailedPreconditionError(
          `${given.join(', ')} cannot be used through the layerpool service on ${globals.socket}: give them to \`layerpool serve\`, or pass --no-service`,
        );
      }
      return found.client;
    }
    await found?.client.close();
  }
  return openEmbedded(globals, await registryClientOptions(registry, ref), globals.service);
}

/** Run `fn` with the API and close it afterwards, whatever happens. */
export async function withAPI<T>(globals: GlobalOptions, fn: (api: LayerpoolAPI) => Promise<T>, registry?: RegistryFlags, ref?: string): Promise<T> {
  const api = await openAPI(globals, registry, ref);
  try {
    return await fn(api);
  } finally {
    await api.close();
  }
}

/**
 * Run `fn` with a signal that Ctrl-C (SIGINT) or SIGTERM aborts, so that it can clean
 * up (remove what it prepared) before the process exits with 130. A second signal
 * exits at once.
 */
export async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort(new CanceledError(`interrupted by ${name}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
