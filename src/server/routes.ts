/**
 * The wire form of the service API: one route per LayerpoolAPI method. GET and DELETE
 * carry their params in the query string (typed by the route's schema), POST in a JSON
 * body. Shared by the server (decode) and the client (encode), so both sides agree by
 * construction. `pull` answers NDJSON and `readContent` raw bytes; every other route a
 * JSON value, and every error `{"error": {"code", "message"}}` with an HTTP status that
 * matches its kind.
 */
import { ErrorCode, InvalidArgumentError } from '../errors.js';
import type { LayerpoolAPI } from './types.js';

/** The header naming the namespace a request is for; the service refuses others than its own. */
export const NAMESPACE_HEADER = 'x-layerpool-namespace';

type ParamType = 'string' | 'string[]' | 'boolean' | 'number' | 'labels';

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  params: Readonly<Record<string, ParamType>>;
  /** Params a call must have. */
  required?: readonly string[];
}

export type MethodName = Exclude<keyof LayerpoolAPI, 'close'>;

const snapshotter = { snapshotter: 'string' } as const;

export const ROUTES: Readonly<Record<MethodName, Route>> = {
  info: { method: 'GET', path: '/v1/info', params: {} },
  pull: {
    method: 'POST',
    path: '/v1/pull',
    required: ['ref'],
    params: {
      ref: 'string',
      platform: 'string',
      allPlatforms: 'boolean',
      snapshotter: 'string',
      maxConcurrentDownloads: 'number',
      discardContent: 'boolean',
      syncFs: 'boolean',
      unpack: 'boolean',
    },
  },
  push: { method: 'POST', path: '/v1/push', params: { ref: 'string', source: 'string' }, required: ['ref'] },
  listImages: { method: 'GET', path: '/v1/images', params: { filters: 'string[]' } },
  inspectImage: { method: 'GET', path: '/v1/images/inspect', params: { name: 'string', platform: 'string', ...snapshotter }, required: ['name'] },
  deleteImage: { method: 'DELETE', path: '/v1/images', params: { name: 'string', sync: 'boolean' }, required: ['name'] },
  imageUsage: { method: 'GET', path: '/v1/images/usage', params: { names: 'string[]' } },
  listContent: { method: 'GET', path: '/v1/content', params: { filters: 'string[]' } },
  readContent: { method: 'GET', path: '/v1/content/blob', params: { digest: 'string' }, required: ['digest'] },
  deleteContent: { method: 'DELETE', path: '/v1/content', params: { digest: 'string' }, required: ['digest'] },
  pruneContent: { method: 'POST', path: '/v1/content/prune', params: {} },
  listSnapshots: { method: 'GET', path: '/v1/snapshots', params: { ...snapshotter, filters: 'string[]' } },
  snapshotUsage: { method: 'GET', path: '/v1/snapshots/usage', params: { ...snapshotter, key: 'string' } },
  snapshotMounts: { method: 'GET', path: '/v1/snapshots/mounts', params: { ...snapshotter, key: 'string' }, required: ['key'] },
  viewSnapshot: { method: 'POST', path: '/v1/snapshots/view', params: { ...snapshotter, key: 'string', parent: 'string', labels: 'labels' }, required: ['key', 'parent'] },
  removeSnapshot: { method: 'DELETE', path: '/v1/snapshots', params: { ...snapshotter, key: 'string' }, required: ['key'] },
  listLeases: { method: 'GET', path: '/v1/leases', params: { filters: 'string[]' } },
  createLease: { method: 'POST', path: '/v1/leases', params: { id: 'string', expireInMs: 'number', flat: 'boolean', labels: 'labels' } },
  deleteLease: { method: 'DELETE', path: '/v1/leases', params: { id: 'string', sync: 'boolean' }, required: ['id'] },
  gc: { method: 'POST', path: '/v1/gc', params: {} },
  diskUsage: { method: 'GET', path: '/v1/du', params: {} },
};

