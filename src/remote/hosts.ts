/**
 * Which servers answer for a registry domain, with containerd's `hosts.toml` semantics:
 * `<hostsDir>/<host>/hosts.toml` (or `<host>_<port>_/`, or `_default/`) lists mirrors
 * (`[host."https://mirror"]`, tried in file order) and the upstream `server`, each with
 * capabilities (pull, resolve, push), TLS settings and extra headers. Without a file the
 * domain itself is the only host (docker.io is served by registry-1.docker.io).
 *
 * Plain HTTP: loopback hosts (localhost, 127.0.0.0/8, ::1) and hosts listed in
 * `plainHTTP` are reached over http://, as Docker treats them as insecure registries by
 * default; a hosts.toml entry written with `http://` is too. Everything else is https.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { parse as parseTOML } from 'smol-toml';
import { InvalidArgumentError } from '../errors.js';
import { DOCKER_HUB_DOMAIN, registryAPIHost } from '../reference.js';

export type HostCapability = 'pull' | 'resolve' | 'push';
const ALL_CAPABILITIES: readonly HostCapability[] = ['pull', 'resolve', 'push'];

export interface HostTLS {
  /** CA certificates (PEM) trusted in addition to Node's bundled roots. */
  ca: string[];
  /** Client certificate chains with their keys (PEM). */
  clientCerts: { cert: string; key: string }[];
  /** false when `skip_verify = true`. */
  verify: boolean;
}

/** One server that can answer registry API calls for a domain. */
export interface RegistryHost {
  scheme: 'http' | 'https';
  /** `host[:port]`, as in a URL authority. */
  host: string;
  /** API root: `/v2`, or the configured path with `override_path`. */
  path: string;
  capabilities: ReadonlySet<HostCapability>;
  /** Extra headers sent on every request to this host. */
  headers: Record<string, string[]>;
  /** Custom TLS settings; undefined means Node's defaults. */
  tls: HostTLS | undefined;
}

/** The hosts of a registry domain, mirrors first and the upstream server last. */
export type RegistryHosts = (domain: string) => Promise<RegistryHost[]>;

export interface HostsOptions {
  /** containerd's hosts directory (`/etc/containerd/certs.d` style). */
  hostsDir?: string;
  /** Hosts (`host` or `host:port`) reached over plain HTTP, besides loopback ones. */
  plainHTTP?: readonly string[];
}

function hostname(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']'));
  const colon = authority.lastIndexOf(':');
  return colon === -1 ? authority : authority.slice(0, colon);
}

