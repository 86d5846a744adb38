/**
 * `layerpool serve`: one process owns the root and serves the service API (src/server/
 * routes.ts) as HTTP + JSON on a unix socket, so that many CLI processes share one
 * content store, one worker pool, one lock table (a blob two clients pull at once is
 * fetched once) and one GC.
 *
 *   socket:   parent folder created 0755, socket file 0660, a stale socket file (nothing
 *             listening) removed at start, a live one refused
 *   peers:    SO_PEERCRED on every connection: this user, root, or --allow-uid/--allow-gid
 *   pull:     POST answers NDJSON: progress events (byte updates coalesced), then one
 *             `result` or `error` line; a client that disconnects cancels its pull
 *   shutdown: stop accepting, cancel running pulls and wait for their cleanup (the
 *             unpacker removes what it prepared), close the client, remove the socket
 */
import { connect } from 'node:net';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  CanceledError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  serializeError,
  UnauthorizedError,
  type SerializedError,
} from '../errors.js';
import { logger } from '../log.js';
import { native, type PeerCredentials } from '../native.js';
import type { PullProgressEvent } from '../unpack/progress.js';
import { checkBody, decodeQuery, httpStatusOf, NAMESPACE_HEADER, ROUTES, type MethodName, type Params, type Route } from './routes.js';
import type { LayerpoolAPI, PullStreamLine } from './types.js';

const log = logger('server');

export interface ServerOptions {
  socket: string;
  api: LayerpoolAPI;
  /** The namespace `api` serves, for requests that name none. */
  namespace: string;
  /**
   * The API of another namespace a request names (header `x-layerpool-namespace`), as
   * containerd serves every namespace; without it such requests are refused.
   */
  apiFor?: (namespace: string) => LayerpoolAPI;
  /** Users besides this process's own (and root) whose requests are served. */
  allowUids?: readonly number[];
  /** Groups whose members' requests are served. */
  allowGids?: readonly number[];
  /** Mode of the socket file. Default 0660. */
  socketMode?: number;
}

export const SERVER_DEFAULTS = {
  socketMode: 0o660,
  socketDirMode: 0o755,
  /** A layer's byte counts go out at most this often; status changes go out at once. */
  progressIntervalMs: 100,
  maxBodyBytes: 1 << 20,
} as const;

/** Who may use the service: the service's own user, root, and the configured ones. */
function isAllowed(peer: PeerCredentials, options: ServerOptions): boolean {
  return (
    peer.uid === process.geteuid?.() ||
    peer.uid === 0 ||
    (options.allowUids ?? []).includes(peer.uid) ||
    (options.allowGids ?? []).includes(peer.gid)
  );
}

function peerOf(socket: Socket): PeerCredentials | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  try {
    return native().peercred(fd);
  } catch (err) {
    log.warn({ err }, 'cannot read the peer credentials of a connection; refusing it');
    return undefined;
  }
}

/** Whether something accepts connections on the unix socket `path`. */
function isListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Make room for the socket: create its folder, remove a stale socket, refuse a live one or another file. */
async function prepareSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: SERVER_DEFAULTS.socketDirMode });
  let stats;
  try {
    stats = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stats.isSocket()) throw new FailedPreconditionError(`${path} exists and is not a socket; not removing it`);
  if (await isListening(path)) throw new FailedPreconditionError(`another layerpool service is listening on ${path}`);
  log.info({ socket: path }, 'removing a stale socket file');
  await unlink(path);
}

/**
 * Coalesces a pull's byte-count updates: a layer event whose status is unchanged goes
 * out at most every `intervalMs` (the latest one), anything else at once, after the
 * updates it would otherwise overtake.
 */
class ProgressCoalescer {
  private readonly lastStatus = new Map<string, string>();
  private readonly lastSent = new Map<string, number>();
  private readonly pending = new Map<string, PullProgressEvent>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: (event: PullProgressEvent) => void,
    private readonly intervalMs: number,
  ) {}

  push(event: PullProgressEvent): void {
    if (event.type !== 'layer') {
      this.flush();
      this.send(event);
      return;
    }
    const key = `${event.index}/${event.digest}`;
    const now = Date.now();
    if (this.lastStatus.get(key) !== event.status || now - (this.lastSent.get(key) ?? 0) >= this.intervalMs) {
      this.pending.delete(key);
      this.lastStatus.set(key, event.status);
      this.lastSent.set(key, now);
      this.send(event);
      return;
    }
    this.pending.set(key, event);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.intervalMs);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const now = Date.now();
    for (const [key, event] of this.pending) {
      this.lastSent.set(key, now);
      this.send(event);
    }
    this.pending.clear();
  }
}

export class LayerpoolServer {
  private readonly server: Server;
  private readonly peers = new WeakMap<Socket, PeerCredentials | undefined>();
  private readonly routes = new Map<string, MethodName>();
  /** Every request being answered, and the controllers that cancel them. */
  private readonly inFlight = new Map<Promise<void>, AbortController>();
  private stopping: Promise<void> | undefined;

