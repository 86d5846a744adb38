/**
 * One image repository on its registry hosts: builds API URLs, sends requests with the
 * right Authorization (retrying once after a 401 challenge), maps HTTP statuses to
 * typed errors, and walks the hosts in order (mirrors, then upstream) for pulls.
 */
import {
  CanceledError,
  FailedPreconditionError,
  InvalidArgumentError,
  LayerpoolError,
  NotFoundError,
  NotImplementedError,
  UnauthorizedError,
  UnavailableError,
} from '../errors.js';
import { logger } from '../log.js';
import type { Reference } from '../reference.js';
import { repositoryScope, type Authorizer } from './auth.js';
import { isMirror, type HostCapability, type RegistryHost } from './hosts.js';
import type { HttpClient, HttpRequest, HttpResponse } from './http.js';

const log = logger('remote');

/** Registry error bodies worth reading for a message; more is not read. */
const MAX_ERROR_BODY = 64 << 10;

export interface RepositoryRequest {
  method: HttpRequest['method'];
  url: URL;
  headers?: Record<string, string>;
  body?: HttpRequest['body'];
  /** What the request needs on this repository. */
  actions: readonly ('pull' | 'push')[];
  /** Other scopes the request needs (a cross-repository mount reads the source repository). */
  extraScopes?: readonly string[];
  signal?: AbortSignal | undefined;
}

export class Repository {
  readonly reference: Reference;
  readonly hosts: readonly RegistryHost[];
  private readonly http: HttpClient;
  private readonly authorizer: Authorizer;

  constructor(options: { reference: Reference; hosts: readonly RegistryHost[]; http: HttpClient; authorizer: Authorizer }) {
    this.reference = options.reference;
    this.hosts = options.hosts;
    this.http = options.http;
    this.authorizer = options.authorizer;
  }

  /** Hosts able to do `capability`, in the order to try them. */
  hostsWith(capability: HostCapability): RegistryHost[] {
    const hosts = this.hosts.filter((h) => h.capabilities.has(capability));
    if (hosts.length === 0) throw new FailedPreconditionError(`no host configured for ${this.reference.domain} can ${capability}`);
    return hosts;
  }

  /**
   * `<scheme>://<host><api root>/<repository>/<suffix>`. Pull requests through a mirror
   * carry `?ns=<domain>` (containerd's convention), so one mirror can serve many registries.
   */
  url(host: RegistryHost, suffix: string, options: { mirrorNamespace?: boolean } = {}): URL {
    const url = new URL(`${host.scheme}://${host.host}${host.path}/${this.reference.path}/${suffix}`);
    if (options.mirrorNamespace === true && isMirror(host, this.reference.domain)) url.searchParams.set('ns', this.reference.domain);
    return url;
  }

  /** Send with auth: the known Authorization up front; after a 401, learn the challenge and retry once. */
  async request(host: RegistryHost, req: RepositoryRequest): Promise<HttpResponse> {
    // An upload Location may point at another server (blob storage): it gets no credentials.
    if (req.url.origin !== `${host.scheme}://${host.host}`) {
      return this.http.send({
        method: req.method,
        url: req.url,
        ...(req.headers === undefined ? {} : { headers: req.headers }),
        ...(req.body === undefined ? {} : { body: req.body }),
        ...(req.signal === undefined ? {} : { signal: req.signal }),
      });
    }
    const scopes = [repositoryScope(this.reference.path, req.actions), ...(req.extraScopes ?? [])];
    let authorization = await this.authorizer.authorization(host, scopes, req.signal);
    for (let attempt = 0; ; attempt++) {
      const res = await this.http.send({
        method: req.method,
        url: req.url,
        host,
        ...(req.headers === undefined ? {} : { headers: req.headers }),
        ...(req.body === undefined ? {} : { body: req.body }),
        ...(authorization === undefined ? {} : { authorization }),
        ...(req.signal === undefined ? {} : { signal: req.signal }),
      });
      if (res.status !== 401) return res;
      const challenge = res.headers['www-authenticate'];
      await res.body.dump().catch(() => undefined);
      if (attempt > 0) throw this.authorizer.refused(host, scopes, await this.authorizer.hasCredentials(host));
      authorization = await this.authorizer.challenged(host, scopes, challenge, authorization, req.signal);
    }
  }

  /**
   * Run `attempt` on each host in turn until one succeeds. A host that fails in any
   * typed way (refused connection, 5xx, 404, bad bytes) passes the request to the next;
   * the last host's error is the one thrown (the upstream server has the last word).
   */
  async eachHost<T>(capability: HostCapability, what: string, attempt: (host: RegistryHost) => Promise<T>): Promise<T> {
    const hosts = this.hostsWith(capability);
    let lastError: unknown;
    for (const [i, host] of hosts.entries()) {
      try {
        return await attempt(host);
      } catch (err) {
        if (err instanceof CanceledError || !(err instanceof LayerpoolError)) throw err;
        lastError = err;
        if (i < hosts.length - 1) {
          const level = err instanceof NotFoundError ? 'debug' : 'warn';
          log[level]({ host: host.host, what, err: err.message }, 'host failed; trying the next one');
        }
      }
    }
    throw lastError;
  }
}

/** Read at most MAX_ERROR_BODY of a registry error body: `{"errors":[{"code","message"}]}`. */
async function registryErrorDetail(res: HttpResponse): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      const buf = chunk as Buffer;
      chunks.push(buf);
      size += buf.length;
      if (size >= MAX_ERROR_BODY) break;
    }
  } catch {
    return '';
  } finally {
    res.body.destroy();
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    if (Array.isArray(parsed.errors)) {
      return parsed.errors
        .map((e) => [e.code, e.message].filter((x) => typeof x === 'string' && x !== '').join(': '))
        .filter(Boolean)
        .join('; ')
        .slice(0, 300);
    }
  } catch {
    // not the registry error format
  }
  return '';
}

/** A non-success response as a typed error; consumes the body. */
export async function statusError(res: HttpResponse, what: string): Promise<LayerpoolError> {
  const detail = await registryErrorDetail(res);
  const message = `${what}: HTTP ${res.status}${detail === '' ? '' : ` (${detail})`}`;
  if (res.status === 404) return new NotFoundError(message);
  if (res.status === 401 || res.status === 403) return new UnauthorizedError(message);
  if (res.status === 400) return new InvalidArgumentError(message);
  if (res.status === 405 || res.status === 501) return new NotImplementedError(message);
  if (res.status >= 400 && res.status < 500 && res.status !== 429) return new FailedPreconditionError(message);
  return new UnavailableError(message);
}

