/**
 * A Docker registry token server for tests (the distribution token auth spec), on
 * 127.0.0.1. It signs ES256 JWTs with a key whose self-signed certificate the registry
 * trusts (`auth.token.rootcertbundle`); the certificate rides in the JWT header's `x5c`,
 * which is how distribution 2.8 finds the signing key.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { tempDir } from './tmp.js';

export interface TokenServerOptions {
  /** username -> password accepted with Basic auth. */
  users?: Record<string, string>;
  /** OAuth2 refresh tokens (docker config `identitytoken`) -> username. */
  refreshTokens?: Record<string, string>;
  /** Grant `pull` to anonymous requests (a public repository). Default false. */
  anonymousPull?: boolean;
  /** `expires_in` of issued tokens, seconds. Default 300. */
  expiresIn?: number;
  service?: string;
  issuer?: string;
}

export interface TokenRequest {
  method: string;
  scopes: string[];
  account: string | undefined;
  /** The user the request authenticated as, if any. */
  user: string | undefined;
  status: number;
}

export interface TokenServer {
  /** The realm URL the registry sends in its challenge. */
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** PEM certificate for the registry's `rootcertbundle`. */
  readonly certPath: string;
  readonly requests: TokenRequest[];
  /** While true every request gets a 500. */
  failing: boolean;
  close(): Promise<void>;
}

const base64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

interface Access {
  type: string;
  name: string;
  actions: string[];
}

/**
 * An EC P-256 key and its self-signed certificate (for an IP address when `ip` is
 * given), made by openssl: node:crypto cannot issue certificates.
 */
export function selfSignedCertificate(dir: string, name: string, options: { ip?: string } = {}): { keyPath: string; certPath: string } {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  const san = options.ip === undefined ? [] : ['-addext', `subjectAltName=IP:${options.ip}`];
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', `/CN=${name}`, ...san],
    { stdio: 'pipe' },
  );
  return { keyPath, certPath };
}

export async function startTokenServer(t: TestContext, options: TokenServerOptions = {}): Promise<TokenServer> {
  const dir = tempDir(t, 'layerpool-token-');
  const { keyPath, certPath } = selfSignedCertificate(dir, 'layerpool-test-token');
  const key: KeyObject = createPrivateKey(readFileSync(keyPath));
  const certDER = Buffer.from(new X509Certificate(readFileSync(certPath)).raw);
  const service = options.service ?? 'layerpool-test-registry';
  const issuer = options.issuer ?? 'layerpool-test-issuer';
  const users = options.users ?? {};
  const refreshTokens = options.refreshTokens ?? {};
  const expiresIn = options.expiresIn ?? 300;
  const requests: TokenRequest[] = [];

  function issue(user: string | undefined, scopes: string[]): string {
    const access: Access[] = [];
    for (const scope of scopes) {
      const [type, name, actions] = scope.split(':');
      if (type !== 'repository' || name === undefined || actions === undefined) continue;
      const wanted = actions.split(',');
      const granted = user !== undefined ? wanted : options.anonymousPull ? wanted.filter((a) => a === 'pull') : [];
      if (granted.length > 0) access.push({ type, name, actions: granted });
    }
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDER.toString('base64')] };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + expiresIn, nbf: now - 1, iat: now, jti: randomUUID(), access };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
    return `${signingInput}.${base64url(signature)}`;
  }

  function basicUser(req: IncomingMessage): string | undefined | null {
    const header = req.headers.authorization;
    if (header === undefined) return undefined;
    const match = /^Basic (.+)$/i.exec(header);
    if (!match) return null;
    const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = decoded.slice(0, colon);
    return colon > 0 && users[user] !== undefined && users[user] === decoded.slice(colon + 1) ? user : null;
  }

  async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record: TokenRequest = { method: req.method ?? 'GET', scopes: [], account: undefined, user: undefined, status: 200 };
    requests.push(record);
    const reply = (status: number, body: object): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (server.failing) return reply(500, { errors: [{ code: 'UNKNOWN', message: 'token server failing on purpose' }] });
    if (url.pathname !== '/token') return reply(404, { errors: [{ code: 'NOT_FOUND' }] });

    if (req.method === 'POST') {
      // OAuth2 (docker config identitytoken): grant_type=refresh_token or password.
      const form = await readForm(req);
      record.scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      let user: string | undefined;
      if (form.get('grant_type') === 'refresh_token') user = refreshTokens[form.get('refresh_token') ?? ''];
      else if (form.get('grant_type') === 'password') {
        const name = form.get('username') ?? '';
        if (users[name] !== undefined && users[name] === form.get('password')) user = name;
      }
      if (user === undefined) return reply(401, { error: 'invalid_grant' });
      record.user = user;
      return reply(200, { access_token: issue(user, record.scopes), expires_in: expiresIn, issued_at: new Date().toISOString() });
    }

    record.scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    record.account = url.searchParams.get('account') ?? undefined;
    if (url.searchParams.get('service') !== service) return reply(400, { errors: [{ code: 'INVALID_SERVICE' }] });
    const user = basicUser(req);
    if (user === null) return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] });
    record.user = user;
    const token = issue(user, record.scopes);
    reply(200, { token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() });
  }

  const httpServer = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = httpServer.address() as AddressInfo;

  const server: TokenServer = {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPath,
    requests,
    failing: false,
    close: () =>
      new Promise<void>((resolve) => {
        httpServer.closeAllConnections();
        httpServer.close(() => resolve());
      }),
  };
  t.after(() => server.close());
  return server;
}
