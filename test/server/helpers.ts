/**
 * `layerpool serve` for tests: started from the real binary on a socket in a temp dir,
 * stopped (SIGTERM) after the test; and a proxy that holds blob downloads back so that
 * pulls overlap.
 */
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { tempDir } from '../helpers/tmp.js';
import { cliEnv, startCli, waitFor, type CliOptions, type CliProcess, type CliResult } from '../cli/helpers.js';

export interface TestService {
  socket: string;
  root: string;
  process: CliProcess;
  /** SIGTERM, then the exit. */
  stop(): Promise<CliResult>;
  /** Options that make a CLI process talk to this service. */
  client: CliOptions;
}

export async function startService(t: TestContext, options: { root?: string; socket?: string; args?: string[] } = {}): Promise<TestService> {
  const root = options.root ?? tempDir(t, 'layerpool-service-root-');
  const socket = options.socket ?? join(tempDir(t, 'layerpool-service-'), 'run', 'layerpool.sock');
  const env = cliEnv({ LAYERPOOL_SOCKET: socket });
  const serve = startCli(t, ['--root', root, 'serve', ...(options.args ?? [])], { env });
  await waitFor(() => serve.output() + serve.errors(), /serving|layerpool: /, 'the service to listen');
  if (!serve.output().includes('serving')) throw new Error(`layerpool serve failed: ${serve.errors()}`);
  return {
    socket,
    root,
    process: serve,
    client: { env },
    stop: async () => {
      serve.kill('SIGTERM');
      return serve.result;
    },
  };
}

/**
 * An HTTP proxy that forwards everything to `target`, holding back requests whose path
 * matches for `delayMs` first (a slow link, so that two pulls are in flight together).
 */
export async function startDelayProxy(t: TestContext, target: { url: string }, options: { path: RegExp; delayMs: number }): Promise<{ host: string; url: string }> {
  const upstream = new URL(target.url);
  const server = createServer((req, res) => {
    const forward = () => {
      const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      });
      out.on('error', () => res.destroy());
      req.pipe(out);
    };
    if (options.path.test((req.url ?? '').split('?', 1)[0] as string)) setTimeout(forward, options.delayMs);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const { port } = server.address() as AddressInfo;
  return { host: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}` };
}
