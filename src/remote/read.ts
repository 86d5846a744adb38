/**
 * Reading a small document (manifest, index, token response) whole, with a hard limit:
 * a hostile server cannot make us buffer more than `maxSize` bytes.
 */
import type { Readable } from 'node:stream';
import { LayerpoolError, ResourceExhaustedError } from '../errors.js';
import { networkError } from './http.js';

export interface ReadAllOptions {
  maxSize: number;
  /** Names the document in errors. */
  what: string;
  signal?: AbortSignal | undefined;
}

export async function readAll(body: Readable, options: ReadAllOptions): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      size += buf.length;
      if (size > options.maxSize) {
        throw new ResourceExhaustedError(`${options.what} is larger than the ${options.maxSize} bytes allowed`);
      }
      chunks.push(buf);
    }
  } catch (err) {
    if (err instanceof LayerpoolError) throw err;
    throw networkError(err, options.what, options.signal);
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks);
}