  private constructor(private readonly options: ServerOptions) {
    for (const [name, route] of Object.entries(ROUTES) as [MethodName, Route][]) this.routes.set(`${route.method} ${route.path}`, name);
    this.server = createServer((req, res) => {
      const controller = new AbortController();
      // A client that goes away before its answer is complete cancels what it asked for.
      res.once('close', () => {
        if (!res.writableFinished) controller.abort(new CanceledError('the client disconnected'));
      });
      const handled = this.handle(req, res, controller.signal)
        .catch((err: unknown) => this.fail(res, err))
        .finally(() => this.inFlight.delete(handled));
      this.inFlight.set(handled, controller);
    });
    this.server.on('connection', (socket: Socket) => this.peers.set(socket, peerOf(socket)));
  }

  /** Prepare the socket path, listen, and set the socket's mode. */
  static async listen(options: ServerOptions): Promise<LayerpoolServer> {
    await prepareSocketPath(options.socket);
    const server = new LayerpoolServer(options);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(options.socket, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    await chmod(options.socket, options.socketMode ?? SERVER_DEFAULTS.socketMode);
    log.info({ socket: options.socket, namespace: options.namespace }, 'layerpool service listening');
    return server;
  }

  get socket(): string {
    return this.options.socket;
  }

  /**
   * Stop accepting, cancel running requests and wait for them (a cancelled pull removes
   * the snapshots it prepared before its promise settles), close the API, remove the socket.
   */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const controller of this.inFlight.values()) controller.abort(new CanceledError('the layerpool service is shutting down'));
      await Promise.allSettled([...this.inFlight.keys()]);
      this.server.closeAllConnections();
      await closed;
      await this.options.api.close();
      await unlink(this.options.socket).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      log.info({ socket: this.options.socket }, 'layerpool service stopped');
    })();
    return this.stopping;
  }

  private async handle(req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const peer = this.peers.get(req.socket);
    if (!peer || !isAllowed(peer, this.options)) {
      const who = peer ? `uid ${peer.uid} (gid ${peer.gid}, pid ${peer.pid})` : 'a peer whose credentials are unknown';
      this.sendError(res, 403, serializeError(new UnauthorizedError(`${who} may not use the layerpool service on ${this.options.socket}; start it with --allow-uid or --allow-gid`)));
      return;
    }
    const api = this.apiOf(req.headers[NAMESPACE_HEADER]);
    const url = new URL(req.url ?? '/', 'http://layerpool');
    const method = this.routes.get(`${req.method} ${url.pathname}`);
    if (method === undefined) throw new NotFoundError(`no endpoint ${req.method} ${url.pathname}`);
    if (this.stopping) throw new CanceledError('the layerpool service is shutting down');
    const route = ROUTES[method];
    const params = route.method === 'POST' ? checkBody(route, await readJSON(req)) : decodeQuery(route, url.searchParams);

    if (method === 'pull') return this.pull(api, res, params, signal);
    if (method === 'readContent') {
      const stream = await api.readContent(params as { digest: string });
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // pipeline also ends when the client goes away, so a shutdown never waits on it.
      await pipeline(stream, res);
      return;
    }
    const call = api[method] as (params: Params, options: { signal: AbortSignal }) => Promise<unknown>;
    const result = await call.call(api, params, { signal });
    if (result === undefined) {
      res.writeHead(204).end();
      return;
    }
    const body = JSON.stringify(result);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  }

  /** The API of the namespace a request names (the service's own when it names none). */
  private apiOf(header: string | string[] | undefined): LayerpoolAPI {
    if (header === undefined || header === this.options.namespace) return this.options.api;
    if (typeof header !== 'string') throw new InvalidArgumentError(`one ${NAMESPACE_HEADER} header, got ${header.length}`);
    if (this.options.apiFor === undefined) {
      throw new FailedPreconditionError(`the layerpool service on ${this.options.socket} serves namespace ${this.options.namespace}, not ${header}`);
    }
    return this.options.apiFor(header);
  }

  private async pull(api: LayerpoolAPI, res: ServerResponse, params: Params, signal: AbortSignal): Promise<void> {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const write = (line: PullStreamLine) => void res.write(`${JSON.stringify(line)}\n`);
    const progress = new ProgressCoalescer(write, SERVER_DEFAULTS.progressIntervalMs);
    try {
      const result = await api.pull(params as { ref: string }, { signal, progress: (event) => progress.push(event) });
      progress.flush();
      write({ type: 'result', result });
    } catch (err) {
      progress.flush();
      log.debug({ err, ref: params['ref'] }, 'pull failed');
      write({ type: 'error', error: serializeError(err) });
    }
    res.end();
  }

  private fail(res: ServerResponse, err: unknown): void {
    const wire = serializeError(err);
    // Typed errors are the caller's business; anything else is ours to look at.
    if (!wire.code.startsWith('LP_ERR_')) log.error({ err }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.sendError(res, httpStatusOf(wire.code), wire);
  }

  private sendError(res: ServerResponse, status: number, error: SerializedError): void {
    const body = JSON.stringify({ error });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  }
}

async function readJSON(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > SERVER_DEFAULTS.maxBodyBytes) throw new ResourceExhaustedError(`request body larger than ${SERVER_DEFAULTS.maxBodyBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`request body is not JSON: ${(err as Error).message}`, { cause: err });
  }
}
