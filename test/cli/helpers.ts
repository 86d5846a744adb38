/**
 * Running the real `layerpool` binary in tests: built from the repo with the project's
 * tsc into dist/ (what `npm run build` makes and package.json's `bin` names), once per
 * source state, then started as `node dist/src/cli/main.js ...`. Also: a fixture image
 * published to a real docker-registry, and a loader hook that records every module a
 * CLI process loads.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { buildPreset, type BuiltImage, type PresetName } from '../../bench/fixtures/index.js';
import { OCILayout } from '../../src/layout/layout.js';
import { native } from '../../src/native.js';
import { pushImage, RegistryResolver } from '../../src/remote/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CLI = join(REPO, 'dist', 'src', 'cli', 'main.js');
const BUILD_STAMP = join(REPO, 'dist', '.cli-test-build');
const BUILD_INPUTS = ['src', 'workers', join('bench', 'fixtures'), join('bench', 'lib')];
const BUILD_LOCK_TIMEOUT_MS = 180_000;

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? listFiles(path) : entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** What the build depends on: every source file's path, size and mtime, and the configs. */
function sourceHash(): string {
  const hash = createHash('sha256');
  for (const file of [...BUILD_INPUTS.flatMap((d) => listFiles(join(REPO, d))), join(REPO, 'package.json'), join(REPO, 'tsconfig.json')].sort()) {
    const st = statSync(file);
    hash.update(`${relative(REPO, file)}\0${st.size}\0${st.mtimeMs}\n`);
  }
  return hash.digest('hex');
}

function runTsc(config: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config], { cwd: REPO });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

/**
 * Build the CLI into dist/ unless the build there matches the sources. Emit only
 * (`noCheck`): type errors are `npm run typecheck`'s business, and other work in
 * progress must not stop these tests. Test files building at once take turns (flock).
 */
export async function buildCli(): Promise<string> {
  const hash = sourceHash();
  const fresh = () => existsSync(CLI) && existsSync(BUILD_STAMP) && readFileSync(BUILD_STAMP, 'utf8') === hash;
  if (fresh()) return CLI;
  mkdirSync(join(REPO, 'dist'), { recursive: true });
  const lockFd = openSync(join(REPO, 'dist', '.cli-test-build.lock'), 'a+');
  try {
    const deadline = Date.now() + BUILD_LOCK_TIMEOUT_MS;
    while (!native().flock(lockFd, 'ex', true)) {
      if (Date.now() > deadline) throw new Error('timed out waiting for another test process to build the CLI');
      await sleep(100);
    }
    if (fresh()) return CLI;
    const config = join(tmpdir(), `layerpool-cli-tsconfig-${process.pid}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        extends: join(REPO, 'tsconfig.json'),
        include: BUILD_INPUTS.map((d) => join(REPO, d, '**', '*.ts')),
        compilerOptions: { outDir: join(REPO, 'dist'), rootDir: REPO, noCheck: true, typeRoots: [join(REPO, 'node_modules', '@types')] },
      }),
    );
    const { code, output } = await runTsc(config).finally(() => rmSync(config, { force: true }));
    if (code !== 0 || !existsSync(CLI)) throw new Error(`building the CLI failed (tsc exit ${code}):\n${output}`);
    writeFileSync(BUILD_STAMP, hash);
    return CLI;
  } finally {
    closeSync(lockFd);
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  /** Extra node flags before the script (`--import` a hook). */
  nodeArgs?: string[];
  uid?: number;
  gid?: number;
}

/**
 * The environment of a test CLI process: no service unless the test names a socket (a
 * socket path nothing listens on), no log noise, no terminal.
 */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LAYERPOOL_SOCKET: join(tmpdir(), `layerpool-no-service-${randomBytes(6).toString('hex')}.sock`), ...extra };
  delete env['LAYERPOOL_LOG'];
  delete env['LAYERPOOL_ROOT'];
  delete env['LAYERPOOL_NO_SERVICE'];
  return env;
}

export type CliProcess = ChildProcess & {
  result: Promise<CliResult>;
  /** stdout so far. */
  output(): string;
  /** stderr so far. */
  errors(): string;
};

/** Start `layerpool <args>`; the process is killed after the test if still running. */
export function startCli(t: TestContext, args: string[], options: CliOptions = {}): CliProcess {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, ...args], {
    env: options.env ?? cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = new Promise<CliResult>((resolvePromise) => child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr })));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return Object.assign(child, { result, output: () => stdout, errors: () => stderr });
}

/** Run `layerpool <args>` to the end. */
export function runCli(t: TestContext, args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(t, args, options).result;
}

/** Run and require exit 0; the parsed JSON of stdout when `json`. */
export async function runOk(t: TestContext, args: string[], options: CliOptions = {}): Promise<CliResult> {
  const result = await runCli(t, args, options);
  if (result.code !== 0) throw new Error(`layerpool ${args.join(' ')} exited ${result.code ?? result.signal}:\n${result.stderr}\n${result.stdout}`);
  return result;
}

export async function runJSON<T>(t: TestContext, args: string[], options: CliOptions = {}): Promise<T> {
  return JSON.parse((await runOk(t, ['--json', ...args], options)).stdout) as T;
}

/** Wait until `read()` matches `pattern` (a child's output so far). */
export async function waitFor(read: () => string, pattern: RegExp, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(read())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output so far:\n${read()}`);
    await sleep(20);
  }
}

