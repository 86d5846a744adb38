/**
 * A real registry for tests: Debian's `docker-registry` (CNCF distribution 2.8) on
 * 127.0.0.1 with a free port, storage in a temp dir, stopped after the test. Optional
 * htpasswd (bcrypt entries made by `htpasswd -Bbn`) or token auth (test/helpers/token-server.ts),
 * and optional TLS with a self-signed certificate.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, stopChild } from '../../bench/lib/registry.js';
import { selfSignedCertificate, startTokenServer, type TokenServer, type TokenServerOptions } from './token-server.js';

export interface RegistryOptions {
  auth?: 'htpasswd' | 'token';
  /** username -> password, for htpasswd or the token server. Default `{ tester: 'secret-pw' }`. */
  users?: Record<string, string>;
  /** Extra token server options (auth: 'token'). */
  token?: Omit<TokenServerOptions, 'users'>;
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1 (its PEM is `caPath`). */
  tls?: boolean;
}

export interface TestRegistry {
  /** `127.0.0.1:<port>`: the reference domain. */
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** With tls: the certificate to trust. */
  readonly caPath: string | undefined;
  readonly storageDir: string;
  readonly logFile: string;
  readonly users: Record<string, string>;
  /** Set with auth: 'token'. */
  readonly tokenServer: TokenServer | undefined;
  /** The registry's log so far (for assertion messages). */
  logs(): string;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;

function findRegistryBinary(): string {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).concat('/usr/bin');
  for (const dir of dirs) {
    const candidate = join(dir, 'docker-registry');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new Error('docker-registry is not installed (the CNCF distribution registry): apt-get install docker-registry');
}

function htpasswdFile(dir: string, users: Record<string, string>): string {
  const lines = Object.entries(users).map(([user, password]) =>
    execFileSync('htpasswd', ['-Bbn', user, password], { encoding: 'utf8' }).trim(),
  );
  const path = join(dir, 'htpasswd');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function configYAML(params: { port: number; storage: string; auth: string; tls: string }): string {
  return `version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: ${params.storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${params.port}
  secret: layerpool-test-secret
${params.tls}${params.auth}`;
}

function tail(file: string, lines = 40): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

/** GET /v2/ with node:http(s), trusting `ca`; the status, or undefined when nothing answers. */
function probe(url: string, ca: string | undefined): Promise<number | undefined> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    const req = get(`${url}/v2/`, { timeout: 1000, ...(ca === undefined ? {} : { ca }) }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

async function waitReady(url: string, ca: string | undefined, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`docker-registry exited (${child.exitCode ?? child.signalCode}) before it answered; log:\n${tail(logFile)}`);
    }
    const status = await probe(url, ca);
    if (status === 200 || status === 401) return;
    await sleep(50);
  }
  throw new Error(`docker-registry did not answer ${url}/v2/ within ${READY_TIMEOUT_MS} ms; log:\n${tail(logFile)}`);
}

export async function startRegistry(t: TestContext, options: RegistryOptions = {}): Promise<TestRegistry> {
  const binary = findRegistryBinary();
  // Not tempDir(): the registry must be stopped before its folder is removed.
  const dir = mkdtempSync(join(tmpdir(), 'layerpool-registry-'));
  const storageDir = join(dir, 'storage');
  const logFile = join(dir, 'registry.log');
  let child: ChildProcess | undefined;
  let stopping = false;
  let crashed = false;
  const stop = async (): Promise<void> => {
    stopping = true;
    if (child !== undefined) await stopChild(child);
  };
  t.after(async () => {
    await stop();
    // The log goes with the folder: show it first when the registry died under a test.
    if (crashed) t.diagnostic(`docker-registry exited during the test; log:\n${tail(logFile)}`);
    rmSync(dir, { recursive: true, force: true });
  });

  const users = options.users ?? { tester: 'secret-pw' };
  let tokenServer: TokenServer | undefined;
  let auth = '';
  if (options.auth === 'htpasswd') {
    auth = `auth:\n  htpasswd:\n    realm: layerpool-test\n    path: ${htpasswdFile(dir, users)}\n`;
  } else if (options.auth === 'token') {
    tokenServer = await startTokenServer(t, { ...options.token, users });
    auth = `auth:\n  token:\n    realm: ${tokenServer.realm}\n    service: ${tokenServer.service}\n    issuer: ${tokenServer.issuer}\n    rootcertbundle: ${tokenServer.certPath}\n`;
  }
  let tls = '';
  let caPath: string | undefined;
  if (options.tls === true) {
    const { keyPath, certPath } = selfSignedCertificate(dir, 'registry', { ip: '127.0.0.1' });
    caPath = certPath;
    tls = `  tls:\n    certificate: ${certPath}\n    key: ${keyPath}\n`;
  }
  const ca = caPath === undefined ? undefined : readFileSync(caPath, 'utf8');

  // A port found free can be taken before the registry binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const configPath = join(dir, 'config.yml');
    writeFileSync(configPath, configYAML({ port, storage: storageDir, auth, tls }));
    const logFd = openSync(logFile, 'a');
    const started = spawn(binary, ['serve', configPath], { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    child = started;
    const url = `${caPath === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;
    try {
      await waitReady(url, ca, started, logFile);
    } catch (err) {
      await stopChild(started);
      if (attempt < 3 && /address already in use/.test(tail(logFile))) continue;
      throw err;
    }
    started.once('exit', () => {
      if (!stopping) crashed = true;
    });
    return {
      host: `127.0.0.1:${port}`,
      port,
      url,
      caPath,
      storageDir,
      logFile,
      users,
      tokenServer,
      logs: () => tail(logFile, 200),
      stop,
    };
  }
}