function isLoopback(authority: string): boolean {
  const name = hostname(authority).toLowerCase();
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

function defaultScheme(authority: string, plainHTTP: readonly string[]): 'http' | 'https' {
  if (isLoopback(authority)) return 'http';
  return plainHTTP.includes(authority) || plainHTTP.includes(hostname(authority)) ? 'http' : 'https';
}

/** containerd's hostDirectory: `host:port` is looked up as `host_port_` first (`:` is awkward in paths). */
function hostDirCandidates(root: string, domain: string): string[] {
  const colon = domain.lastIndexOf(':');
  const dirs = colon > 0 && !domain.endsWith(']') ? [join(root, `${domain.slice(0, colon)}_${domain.slice(colon + 1)}_`)] : [];
  return [...dirs, join(root, domain), join(root, '_default')];
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The upstream host for a domain when nothing is configured. */
function defaultHost(domain: string, plainHTTP: readonly string[] = []): RegistryHost {
  const host = registryAPIHost(domain);
  return {
    scheme: domain === DOCKER_HUB_DOMAIN ? 'https' : defaultScheme(host, plainHTTP),
    host,
    path: '/v2',
    capabilities: new Set(ALL_CAPABILITIES),
    headers: {},
    tls: undefined,
  };
}

/** A RegistryHosts function for the given hosts directory and plain-HTTP list. */
export function configureHosts(options: HostsOptions = {}): RegistryHosts {
  const plainHTTP = options.plainHTTP ?? [];
  return async (domain) => {
    if (options.hostsDir !== undefined) {
      for (const dir of hostDirCandidates(options.hostsDir, domain)) {
        if (await isDirectory(dir)) return loadHostDir(dir, domain, plainHTTP);
      }
    }
    return [defaultHost(domain, plainHTTP)];
  };
}

async function loadHostDir(dir: string, domain: string, plainHTTP: readonly string[]): Promise<RegistryHost[]> {
  const file = join(dir, 'hosts.toml');
  const text = await readOptional(file);
  if (text === undefined) {
    // Docker's certs.d layout: *.crt are CAs, *.cert + *.key are client pairs.
    const upstream = defaultHost(domain, plainHTTP);
    upstream.tls = await loadCertFiles(dir);
    return [upstream];
  }
  return parseHostsFile(text, { domain, baseDir: dir, plainHTTP, file });
}

async function loadCertFiles(dir: string): Promise<HostTLS | undefined> {
  const names = (await readdir(dir)).sort();
  const tls: HostTLS = { ca: [], clientCerts: [], verify: true };
  for (const name of names) {
    if (name.endsWith('.crt')) tls.ca.push(await readFile(join(dir, name), 'utf8'));
    if (name.endsWith('.cert')) {
      const key = await readOptional(join(dir, `${name.slice(0, -'.cert'.length)}.key`));
      if (key === undefined) throw new InvalidArgumentError(`client certificate ${join(dir, name)} has no matching .key file`);
      tls.clientCerts.push({ cert: await readFile(join(dir, name), 'utf8'), key });
    }
  }
  return tls.ca.length > 0 || tls.clientCerts.length > 0 ? tls : undefined;
}

interface HostFileEntry {
  capabilities?: unknown;
  ca?: unknown;
  client?: unknown;
  skip_verify?: unknown;
  header?: unknown;
  override_path?: unknown;
}

export interface ParseHostsOptions {
  /** The reference domain the file configures (the default server). */
  domain: string;
  /** Relative certificate paths are resolved against it. */
  baseDir: string;
  plainHTTP?: readonly string[];
  /** For error messages. */
  file?: string;
}

/** Parse a hosts.toml: its `[host."..."]` entries in file order, then the upstream server. */
export async function parseHostsFile(text: string, options: ParseHostsOptions): Promise<RegistryHost[]> {
  const where = options.file ?? 'hosts.toml';
  let doc: Record<string, unknown>;
  try {
    doc = parseTOML(text) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidArgumentError(`${where}: ${(err as Error).message}`);
  }
  const plainHTTP = options.plainHTTP ?? [];
  const hosts: RegistryHost[] = [];
  const table = doc['host'];
  if (table !== undefined) {
    if (typeof table !== 'object' || table === null || Array.isArray(table)) throw new InvalidArgumentError(`${where}: [host] must be a table`);
    // smol-toml keeps keys in document order, which is the order mirrors are tried in.
    for (const [server, entry] of Object.entries(table as Record<string, unknown>)) {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new InvalidArgumentError(`${where}: host."${server}" must be a table`);
      hosts.push(await hostEntry(server, entry as HostFileEntry, { ...options, plainHTTP, where }));
    }
  }
  const server = doc['server'];
  if (server !== undefined && typeof server !== 'string') throw new InvalidArgumentError(`${where}: server must be a string`);
  let upstream = server;
  if (upstream === undefined || upstream === '') {
    const fallback = defaultHost(options.domain, plainHTTP);
    upstream = `${fallback.scheme}://${fallback.host}`;
  }
  // The top-level keys (capabilities, ca, header, ...) configure the upstream server.
  hosts.push(await hostEntry(upstream, doc as HostFileEntry, { ...options, plainHTTP, where }));
  return hosts;
}

async function hostEntry(
  server: string,
  entry: HostFileEntry,
  options: ParseHostsOptions & { plainHTTP: readonly string[]; where: string },
): Promise<RegistryHost> {
  const { where } = options;
  const what = `${where}: host "${server}"`;
  const overridePath = entry.override_path === true;
  const withScheme = /^https?:\/\//.test(server) ? server : `${defaultScheme(server.split('/', 1)[0] as string, options.plainHTTP)}://${server}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new InvalidArgumentError(`${what}: not a valid URL`);
  }
  let path = url.pathname.replace(/\/+$/, '');
  // containerd: the API root is <path>/v2 unless override_path says the path is the root.
  if (!overridePath && !path.endsWith('/v2')) path = `${path}/v2`;

  let capabilities: Set<HostCapability>;
  if (entry.capabilities === undefined) capabilities = new Set(ALL_CAPABILITIES);
  else {
    if (!Array.isArray(entry.capabilities)) throw new InvalidArgumentError(`${what}: capabilities must be a list`);
    capabilities = new Set();
    for (const c of entry.capabilities) {
      const name = String(c).toLowerCase();
      if (!ALL_CAPABILITIES.includes(name as HostCapability)) throw new InvalidArgumentError(`${what}: unknown capability ${JSON.stringify(c)}`);
      capabilities.add(name as HostCapability);
    }
  }

  const headers: Record<string, string[]> = {};
  if (entry.header !== undefined) {
    if (typeof entry.header !== 'object' || entry.header === null || Array.isArray(entry.header)) throw new InvalidArgumentError(`${what}: header must be a table`);
    for (const [name, value] of Object.entries(entry.header)) {
      const values = Array.isArray(value) ? value : [value];
      if (!values.every((v) => typeof v === 'string')) throw new InvalidArgumentError(`${what}: header ${name} must be a string or a list of strings`);
      headers[name.toLowerCase()] = values as string[];
    }
  }

  return {
    scheme: url.protocol === 'http:' ? 'http' : 'https',
    host: url.host,
    path,
    capabilities,
    headers,
    tls: await hostTLS(entry, options.baseDir, what),
  };
}

function stringList(value: unknown, what: string): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (!list.every((v) => typeof v === 'string')) throw new InvalidArgumentError(`${what} must be a path or a list of paths`);
  return list as string[];
}

