/**
 * ServiceClient: the service API spoken to `layerpool serve` over its unix socket with
 * node:http (`socketPath`). It is what a CLI command uses when a service answers, so it
 * must stay light: node:http, the error types and the route table, nothing that opens a
 * root (no SQLite, no worker pool, no tar code).
 */
import { Agent, request, type IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import { canceledFrom, deserializeError, UnavailableError, type SerializedError } from '../errors.js';
import type { GCStats } from '../gc/collector.js';
import type { Labels } from '../metadata/labels.js';
import type { Mount } from '../snapshots/snapshotter.js';
import { encodeQuery, NAMESPACE_HEADER, ROUTES, type MethodName, type Params } from './routes.js';
import type {
  ContentSummary,
  DiskUsageReport,
  ImageDetails,
  ImageSummary,
  ImageUsage,
  LayerpoolAPI,
  LeaseSummary,
  PruneSummary,
  PullCallOptions,
  PullParams,
  PullStreamLine,
  PullSummary,
  PushParams,
  PushSummary,
  ServiceInfo,
  SnapshotParams,
  SnapshotSummary,
  SnapshotUsage,
} from './types.js';

export interface ServiceClientOptions {
  socket: string;
  /** Sent with every request; default the service's. */
  namespace?: string;
  /** How long `connect` waits for the service to answer. Default 5 s. */
  connectTimeoutMs?: number;
}

export const SERVICE_CLIENT_DEFAULTS = { connectTimeoutMs: 5_000 } as const;

// Errors that mean "no service listens there": nothing at the path, or a socket file
// whose server is gone.
const NO_SERVICE = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK']);

async function readBody(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function errorOf(res: IncomingMessage): Promise<Error> {
  const text = await readBody(res);
  try {
    const { error } = JSON.parse(text) as { error: SerializedError };
    if (typeof error?.code === 'string' && typeof error.message === 'string') return deserializeError(error);
  } catch {
    // not our JSON: report the status below
  }
  return new UnavailableError(`the layerpool service answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
}

export class ServiceClient implements LayerpoolAPI {
  private readonly agent = new Agent({ keepAlive: true });

  private constructor(private readonly options: ServiceClientOptions) {}

  /**
   * A client of the service listening on `options.socket`, or undefined when none does
   * (no socket file, or a stale one). A service that refuses this user is an error.
   */
  static async connect(options: ServiceClientOptions): Promise<{ client: ServiceClient; info: ServiceInfo } | undefined> {
    const client = new ServiceClient(options);
    try {
      const info = await client.call<ServiceInfo>('info', {}, { timeoutMs: options.connectTimeoutMs ?? SERVICE_CLIENT_DEFAULTS.connectTimeoutMs });
      return { client, info };
    } catch (err) {
      await client.close();
      if (NO_SERVICE.has(String((err as { cause?: { code?: unknown } }).cause?.code))) return undefined;
      throw err;
    }
  }

  info(): Promise<ServiceInfo> {
    return this.call('info', {});
  }

  async pull(params: PullParams, options: PullCallOptions = {}): Promise<PullSummary> {
    const res = await this.send('pull', params, options.signal === undefined ? {} : { signal: options.signal });
    const lines = createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY });
    try {
      for await (const text of lines) {
        if (text.trim() === '') continue;
        const line = JSON.parse(text) as PullStreamLine;
        if (line.type === 'result') return line.result;
        if (line.type === 'error') throw deserializeError(line.error);
        options.progress?.(line);
      }
    } catch (err) {
      if (options.signal?.aborted) throw canceledFrom(options.signal);
      throw err;
    } finally {
      lines.close();
      res.destroy();
    }
    if (options.signal?.aborted) throw canceledFrom(options.signal);
    throw new UnavailableError(`the layerpool service at ${this.options.socket} ended the pull without a result (did it stop?)`);
  }

  push(params: PushParams, options: { signal?: AbortSignal } = {}): Promise<PushSummary> {
    return this.call('push', params, options);
  }

  listImages(params: { filters?: string[] }): Promise<ImageSummary[]> {
    return this.call('listImages', params);
  }

  inspectImage(params: { name: string; platform?: string; snapshotter?: string }): Promise<ImageDetails> {
    return this.call('inspectImage', params);
  }

  deleteImage(params: { name: string; sync?: boolean }): Promise<void> {
    return this.call('deleteImage', params);
  }

  imageUsage(params: { names?: string[] }): Promise<ImageUsage[]> {
    return this.call('imageUsage', params);
  }

  listContent(params: { filters?: string[] }): Promise<ContentSummary[]> {
    return this.call('listContent', params);
  }

  readContent(params: { digest: string }): Promise<NodeJS.ReadableStream> {
    return this.send('readContent', params);
  }

  deleteContent(params: { digest: string }): Promise<void> {
    return this.call('deleteContent', params);
  }

  pruneContent(): Promise<PruneSummary> {
    return this.call('pruneContent', {});
  }

  listSnapshots(params: SnapshotParams & { filters?: string[] }): Promise<SnapshotSummary[]> {
    return this.call('listSnapshots', params);
  }

  snapshotUsage(params: SnapshotParams & { key?: string }): Promise<SnapshotUsage[]> {
    return this.call('snapshotUsage', params);
  }

  snapshotMounts(params: SnapshotParams & { key: string }): Promise<Mount[]> {
    return this.call('snapshotMounts', params);
  }

  viewSnapshot(params: SnapshotParams & { key: string; parent: string; labels?: Labels }): Promise<Mount[]> {
    return this.call('viewSnapshot', params);
  }

  removeSnapshot(params: SnapshotParams & { key: string }): Promise<void> {
    return this.call('removeSnapshot', params);
  }

  listLeases(params: { filters?: string[] }): Promise<LeaseSummary[]> {
    return this.call('listLeases', params);
  }

  createLease(params: { id?: string; expireInMs?: number; flat?: boolean; labels?: Labels }): Promise<LeaseSummary> {
    return this.call('createLease', params);
  }

  deleteLease(params: { id: string; sync?: boolean }): Promise<void> {
    return this.call('deleteLease', params);
  }

  gc(): Promise<GCStats> {
    return this.call('gc', {});
  }

  diskUsage(): Promise<DiskUsageReport> {
    return this.call('diskUsage', {});
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  /** One call answered with a JSON value (or nothing: 204). */
  private async call<T>(method: MethodName, params: object, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<T> {
    const res = await this.send(method, params, options);
    const text = await readBody(res);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** Send one request; resolves with a 2xx response, rejects with the typed error of any other. */
  private send(method: MethodName, params: object, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<IncomingMessage> {
    const route = ROUTES[method];
    const body = route.method === 'POST' ? JSON.stringify(params) : undefined;
    const { signal } = options;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(canceledFrom(signal));
        return;
      }
      const req = request(
        {
          socketPath: this.options.socket,
          agent: this.agent,
          method: route.method,
          path: route.method === 'POST' ? route.path : encodeQuery(route, params as Params),
          headers: {
            ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
            ...(this.options.namespace === undefined ? {} : { [NAMESPACE_HEADER]: this.options.namespace }),
          },
          ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
        },
        (res) => {
          if ((res.statusCode ?? 500) < 300) resolve(res);
          else errorOf(res).then(reject, reject);
        },
      );
      const onAbort = () => req.destroy(canceledFrom(signal as AbortSignal));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('timeout', () => req.destroy(new UnavailableError(`the layerpool service at ${this.options.socket} did not answer within ${options.timeoutMs} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (signal?.aborted) reject(canceledFrom(signal));
        else if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('LP_ERR_')) reject(err);
        else reject(new UnavailableError(`cannot reach the layerpool service at ${this.options.socket}: ${err.code ?? err.message}`, { cause: err }));
      });
      req.end(body);
    });
  }
}
