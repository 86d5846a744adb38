/**
 * A private registry for benchmarks and stress runs: Debian's `docker-registry` (CNCF
 * distribution 2.8) on 127.0.0.1 with a free port, storage in a folder the caller
 * chooses (a real disk, not tmpfs, next to the roots that pull from it), and a JSON log
 * from which `blobTraffic` counts what was served. Plain HTTP, no auth: the benchmarks
 * measure the pull path, not TLS or token round trips.
 *
 * test/helpers/registry.ts starts the same server for tests (tied to node:test's
 * TestContext, with auth and TLS options) on `freePort` and `stopChild` from here; this
 * one is stopped by its owner. `layerpool demo` uses it too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnavailableError } from '../../src/errors.js';

export const REGISTRY_DEFAULTS = { readyTimeoutMs: 15_000, stopTimeoutMs: 5_000, binary: 'docker-registry' } as const;

export interface BenchRegistry {
  /** `127.0.0.1:<port>`: the reference domain. */
  readonly host: string;
  readonly storageDir: string;
  readonly logFile: string;
  /** Where the log ends now: pass it to `blobTraffic` to count only what comes after. */
  logOffset(): number;
  /** Blob GETs served since `fromOffset`, by digest. */
  blobTraffic(fromOffset?: number): Map<string, BlobTraffic>;
  stop(): Promise<void>;
}

export interface BlobTraffic {
  /** GET requests answered 200 or 206 (a parallel ranged fetch is several). */
  gets: number;
  /** Body bytes the registry wrote for them. */
  bytes: number;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** GET `url`: the status, or undefined when nothing answers. */
export function probeStatus(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = httpGet(url, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/** SIGTERM, then SIGKILL after `timeoutMs`; resolves once the process is gone. */
export async function stopChild(child: ChildProcess, timeoutMs: number = REGISTRY_DEFAULTS.stopTimeoutMs): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

function configYAML(port: number, storageDir: string): string {
  // The access log is off: the JSON "response completed" lines carry method, URI, status
  // and bytes written, which is all blobTraffic needs.
  return `version: 0.1
log:
  level: info
  formatter: json
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${storageDir}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
  secret: layerpool-bench-secret
`;
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

const BLOB_URI = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/;

function parseTraffic(text: string): Map<string, BlobTraffic> {
  const traffic = new Map<string, BlobTraffic>();
  for (const line of text.split('\n')) {
    if (!line.includes('"http.request.method":"GET"') || !line.includes('/blobs/')) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const status = entry['http.response.status'];
    const match = BLOB_URI.exec(String(entry['http.request.uri'] ?? ''));
    if (!match || (status !== 200 && status !== 206)) continue;
    const digest = match[1] as string;
    const seen = traffic.get(digest) ?? { gets: 0, bytes: 0 };
    seen.gets += 1;
    seen.bytes += Number(entry['http.response.written'] ?? 0);
    traffic.set(digest, seen);
  }
  return traffic;
}

/** Start a registry storing blobs under `dir/storage` and logging to `dir/registry.log`. */
export async function startRegistry(options: { dir: string; binary?: string }): Promise<BenchRegistry> {
  const storageDir = join(options.dir, 'storage');
  const logFile = join(options.dir, 'registry.log');
  const configPath = join(options.dir, 'config.yml');
  mkdirSync(storageDir, { recursive: true });
  const binary = options.binary ?? REGISTRY_DEFAULTS.binary;

  // A port found free can be taken before the registry binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    writeFileSync(configPath, configYAML(port, storageDir));
    const logFd = openSync(logFile, 'a');
    const child = spawn(binary, ['serve', configPath], { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    const spawned = await new Promise<Error | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', resolve);
    });
    if (spawned) throw new UnavailableError(`cannot start ${binary} (apt-get install docker-registry): ${spawned.message}`);
    const deadline = Date.now() + REGISTRY_DEFAULTS.readyTimeoutMs;
    let ready = false;
    while (!ready && Date.now() < deadline && child.exitCode === null) {
      ready = (await probeStatus(`http://127.0.0.1:${port}/v2/`)) === 200;
      if (!ready) await sleep(50);
    }
    if (!ready) {
      await stopChild(child);
      if (attempt < 3 && /address already in use/.test(tail(logFile))) continue;
      throw new UnavailableError(`docker-registry did not answer on 127.0.0.1:${port}; log:\n${tail(logFile)}`);
    }
    return {
      host: `127.0.0.1:${port}`,
      storageDir,
      logFile,
      logOffset: () => statSync(logFile).size,
      blobTraffic: (fromOffset = 0) => parseTraffic(readFileSync(logFile).subarray(fromOffset).toString('utf8')),
      stop: () => stopChild(child),
    };
  }
}
