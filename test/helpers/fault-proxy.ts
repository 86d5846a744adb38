/**
 * An HTTP proxy on 127.0.0.1 in front of a test registry that injects faults: reset the
 * connection, cut a response after N bytes, stall, answer 5xx/429 (with Retry-After) for the first K
 * requests, lie about Content-Length, corrupt bytes, loop redirects, ignore Range, or
 * serve a replacement body. It records every request, so tests can count them per path.
 * The Host header is passed through, so the registry's Location URLs point back here.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TestContext } from 'node:test';

export type Fault =
  /** Close the connection without answering (a reset before any response). */
  | { kind: 'reset' }
  /** Answer this status (and headers/body) instead of forwarding. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Forward the headers and the first `afterBytes` body bytes, then destroy the connection. */
  | { kind: 'cut'; afterBytes: number }
  /** Forward the headers and `afterBytes` body bytes (default 0), then send nothing more. */
  | { kind: 'stall'; afterBytes?: number }
  /** Announce Content-Length off by `delta`; a positive delta ends the connection early. */
  | { kind: 'wrong-length'; delta: number }
  /** Flip the bits of the body byte at `offset` (default 0). */
  | { kind: 'corrupt'; offset?: number }
  /** 307 to the same URL, forever. */
  | { kind: 'redirect-loop' }
  /** 307 to this URL (path and query kept when it ends with `/`). */
  | { kind: 'redirect'; location: string }
  /** Drop the Range header before forwarding (a server that ignores ranges). */
  | { kind: 'ignore-range' }
  /** Serve this response instead of forwarding (chunked: without Content-Length). */
  | { kind: 'replace'; status?: number; headers: Record<string, string>; body: Buffer | string; chunked?: boolean };

export interface FaultRule {
  /** Request method to match (any when absent). */
  method?: string;
  /** Path (without query) to match: exact string or pattern. */
  path: string | RegExp;
  fault: Fault;
  /** Let this many matching requests through untouched first. Default 0. */
  skip?: number;
  /** Apply to this many matching requests, then forward normally. Default: all. */
  times?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path with query. */
  url: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The fault applied, if any. */
  fault: Fault['kind'] | undefined;
}

export interface FaultProxy {
  readonly host: string;
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Most requests that were being answered at the same time. */
  readonly maxInFlight: number;
  addFault(rule: FaultRule): void;
  clearFaults(): void;
  /** Requests whose path matches (and method, when given). */
  count(path: string | RegExp, method?: string): number;
  close(): Promise<void>;
}

interface ActiveRule extends FaultRule {
  skipped: number;
  remaining: number;
}

function matches(pattern: string | RegExp, path: string): boolean {
  return typeof pattern === 'string' ? pattern === path : pattern.test(path);
}

export async function startFaultProxy(t: TestContext, target: { url: string }): Promise<FaultProxy> {
  const upstream = new URL(target.url);
  const rules: ActiveRule[] = [];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();

  function pickFault(req: IncomingMessage, path: string): Fault | undefined {
    for (const rule of rules) {
      if (rule.remaining <= 0) continue;
      if (rule.method !== undefined && rule.method !== req.method) continue;
      if (!matches(rule.path, path)) continue;
      if (rule.skipped < (rule.skip ?? 0)) {
        rule.skipped++;
        continue;
      }
      rule.remaining--;
      return rule.fault;
    }
    return undefined;
  }

  function forward(req: IncomingMessage, res: ServerResponse, fault: Fault | undefined): void {
    const headers = { ...req.headers };
    if (fault?.kind === 'ignore-range') delete headers.range;
    const out = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (upstreamRes) => respond(upstreamRes, res, fault),
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  }

  function respond(upstreamRes: IncomingMessage, res: ServerResponse, fault: Fault | undefined): void {
    const headers = { ...upstreamRes.headers };
    const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
    if (fault?.kind === 'wrong-length' && length !== undefined) headers['content-length'] = String(Math.max(0, length + fault.delta));
    res.writeHead(upstreamRes.statusCode ?? 502, headers);
    res.flushHeaders();
    let sent = 0;
    const limit = fault?.kind === 'cut' ? fault.afterBytes : fault?.kind === 'stall' ? (fault.afterBytes ?? 0) : undefined;
    const shortBy = fault?.kind === 'wrong-length' && fault.delta < 0 ? -fault.delta : 0;
    upstreamRes.on('data', (chunk: Buffer) => {
      let data = chunk;
      if (fault?.kind === 'corrupt') {
        const at = (fault.offset ?? 0) - sent;
        if (at >= 0 && at < data.length) {
          data = Buffer.from(data);
          data[at] = (data[at] as number) ^ 0xff;
        }
      }
      if (limit !== undefined && sent + data.length > limit) data = data.subarray(0, Math.max(0, limit - sent));
      if (length !== undefined && shortBy > 0) data = data.subarray(0, Math.max(0, length - shortBy - sent));
      sent += data.length;
      if (fault?.kind === 'cut' && sent >= fault.afterBytes) {
        upstreamRes.destroy();
        // Close only once the bytes are handed to the kernel, so exactly afterBytes arrive.
        res.write(data, () => res.socket?.end());
        return;
      }
      if (data.length > 0) res.write(data);
    });
    upstreamRes.on('end', () => {
      if (fault?.kind === 'stall') return;
      if (fault?.kind === 'cut') {
        res.socket?.end();
        return;
      }
      // A longer announced length than sent: end the connection so the client sees EOF.
      if (fault?.kind === 'wrong-length' && fault.delta > 0) res.destroy();
      else res.end();
    });
  }

  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0] as string;
    const fault = pickFault(req, path);
    requests.push({ method: req.method ?? 'GET', url, path, headers: req.headers, fault: fault?.kind });
    switch (fault?.kind) {
      case 'reset':
        req.socket.destroy();
        return;
      case 'status':
        req.resume();
        res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
        res.end(fault.body ?? JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `fault proxy: ${fault.status}` }] }));
        return;
      case 'redirect-loop':
        req.resume();
        res.writeHead(307, { location: url, 'content-length': '0' });
        res.end();
        return;
      case 'redirect': {
        req.resume();
        const location = fault.location.endsWith('/') ? `${fault.location.slice(0, -1)}${url}` : fault.location;
        res.writeHead(307, { location, 'content-length': '0' });
        res.end();
        return;
      }
      case 'replace': {
        req.resume();
        const body = Buffer.from(fault.body);
        res.writeHead(fault.status ?? 200, { ...(fault.chunked === true ? {} : { 'content-length': String(body.length) }), ...fault.headers });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      default:
        forward(req, res, fault);
    }
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const proxy: FaultProxy = {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    get maxInFlight() {
      return maxInFlight;
    },
    addFault: (rule) => rules.push({ ...rule, skipped: 0, remaining: rule.times ?? Number.POSITIVE_INFINITY }),
    clearFaults: () => {
      rules.length = 0;
    },
    count: (path, method) => requests.filter((r) => matches(path, r.path) && (method === undefined || r.method === method)).length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  t.after(() => proxy.close());
  return proxy;
}