export type Params = Record<string, string | string[] | boolean | number | Record<string, string> | undefined>;

/** The query string of a GET/DELETE call (params absent or undefined are left out). */
export function encodeQuery(route: Route, params: Params): string {
  const query = new URLSearchParams();
  for (const name of Object.keys(route.params)) {
    const value = params[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) query.append(name, item);
    else query.append(name, String(value));
  }
  const text = query.toString();
  return text === '' ? route.path : `${route.path}?${text}`;
}

function invalid(route: Route, name: string, want: string): InvalidArgumentError {
  return new InvalidArgumentError(`${route.method} ${route.path}: parameter ${JSON.stringify(name)} must be ${want}`);
}

function checkRequired(route: Route, params: Params): Params {
  for (const name of route.required ?? []) {
    if (params[name] === undefined) throw new InvalidArgumentError(`${route.method} ${route.path}: parameter ${JSON.stringify(name)} is required`);
  }
  return params;
}

/** Params from a query string, typed by the route's schema; unknown, missing or malformed ones are InvalidArgument. */
export function decodeQuery(route: Route, query: URLSearchParams): Params {
  const params: Params = {};
  for (const name of new Set(query.keys())) {
    const type = Object.hasOwn(route.params, name) ? route.params[name] : undefined;
    const values = query.getAll(name);
    const value = values[0] as string;
    if (type === undefined) throw new InvalidArgumentError(`${route.method} ${route.path}: unknown parameter ${JSON.stringify(name)}`);
    if (type === 'string[]') params[name] = values;
    else if (values.length > 1) throw invalid(route, name, 'given once');
    else if (type === 'string') params[name] = value;
    else if (type === 'boolean') {
      if (value !== 'true' && value !== 'false') throw invalid(route, name, 'true or false');
      params[name] = value === 'true';
    } else if (type === 'number') {
      const number = Number(value);
      if (value.trim() === '' || !Number.isFinite(number)) throw invalid(route, name, 'a number');
      params[name] = number;
    } else throw invalid(route, name, 'sent in a JSON body');
  }
  return checkRequired(route, params);
}

/** Params from a JSON body, checked against the route's schema (null is the same as absent). */
export function checkBody(route: Route, body: unknown): Params {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidArgumentError(`${route.method} ${route.path}: the body must be a JSON object`);
  const params: Params = {};
  for (const [name, value] of Object.entries(body)) {
    const type = Object.hasOwn(route.params, name) ? route.params[name] : undefined;
    if (type === undefined) throw new InvalidArgumentError(`${route.method} ${route.path}: unknown parameter ${JSON.stringify(name)}`);
    if (value === undefined || value === null) continue;
    const ok =
      type === 'string[]'
        ? Array.isArray(value) && value.every((v) => typeof v === 'string')
        : type === 'labels'
          ? typeof value === 'object' && !Array.isArray(value) && Object.values(value as object).every((v) => typeof v === 'string')
          : typeof value === type;
    if (!ok) throw invalid(route, name, type === 'labels' ? 'an object of strings' : `of type ${type}`);
    params[name] = value as Params[string];
  }
  return checkRequired(route, params);
}

/** HTTP status for an error code, so that curl users see the kind too. */
export function httpStatusOf(code: string): number {
  switch (code) {
    case ErrorCode.NotFound:
      return 404;
    case ErrorCode.InvalidArgument:
    case ErrorCode.DigestMismatch:
    case ErrorCode.SizeMismatch:
      return 400;
    case ErrorCode.Unauthorized:
      return 401;
    case ErrorCode.AlreadyExists:
    case ErrorCode.FailedPrecondition:
      return 409;
    case ErrorCode.Canceled:
      return 499;
    case ErrorCode.NotImplemented:
      return 501;
    case ErrorCode.Unavailable:
      return 503;
    case ErrorCode.ResourceExhausted:
      return 507;
    default:
      return 500;
  }
}
