/**
 * Typed errors with stable codes.
 *
 * Callers branch on the kind, never on the message: `isAlreadyExists(e)` after a
 * content commit means "someone else wrote it, that is success", `isNotFound(e)` after a
 * snapshot stat means "unpack it". Codes are part of the public API and never change.
 */

export const ErrorCode = {
  NotFound: 'LP_ERR_NOT_FOUND',
  AlreadyExists: 'LP_ERR_ALREADY_EXISTS',
  Unavailable: 'LP_ERR_UNAVAILABLE',
  InvalidArgument: 'LP_ERR_INVALID_ARGUMENT',
  FailedPrecondition: 'LP_ERR_FAILED_PRECONDITION',
  DigestMismatch: 'LP_ERR_DIGEST_MISMATCH',
  SizeMismatch: 'LP_ERR_SIZE_MISMATCH',
  Canceled: 'LP_ERR_CANCELED',
  Unauthorized: 'LP_ERR_UNAUTHORIZED',
  ResourceExhausted: 'LP_ERR_RESOURCE_EXHAUSTED',
  NotImplemented: 'LP_ERR_NOT_IMPLEMENTED',
  Internal: 'LP_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class LayerpoolError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** The object (image, blob, snapshot, lease, ingest, namespace) does not exist. */
export class NotFoundError extends LayerpoolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.NotFound, message, options);
  }
}

/** The object exists already; for idempotent writes this means success. */
export class AlreadyExistsError extends LayerpoolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.AlreadyExists, message, options);
  }
}

/** A dependency (registry, root directory, worker pool) cannot be used right now; retrying may help. */
export class UnavailableError extends LayerpoolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Unavailable, message, options);
  }
}

/** The caller passed something malformed: a digest, a reference, a label, a layer. */
export class InvalidArgumentError extends LayerpoolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.InvalidArgument, message, options);
  }
}

/** The request is well-formed but the current state forbids it (a snapshot with children, a non-empty namespace). */
export class FailedPreconditionError extends LayerpoolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.FailedPrecondition, message, options);
  }
}

/** Bytes did not hash to the digest they were expected to have. */
export class DigestMismatchError extends LayerpoolError {
  readonly expected: string;
  readonly actual: string;

  constructor(expected: string, actual: string, what = 'content') {
    super(ErrorCode.DigestMismatch, `${what} digest mismatch: expected ${expected}, got ${actual}`);
    this.expected = expected;
    this.actual = actual;
  }
}

/** A byte count did not match the size it was expected to have. */
export class SizeMismatchError extends LayerpoolError {
  readonly expected: number;
  readonly actual: number;

  constructor(expected: number, actual: number, what = 'content') {
    super(ErrorCode.SizeMismatch, `${what} size mismatch: expected ${expected} bytes, got ${actual}`);
    this.expected = expected;
    this.actual = actual;
  }
}

/** The operation was cancelled through its AbortSignal. */
export class CanceledError extends LayerpoolError {
  constructor(message = 'operation canceled', options?: { cause?: unknown }) {
    super(ErrorCode.Canceled, message, options);
  }
}

/** A registry refused the credentials (or their absence). */
export class UnauthorizedError extends LayerpoolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Unauthorized, message, options);
  }
}

/** A configured limit (decompressed size, entry count, manifest size) or the disk ran out. */
export class ResourceExhaustedError extends LayerpoolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.ResourceExhausted, message, options);
  }
}

/** The feature exists in the spec but layerpool does not support it (schema1 manifests, say). */
export class NotImplementedError extends LayerpoolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.NotImplemented, message, options);
  }
}

/** A broken invariant inside layerpool: a bug, never the caller's fault. */
export class InternalError extends LayerpoolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Internal, message, options);
  }
}

function hasCode(err: unknown, code: ErrorCode): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

export const isNotFound = (err: unknown): boolean => hasCode(err, ErrorCode.NotFound);
export const isAlreadyExists = (err: unknown): boolean => hasCode(err, ErrorCode.AlreadyExists);
export const isUnavailable = (err: unknown): boolean => hasCode(err, ErrorCode.Unavailable);
export const isInvalidArgument = (err: unknown): boolean => hasCode(err, ErrorCode.InvalidArgument);
export const isFailedPrecondition = (err: unknown): boolean => hasCode(err, ErrorCode.FailedPrecondition);
export const isDigestMismatch = (err: unknown): boolean => hasCode(err, ErrorCode.DigestMismatch);
export const isSizeMismatch = (err: unknown): boolean => hasCode(err, ErrorCode.SizeMismatch);
export const isCanceled = (err: unknown): boolean => hasCode(err, ErrorCode.Canceled);
export const isUnauthorized = (err: unknown): boolean => hasCode(err, ErrorCode.Unauthorized);
export const isResourceExhausted = (err: unknown): boolean => hasCode(err, ErrorCode.ResourceExhausted);

/**
 * Turn an AbortSignal's reason into a CanceledError, keeping the reason as the cause, so
 * every cancelled operation fails with the same kind whatever aborted it.
 */
export function canceledFrom(signal: AbortSignal): CanceledError {
  const reason: unknown = signal.reason;
  if (reason instanceof CanceledError) return reason;
  const detail = reason instanceof Error ? `: ${reason.message}` : '';
  return new CanceledError(`operation canceled${detail}`, { cause: reason });
}

/** Throw a CanceledError if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw canceledFrom(signal);
}

/** The wire form of an error crossing a thread or process boundary (workers, the service). */
export interface SerializedError {
  code: string;
  message: string;
  name?: string;
}

export function serializeError(err: unknown): SerializedError {
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  return {
    code: typeof e?.code === 'string' ? e.code : ErrorCode.Internal,
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof e?.name === 'string' ? { name: e.name } : {}),
  };
}

const ERROR_CLASSES: Record<string, new (message: string) => LayerpoolError> = {
  [ErrorCode.NotFound]: NotFoundError,
  [ErrorCode.AlreadyExists]: AlreadyExistsError,
  [ErrorCode.Unavailable]: UnavailableError,
  [ErrorCode.InvalidArgument]: InvalidArgumentError,
  [ErrorCode.FailedPrecondition]: FailedPreconditionError,
  [ErrorCode.Canceled]: CanceledError,
  [ErrorCode.Unauthorized]: UnauthorizedError,
  [ErrorCode.ResourceExhausted]: ResourceExhaustedError,
  [ErrorCode.NotImplemented]: NotImplementedError,
  [ErrorCode.Internal]: InternalError,
};

/**
 * Rebuild a typed error from its wire form, so callers on this side can branch on the
 * kind. Digest and size mismatches keep their codes (their expected/actual fields are in
 * the message); ENOSPC becomes ResourceExhausted; any other code an Unavailable error.
 */
export function deserializeError(wire: SerializedError): LayerpoolError {
  if (wire.code === ErrorCode.DigestMismatch || wire.code === ErrorCode.SizeMismatch) {
    return new LayerpoolError(wire.code, wire.message);
  }
  const Class = ERROR_CLASSES[wire.code];
  if (Class) return new Class(wire.message);
  if (wire.code === 'ENOSPC' || wire.code === 'EDQUOT') {
    return new ResourceExhaustedError(`no space left on device: ${wire.message}`, { cause: wire });
  }
  return new UnavailableError(wire.message, { cause: wire });
}
