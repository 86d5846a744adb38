/**
 * Digests as the OCI image spec defines them (`algorithm ":" encoded`), verification of
 * byte streams against them, and chain IDs (identity.ChainID).
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError, InvalidArgumentError, SizeMismatchError } from './errors.js';

export type DigestAlgorithm = 'sha256' | 'sha512';

/** A validated digest split into its parts. */
export interface ParsedDigest {
  readonly algorithm: DigestAlgorithm;
  readonly encoded: string;
}

// OCI image spec, descriptor.md: algorithm-component and encoded grammar.
const DIGEST_GRAMMAR = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
// Registered algorithms use lowercase hex only; uppercase would make two names for one blob.
const ENCODED_FORM: Record<DigestAlgorithm, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

/**
 * Parse and validate a digest string. sha256 and sha512 are accepted (the registered
 * algorithms); anything else, or a malformed encoded part, is InvalidArgument.
 */
export function parseDigest(digest: string): ParsedDigest {
  if (typeof digest !== 'string') throw new InvalidArgumentError(`invalid digest: not a string`);
  const match = DIGEST_GRAMMAR.exec(digest);
  if (!match) throw new InvalidArgumentError(`invalid digest ${JSON.stringify(truncate(digest))}: expected algorithm:hex`);
  const algorithm = match[1] as string;
  const encoded = match[2] as string;
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new InvalidArgumentError(`unsupported digest algorithm ${JSON.stringify(algorithm)} in ${truncate(digest)}`);
  }
  if (!ENCODED_FORM[algorithm].test(encoded)) {
    throw new InvalidArgumentError(`invalid ${algorithm} digest ${JSON.stringify(truncate(digest))}: wrong length or not lowercase hex`);
  }
  return { algorithm, encoded };
}

/** Validate a digest and return it unchanged (for use in expressions). */
export function validateDigest(digest: string): string {
  parseDigest(digest);
  return digest;
}

export function isValidDigest(digest: string): boolean {
  try {
    parseDigest(digest);
    return true;
  } catch {
    return false;
  }
}

/** Digest of an in-memory value. */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/**
 * Incremental digester: feed chunks, then read the digest. `copy()` lets a resumable
 * writer report the digest so far without ending the hash.
 */
export class Digester {
  readonly algorithm: DigestAlgorithm;
  private hash: Hash;
  private length = 0;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.length += chunk.byteLength;
  }

  /** Bytes fed so far. */
  get size(): number {
    return this.length;
  }

  /** The digest of the bytes fed so far; the digester stays usable. */
  digest(): string {
    return `${this.algorithm}:${this.hash.copy().digest('hex')}`;
  }

  /** Throw DigestMismatch (and SizeMismatch when `size` is given) unless the bytes fed match. */
  verify(expected: string, size?: number, what?: string): void {
    if (size !== undefined && size !== this.length) throw new SizeMismatchError(size, this.length, what);
    const actual = this.digest();
    if (actual !== expected) throw new DigestMismatchError(expected, actual, what);
  }
}

/** A Digester for the algorithm of `expected`, validating it first. */
export function digesterFor(expected: string): Digester {
  return new Digester(parseDigest(expected).algorithm);
}

export interface VerifyingStreamOptions {
  /** Expected byte count; a stream that ends short or runs long fails with SizeMismatch. */
  size?: number;
  /** What the bytes are, for error messages ("layer", "manifest", ...). */
  what?: string;
}

/**
 * A pass-through stream that hashes what flows through it and fails at the end (before
 * the consumer sees 'finish'/'end') if the digest or size is wrong. Exceeding `size`
 * fails at once, so a hostile server cannot make us read forever.
 */
export function verifyingStream(expected: string, options: VerifyingStreamOptions = {}): Transform {
  const digester = digesterFor(expected);
  const { size, what } = options;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (size !== undefined && digester.size + chunk.byteLength > size) {
        callback(new SizeMismatchError(size, digester.size + chunk.byteLength, what));
        return;
      }
      digester.update(chunk);
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      try {
        digester.verify(expected, size, what);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
}

/**
 * Chain IDs of every prefix of a layer stack, per the OCI image spec (config.md):
 * ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
 */
export function chainIDs(diffIDs: readonly string[]): string[] {
  const out: string[] = [];
  let previous: string | undefined;
  for (const diffID of diffIDs) {
    validateDigest(diffID);
    previous = previous === undefined ? diffID : digestOf(`${previous} ${diffID}`);
    out.push(previous);
  }
  return out;
}

/** Chain ID of the whole stack (the top layer's chain ID). */
export function chainID(diffIDs: readonly string[]): string {
  if (diffIDs.length === 0) throw new InvalidArgumentError('chain ID of an empty layer list is undefined');
  return chainIDs(diffIDs).at(-1) as string;
}

function truncate(value: string, max = 100): string {
  return value.length > max ? `${value.slice(0, max)}...` : value;
}