async function hostTLS(entry: HostFileEntry, baseDir: string, what: string): Promise<HostTLS | undefined> {
  if (entry.ca === undefined && entry.client === undefined && entry.skip_verify === undefined) return undefined;
  if (entry.skip_verify !== undefined && typeof entry.skip_verify !== 'boolean') throw new InvalidArgumentError(`${what}: skip_verify must be true or false`);
  const read = (p: string): Promise<string> => readFile(isAbsolute(p) ? p : join(baseDir, p), 'utf8');
  const tls: HostTLS = { ca: [], clientCerts: [], verify: entry.skip_verify !== true };
  if (entry.ca !== undefined) {
    for (const path of stringList(entry.ca, `${what}: ca`)) tls.ca.push(await read(path));
  }
  if (entry.client !== undefined) {
    // A path (cert and key in one PEM file), a list of such paths, or a list of [cert, key] pairs.
    const items = Array.isArray(entry.client) ? entry.client : [entry.client];
    for (const item of items) {
      if (typeof item === 'string') {
        const pem = await read(item);
        tls.clientCerts.push({ cert: pem, key: pem });
      } else if (Array.isArray(item) && item.length === 2 && item.every((p) => typeof p === 'string')) {
        tls.clientCerts.push({ cert: await read(item[0] as string), key: await read(item[1] as string) });
      } else {
        throw new InvalidArgumentError(`${what}: client must be a path, a list of paths or a list of [cert, key] pairs`);
      }
    }
  }
  return tls;
}

/** TLS connect options for undici: extra CAs are added to Node's roots, not put in their place. */
export function tlsConnectOptions(tls: HostTLS | undefined): { ca?: string[]; cert?: string[]; key?: string[]; rejectUnauthorized: boolean } {
  if (tls === undefined) return { rejectUnauthorized: true };
  const options: { ca?: string[]; cert?: string[]; key?: string[]; rejectUnauthorized: boolean } = { rejectUnauthorized: tls.verify };
  if (tls.ca.length > 0) options.ca = [...rootCertificates, ...tls.ca];
  if (tls.clientCerts.length > 0) {
    options.cert = tls.clientCerts.map((c) => c.cert);
    options.key = tls.clientCerts.map((c) => c.key);
  }
  return options;
}

/** Whether a request to `host` for `domain` goes through a mirror (containerd's isProxy). */
export function isMirror(host: RegistryHost, domain: string): boolean {
  return host.host !== registryAPIHost(domain);
}
