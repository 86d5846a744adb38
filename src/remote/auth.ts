/**
 * Registry authentication, as the docker/containerd clients do it:
 *
 *   request ──401 + WWW-Authenticate──▶ remember the host's challenge
 *     Bearer realm,service ──▶ GET realm?service&scope[&account] (Basic creds if any)
 *                              or POST realm (OAuth2 refresh token) ──▶ token, cached per
 *                              (host, scopes) until expires_in (default 60 s) minus a margin
 *     Basic               ──▶ username:password
 *   retry once with the new Authorization; a second 401 is UnauthorizedError.
 *
 * Later requests to a host with a known challenge send the Authorization up front, so a
 * warm token costs no extra round trip. A 401 on a cached token refreshes it once.
 */
import type { Readable } from 'node:stream';
import { InvalidArgumentError, UnauthorizedError, UnavailableError } from '../errors.js';
import { logger } from '../log.js';
import { SingleFlight } from '../sync/index.js';
import type { Credentials, CredentialsProvider } from './credentials.js';
import type { RegistryHost } from './hosts.js';
import { describeRequest, type HttpClient } from './http.js';
import { readAll } from './read.js';

const log = logger('remote');

/** A token lives this long when the server does not say (distribution's token spec). */
const DEFAULT_TOKEN_LIFETIME_S = 60;
/** Refresh a token this long before it expires, so it does not expire in flight. */
const TOKEN_EXPIRY_MARGIN_MS = 10_000;
const MAX_TOKEN_RESPONSE = 1 << 20;
const OAUTH_CLIENT_ID = 'layerpool';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parse WWW-Authenticate (RFC 9110 §11.6.1): comma-separated challenges, each a scheme
 * and `key=value` / `key="quoted value"` parameters.
 */
export function parseChallenges(value: string | string[] | undefined): Challenge[] {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  const challenges: Challenge[] = [];
  for (const text of values) {
    let current: Challenge | undefined;
    let i = 0;
    while (i < text.length) {
      while (i < text.length && (text[i] === ' ' || text[i] === ',')) i++;
      const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/.exec(text.slice(i));
      if (!token) break;
      i += token[0].length;
      while (text[i] === ' ') i++;
      if (text[i] !== '=') {
        current = { scheme: token[0].toLowerCase(), params: {} };
        challenges.push(current);
        continue;
      }
      i++;
      while (text[i] === ' ') i++;
      let paramValue = '';
      if (text[i] === '"') {
        i++;
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length) i++;
          paramValue += text[i];
          i++;
        }
        i++;
      } else {
        const bare = /^[^,\s]*/.exec(text.slice(i)) as RegExpExecArray;
        paramValue = bare[0];
        i += bare[0].length;
      }
      if (current !== undefined) current.params[token[0].toLowerCase()] = paramValue;
    }
  }
  return challenges;
}

/** The scope that grants `actions` on a repository: `repository:library/alpine:pull,push`. */
export function repositoryScope(path: string, actions: readonly ('pull' | 'push')[]): string {
  return `repository:${path}:${actions.join(',')}`;
}

type HostAuth = { kind: 'bearer'; realm: string; service: string | undefined; scope: string | undefined } | { kind: 'basic' };

interface CachedToken {
  value: string;
  expiresAt: number;
}

export interface AuthorizerOptions {
  http: HttpClient;
  credentials: CredentialsProvider | undefined;
}

