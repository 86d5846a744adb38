/**
 * Registry credentials: a caller's function, or Docker's `config.json`
 * (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): `credHelpers` per host,
 * then `credsStore`, then `auths` (base64 `auth`, or `username`/`password`, or
 * `identitytoken`). Helpers are `docker-credential-<name> get` with the server URL on
 * stdin and `{"Username", "Secret"}` on stdout, as the docker CLI runs them.
 *
 * Secrets never appear in errors or logs: messages name the host and the helper only.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, UnavailableError } from '../errors.js';
import { DOCKER_HUB_API_HOST, DOCKER_HUB_DOMAIN } from '../reference.js';

export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (docker config `identitytoken`), exchanged at the token server. */
  identityToken?: string;
}

/** Credentials for a registry host (`host[:port]`), or undefined for anonymous access. */
export type CredentialsProvider = (host: string) => Promise<Credentials | undefined> | Credentials | undefined;

export interface DockerConfigOptions {
  /** Folder holding config.json; default `$DOCKER_CONFIG`, else `~/.docker`. */
  configDir?: string;
  /** Environment for the default folder and the helpers' PATH; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** A credential helper that takes longer is an error. Default 30 s. */
  helperTimeoutMs?: number;
}

const DOCKER_CONFIG_DEFAULTS = { helperTimeoutMs: 30_000 };

/** Docker Hub's credentials are stored under its legacy index URL. */
const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';
const DOCKER_HUB_ALIASES = new Set([DOCKER_HUB_DOMAIN, 'index.docker.io', DOCKER_HUB_API_HOST]);
// docker-credential-helpers' errCredentialsNotFoundMessage.
const HELPER_NOT_FOUND = 'credentials not found in native keychain';

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** The server URL Docker stores a host's credentials under. */
function serverKey(host: string): string {
  return DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB_SERVER : host;
}

/** docker's ConvertToHostname: `https://host:5000/v1/` -> `host:5000`. */
function toHostname(key: string): string {
  const bare = key.replace(/^[a-z]+:\/\//i, '');
  return bare.split('/', 1)[0] as string;
}

function fromAuthEntry(entry: AuthEntry, what: string): Credentials | undefined {
  const creds: Credentials = {};
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new InvalidArgumentError(`${what}: "auth" is not base64 of username:password`);
    creds.username = decoded.slice(0, colon);
    creds.password = decoded.slice(colon + 1);
  } else {
    if (typeof entry.username === 'string' && entry.username !== '') creds.username = entry.username;
    if (typeof entry.password === 'string' && entry.password !== '') creds.password = entry.password;
  }
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') creds.identityToken = entry.identitytoken;
  return creds.username !== undefined || creds.identityToken !== undefined ? creds : undefined;
}

/** Run `docker-credential-<helper> get`; undefined when the helper has nothing for the server. */
async function runHelper(helper: string, server: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Credentials | undefined> {
  const program = `docker-credential-${helper}`;
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) throw new InvalidArgumentError(`invalid credential helper name ${JSON.stringify(helper)}`);
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(new UnavailableError(`credential helper ${program} cannot run: ${e.code === 'ENOENT' ? 'not found on PATH' : e.message}`)),
    );
    child.on('close', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
    // A helper may exit without reading its stdin (it knows nothing of this server, or
    // failed early): the write then fails with EPIPE, which its exit code already reports.
    child.stdin.on('error', () => undefined);
    child.stdin.end(server);
  });
  if (code !== 0) {
    if (stdout.includes(HELPER_NOT_FOUND) || stderr.includes(HELPER_NOT_FOUND)) return undefined;
    // stderr only, first line: stdout could hold a secret.
    const reason = stderr.trim().split('\n', 1)[0]?.slice(0, 200) || `exit code ${String(code)}`;
    throw new UnavailableError(`credential helper ${program} failed for ${server}: ${reason}`);
  }
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(stdout) as { Username?: unknown; Secret?: unknown };
  } catch {
    throw new UnavailableError(`credential helper ${program} printed something that is not JSON for ${server}`);
  }
  if (typeof parsed.Secret !== 'string' || parsed.Secret === '') return undefined;
  const username = typeof parsed.Username === 'string' ? parsed.Username : '';
  // The docker CLI's convention for identity tokens.
  if (username === '<token>') return { identityToken: parsed.Secret };
  return { username, password: parsed.Secret };
}

/** Credentials from Docker's config.json (re-read on every call, so `docker login` takes effect). */
export function dockerConfigCredentials(options: DockerConfigOptions = {}): CredentialsProvider {
  const env = options.env ?? process.env;
  const timeoutMs = options.helperTimeoutMs ?? DOCKER_CONFIG_DEFAULTS.helperTimeoutMs;
  const configDir = options.configDir ?? env['DOCKER_CONFIG'] ?? join(env['HOME'] ?? homedir(), '.docker');
  const file = join(configDir, 'config.json');

  return async (host) => {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let config: DockerConfigFile;
    try {
      config = JSON.parse(text) as DockerConfigFile;
    } catch {
      throw new InvalidArgumentError(`${file} is not valid JSON`);
    }
    const server = serverKey(host);
    const helper = config.credHelpers?.[server] ?? config.credHelpers?.[host];
    if (helper !== undefined) return runHelper(helper, server, env, timeoutMs);
    if (config.credsStore !== undefined && config.credsStore !== '') {
      const stored = await runHelper(config.credsStore, server, env, timeoutMs);
      if (stored !== undefined) return stored;
    }
    const auths = config.auths ?? {};
    const entry = auths[server] ?? Object.entries(auths).find(([key]) => toHostname(key) === toHostname(server))?.[1];
    return entry === undefined ? undefined : fromAuthEntry(entry, `${file} auths["${server}"]`);
  };
}