/** Fixture presets are deterministic and cached by spec hash: build once per machine. */
export const FIXTURE_DIR = join(tmpdir(), 'layerpool-cli-test-fixtures');

export interface PublishedImage {
  registry: TestRegistry;
  /** `127.0.0.1:<port>/cli/<name>:v1` */
  ref: string;
  image: BuiltImage;
}

/** Push a fixture preset's images to a registry (a new one unless given; its first user's credentials when it has auth). */
export async function publishFixture(t: TestContext, preset: PresetName = 'tiny', options: { registry?: TestRegistry; scale?: number } = {}): Promise<PublishedImage[]> {
  const registry = options.registry ?? (await startRegistry(t));
  const built = await buildPreset(preset, FIXTURE_DIR, options.scale === undefined ? {} : { scale: options.scale });
  const [user] = Object.entries(registry.users);
  const resolver = new RegistryResolver(user ? { credentials: () => ({ username: user[0], password: user[1] }) } : {});
  try {
    const published: PublishedImage[] = [];
    for (const image of built.images) {
      const ref = `${registry.host}/cli/${image.name}:v1`;
      await pushImage({ fetcher: await OCILayout.open(image.layoutDir), descriptor: image.descriptor, reference: ref, resolver });
      published.push({ registry, ref, image });
    }
    return published;
  } finally {
    await resolver.close();
  }
}

/** A fresh root with the tiny fixture pulled into it (`pullArgs` go before the reference). */
export async function pulledRoot(t: TestContext, pullArgs: string[] = []): Promise<{ root: string; published: PublishedImage }> {
  const [published] = await publishFixture(t);
  const root = tempDir(t);
  await runOk(t, ['--root', root, 'pull', ...pullArgs, (published as PublishedImage).ref]);
  return { root, published: published as PublishedImage };
}

/**
 * Start `layerpool pull` of the tiny fixture through a proxy that sends 100 bytes of each
 * layer and then nothing, and return once a layer shows as downloading: a pull to interrupt.
 */
export async function startStalledPull(t: TestContext, args: string[], options: CliOptions = {}): Promise<CliProcess> {
  const [published] = await publishFixture(t);
  const proxy = await startFaultProxy(t, (published as PublishedImage).registry);
  const layers = (published as PublishedImage).image.manifests[0]!.layers.map((l) => l.descriptor.digest);
  proxy.addFault({ method: 'GET', path: new RegExp(`/blobs/(${layers.join('|')})$`), fault: { kind: 'stall', afterBytes: 100 } });
  const pull = startCli(t, [...args, 'pull', `${proxy.host}/cli/tiny:v1`], options);
  await waitFor(pull.output, /: Downloading/, 'a layer downloading');
  return pull;
}

/** The node flags that make a CLI process append every module URL it loads to `file`. */
export function recordModulesArgs(file: string): string[] {
  return ['--import', new URL(`./fixtures/record-modules.mjs?file=${encodeURIComponent(file)}`, import.meta.url).href];
}

export function recordedModules(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}