function hostKey(host: RegistryHost): string {
  return `${host.scheme}://${host.host}`;
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Auth state shared by every repository of one resolver: challenges per host, tokens per (host, scopes). */
export class Authorizer {
  private readonly http: HttpClient;
  private readonly credentials: CredentialsProvider | undefined;
  private readonly hosts = new Map<string, HostAuth>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly tokenFetches = new SingleFlight<CachedToken>();

  constructor(options: AuthorizerOptions) {
    this.http = options.http;
    this.credentials = options.credentials;
  }

  /** The Authorization to send up front, once the host's challenge is known. */
  async authorization(host: RegistryHost, scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const auth = this.hosts.get(hostKey(host));
    if (auth === undefined) return undefined;
    if (auth.kind === 'basic') {
      const creds = await this.lookup(host);
      return creds?.username !== undefined ? basic(creds.username, creds.password ?? '') : undefined;
    }
    return `Bearer ${(await this.token(host, auth, scopes, signal)).value}`;
  }

  /**
   * After a 401: learn the challenge and return the Authorization to retry with, or
   * throw UnauthorizedError when a retry cannot help (no credentials, or they were
   * just refused).
   */
  async challenged(
    host: RegistryHost,
    scopes: readonly string[],
    wwwAuthenticate: string | string[] | undefined,
    sent: string | undefined,
    signal?: AbortSignal,
  ): Promise<string> {
    const challenges = parseChallenges(wwwAuthenticate);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params['realm']);
    if (bearer !== undefined) {
      const auth: HostAuth = { kind: 'bearer', realm: bearer.params['realm'] as string, service: bearer.params['service'], scope: bearer.params['scope'] };
      this.hosts.set(hostKey(host), auth);
      // The token we sent was refused (expired or revoked early): get a fresh one, once.
      if (sent?.startsWith('Bearer ')) this.tokens.delete(this.tokenKey(host, scopes));
      return `Bearer ${(await this.token(host, auth, scopes, signal)).value}`;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.hosts.set(hostKey(host), { kind: 'basic' });
      const creds = await this.lookup(host);
      if (creds?.username === undefined) throw this.refused(host, scopes, false);
      if (sent?.startsWith('Basic ')) throw this.refused(host, scopes, true);
      return basic(creds.username, creds.password ?? '');
    }
    throw new UnauthorizedError(`registry ${host.host} answered 401 without a Bearer or Basic challenge`);
  }

  /** The error for a request the registry refused even with our best Authorization. */
  refused(host: RegistryHost, scopes: readonly string[], hadCredentials: boolean): UnauthorizedError {
    const access = scopes.join(' ');
    return hadCredentials
      ? new UnauthorizedError(`registry ${host.host} refused access (${access}) with the configured credentials: check the username and password or token for ${host.host}`)
      : new UnauthorizedError(`registry ${host.host} requires authentication for ${access}: log in to ${host.host} (docker login) or pass credentials`);
  }

  /** Whether credentials are configured for the host (for error messages). */
  async hasCredentials(host: RegistryHost): Promise<boolean> {
    return (await this.lookup(host)) !== undefined;
  }

  private async lookup(host: RegistryHost): Promise<Credentials | undefined> {
    return this.credentials === undefined ? undefined : await this.credentials(host.host);
  }

  private tokenKey(host: RegistryHost, scopes: readonly string[]): string {
    return `${hostKey(host)}|${[...scopes].sort().join(' ')}`;
  }

  private async token(host: RegistryHost, auth: Extract<HostAuth, { kind: 'bearer' }>, scopes: readonly string[], signal?: AbortSignal): Promise<CachedToken> {
    const key = this.tokenKey(host, scopes);
    const cached = this.tokens.get(key);
    if (cached !== undefined && cached.expiresAt > Date.now()) return cached;
    // Concurrent requests for one scope share one token request.
    const { value } = await this.tokenFetches.do(key, async () => {
      const token = await this.fetchToken(host, auth, scopes, signal);
      this.tokens.set(key, token);
      return token;
    });
    return value;
  }

  private async fetchToken(host: RegistryHost, auth: Extract<HostAuth, { kind: 'bearer' }>, scopes: readonly string[], signal?: AbortSignal): Promise<CachedToken> {
    let realm: URL;
    try {
      realm = new URL(auth.realm);
    } catch {
      throw new InvalidArgumentError(`registry ${host.host} sent an invalid token realm`);
    }
    const allScopes = [...new Set([...scopes, ...(auth.scope === undefined ? [] : auth.scope.split(' ').filter(Boolean))])];
    const creds = await this.lookup(host);
    // The realm may be the registry itself (Harbor, GitLab): its TLS settings apply there.
    const realmHost = realm.origin === `${host.scheme}://${host.host}` ? host : undefined;

    let res;
    if (creds?.identityToken !== undefined) {
      res = await this.postOAuth(realm, realmHost, auth, allScopes, creds, signal);
    }
    if (res === undefined) {
      const url = new URL(realm);
      if (auth.service !== undefined) url.searchParams.set('service', auth.service);
      for (const scope of allScopes) url.searchParams.append('scope', scope);
      if (creds?.username !== undefined) url.searchParams.set('account', creds.username);
      const password = creds?.password ?? creds?.identityToken;
      res = await this.http.send({
        method: 'GET',
        url,
        ...(realmHost === undefined ? {} : { host: realmHost }),
        ...(creds?.username !== undefined && password !== undefined ? { authorization: basic(creds.username, password) } : {}),
        ...(signal === undefined ? {} : { signal }),
      });
    }
    const what = `token request to ${realm.origin}${realm.pathname} for ${host.host}`;
    if (res.status === 401 || res.status === 403) {
      await res.body.dump().catch(() => undefined);
      throw creds === undefined
        ? new UnauthorizedError(`${what} was refused (${res.status}): anonymous access is not allowed; log in to ${host.host} or pass credentials`)
        : new UnauthorizedError(`${what} was refused (${res.status}): check the credentials configured for ${host.host}`);
    }
    if (res.status !== 200) {
      await res.body.dump().catch(() => undefined);
      throw new UnavailableError(`${what} failed with HTTP ${res.status}`);
    }
    const body = await readJSON(res.body, what);
    const value = typeof body['token'] === 'string' && body['token'] !== '' ? body['token'] : body['access_token'];
    if (typeof value !== 'string' || value === '') throw new UnavailableError(`${what}: the response has no token`);
    const lifetimeS = typeof body['expires_in'] === 'number' && body['expires_in'] > 0 ? body['expires_in'] : DEFAULT_TOKEN_LIFETIME_S;
    const issuedAt = typeof body['issued_at'] === 'string' ? Date.parse(body['issued_at']) : Number.NaN;
    // A server clock far off ours would make issued_at useless: trust it only when close.
    const start = Number.isFinite(issuedAt) && Math.abs(issuedAt - Date.now()) < 60_000 ? issuedAt : Date.now();
    const lifetimeMs = lifetimeS * 1000;
    log.debug({ host: host.host, scopes: allScopes, lifetimeS }, 'fetched registry token');
    return { value, expiresAt: start + Math.max(lifetimeMs - TOKEN_EXPIRY_MARGIN_MS, lifetimeMs / 2) };
  }

  /**
   * OAuth2 refresh-token grant (docker config `identitytoken`). Servers that do not
   * implement POST answer 404/405: undefined then, and the caller uses GET.
   */
  private async postOAuth(
    realm: URL,
    realmHost: RegistryHost | undefined,
    auth: Extract<HostAuth, { kind: 'bearer' }>,
    scopes: string[],
    creds: Credentials,
    signal: AbortSignal | undefined,
  ) {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken ?? '', client_id: OAUTH_CLIENT_ID });
    if (auth.service !== undefined) form.set('service', auth.service);
    if (scopes.length > 0) form.set('scope', scopes.join(' '));
    const res = await this.http.send({
      method: 'POST',
      url: realm,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: Buffer.from(form.toString()),
      ...(realmHost === undefined ? {} : { host: realmHost }),
      ...(signal === undefined ? {} : { signal }),
    });
    if (res.status === 404 || res.status === 405) {
      await res.body.dump().catch(() => undefined);
      log.debug({ request: describeRequest('POST', realm), status: res.status }, 'token server has no OAuth2 endpoint; using GET');
      return undefined;
    }
    return res;
  }
}

async function readJSON(body: Readable, what: string): Promise<Record<string, unknown>> {
  const data = await readAll(body, { maxSize: MAX_TOKEN_RESPONSE, what });
  try {
    const value: unknown = JSON.parse(data.toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new UnavailableError(`${what}: the response is not a JSON object`);
}
