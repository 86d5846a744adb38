/**
 * A Fetcher over a content store, so that anything pulled can be pushed again
 * (`pushImage({ fetcher: contentFetcher(store), ... })`).
 */
import { addAbortSignal, type Readable } from 'node:stream';
import type { ContentStore } from '../content/index.js';
import { validateDescriptor, type Descriptor } from '../descriptor.js';
import { InvalidArgumentError, SizeMismatchError, throwIfAborted } from '../errors.js';
import type { FetchOptions, Fetcher } from './types.js';

export function contentFetcher(store: ContentStore): Fetcher {
  return {
    async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<Readable> {
      validateDescriptor(desc);
      throwIfAborted(options.signal);
      const offset = options.offset ?? 0;
      const info = await store.info(desc.digest);
      if (info.size !== desc.size) throw new SizeMismatchError(desc.size, info.size, `content ${desc.digest}`);
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > info.size) {
        throw new InvalidArgumentError(`offset ${offset} is outside ${desc.digest} (${info.size} bytes)`);
      }
      const stream = await store.readStream(desc.digest, offset > 0 ? { start: offset } : {});
      return options.signal === undefined ? stream : addAbortSignal(options.signal, stream);
    },
  };
}
