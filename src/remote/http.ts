/**
 * HTTP for the registry client, on undici: one keep-alive Agent per host configuration
 * (TLS settings differ per host), streaming bodies, header and body timeouts, retries
 * with backoff on 5xx/429/connection resets, and redirects followed by hand so that the
 * Authorization header never leaves the registry's origin (blob storage redirects go
 * to S3/GCS-style hosts that must not see registry tokens).
 *
 * Connection refused is not retried: nothing listens there, and a dead mirror should be
 * passed over at once for the next host rather than after a backoff series.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { canceledFrom, LayerpoolError, UnavailableError } from '../errors.js';
import { onAbort } from '../sync/abort.js';
import { logger } from '../log.js';
import { tlsConnectOptions, type RegistryHost } from './hosts.js';
import { backoffDelay, retryAfterMs, sleep, type RetryPolicy } from './retry.js';

const log = logger('remote');

export interface Timeouts {
  /** TCP + TLS connect. */
  connectMs: number;
  /** From sending the request to the response headers. */
  headersMs: number;
  /** Longest silence between two body chunks. */
  bodyMs: number;
}

export const TIMEOUT_DEFAULTS: Readonly<Timeouts> = { connectMs: 30_000, headersMs: 60_000, bodyMs: 60_000 };

/** Statuses that mean "try again later". */
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
// Network failures where another try may succeed (the connection broke or timed out).
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'ENETRESET',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export type RequestBody = Uint8Array | (() => Promise<Readable> | Readable);

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  /** Bytes, or a factory called once per try (a stream cannot be replayed). */
  body?: RequestBody;
  /** The registry host whose TLS settings and headers apply on its own origin. */
  host?: RegistryHost;
  /** Sent only while the request stays on the URL's origin. */
  authorization?: string;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Must be consumed or destroyed, or the connection is not reused. */
  body: Dispatcher.ResponseData['body'];
}

export interface HttpClientOptions {
  userAgent: string;
  timeouts: Timeouts;
  retry: RetryPolicy;
}

/** First value of a response header. */
export function header(res: Pick<HttpResponse, 'headers'>, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** `GET https://host/v2/x/blobs/...` for messages: no query string (upload URLs carry state tokens). */
export function describeRequest(method: string, url: URL): string {
  return `${method} ${url.origin}${url.pathname}`;
}

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
}

/** A network-level failure as an UnavailableError (CanceledError when the signal fired). */
export function networkError(err: unknown, what: string, signal?: AbortSignal): LayerpoolError {
  if (signal?.aborted) return canceledFrom(signal);
  if (err instanceof LayerpoolError) return err;
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return new UnavailableError(`${what} failed: ${code === undefined ? message : `${code} (${message})`}`, { cause: err });
}

function isRetryableNetworkError(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && RETRYABLE_NETWORK_CODES.has(code);
}

export class HttpClient {
  private readonly options: HttpClientOptions;
  private readonly agents = new Map<string, Agent>();

  constructor(options: HttpClientOptions) {
    this.options = options;
  }

  /**
   * Send a request, following redirects and retrying per the policy. Returns the
   * response whatever its status (the caller maps statuses to errors); throws
   * UnavailableError for network failures that outlived the retries, CanceledError on abort.
   */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const policy = this.options.retry;
    const what = describeRequest(req.method, req.url);
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.followRedirects(req);
      } catch (err) {
        if (req.signal?.aborted) throw canceledFrom(req.signal);
        if (err instanceof LayerpoolError || !isRetryableNetworkError(err) || attempt >= policy.attempts) {
          throw networkError(err, what, req.signal);
        }
        const wait = backoffDelay(policy, attempt);
        log.debug({ request: what, attempt, wait, err: errorCode(err) }, 'retrying after a network error');
        await sleep(wait, req.signal);
        continue;
      }
      if (!RETRY_STATUSES.has(res.status) || attempt >= policy.attempts) return res;
      const wait = retryAfterMs(header(res, 'retry-after'), policy) ?? backoffDelay(policy, attempt);
      log.debug({ request: what, attempt, status: res.status, wait }, 'retrying after a server error');
      await res.body.dump().catch(() => undefined);
      await sleep(wait, req.signal);
    }
  }

  private async followRedirects(req: HttpRequest): Promise<HttpResponse> {
    const origin = req.url.origin;
    let url = req.url;
    let method = req.method;
    let body = req.body;
    for (let hops = 0; ; hops++) {
      const sameOrigin = url.origin === origin;
      const res = await this.exchange({
        method,
        url,
        headers: req.headers ?? {},
        body,
        host: sameOrigin ? req.host : undefined,
        authorization: sameOrigin ? req.authorization : undefined,
        signal: req.signal,
      });
      const location = header(res, 'location');
      if (!REDIRECT_STATUSES.has(res.status) || location === undefined || method === 'POST' || method === 'PATCH') {
        return res;
      }
      await res.body.dump().catch(() => undefined);
      if (hops >= MAX_REDIRECTS) {
        throw new UnavailableError(`${describeRequest(req.method, req.url)}: more than ${MAX_REDIRECTS} redirects`);
      }
      url = new URL(location, url);
      if (res.status === 303) {
        method = method === 'HEAD' ? 'HEAD' : 'GET';
        body = undefined;
      }
    }
  }

  private async exchange(req: {
    method: HttpRequest['method'];
    url: URL;
    headers: Record<string, string>;
    body: RequestBody | undefined;
    host: RegistryHost | undefined;
    authorization: string | undefined;
    signal: AbortSignal | undefined;
  }): Promise<HttpResponse> {
    const headers: Record<string, string | string[]> = { 'user-agent': this.options.userAgent };
    if (req.host !== undefined) Object.assign(headers, req.host.headers);
    Object.assign(headers, req.headers);
    if (req.authorization !== undefined) headers['authorization'] = req.authorization;
    const body = typeof req.body === 'function' ? await req.body() : req.body;
    // One pull's signal is shared by many requests: link each through one listener per
    // signal (sync/abort.ts) instead of one per request, and let go when the body closes.
    const controller = new AbortController();
    const { signal } = req;
    let unlink = (): void => undefined;
    if (signal?.aborted) controller.abort(signal.reason);
    else if (signal !== undefined) unlink = onAbort(signal, () => controller.abort(signal.reason));
    let response: Dispatcher.ResponseData;
    try {
      response = await this.dispatcher(req.host).request({
        origin: req.url.origin,
        path: `${req.url.pathname}${req.url.search}`,
        method: req.method,
        headers,
        body: body ?? null,
        signal: controller.signal,
      });
    } catch (err) {
      unlink();
      throw err;
    }
    response.body.once('close', unlink);
    return { status: response.statusCode, headers: response.headers, body: response.body };
  }

  /** One Agent per TLS configuration; its pools keep connections alive per origin. */
  private dispatcher(host: RegistryHost | undefined): Agent {
    const key = host?.tls === undefined ? '' : JSON.stringify(host.tls);
    let agent = this.agents.get(key);
    if (agent === undefined) {
      const { connectMs, headersMs, bodyMs } = this.options.timeouts;
      agent = new Agent({
        connect: { timeout: connectMs, ...tlsConnectOptions(host?.tls) },
        headersTimeout: headersMs,
        bodyTimeout: bodyMs,
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((agent) => agent.close()));
  }
}
