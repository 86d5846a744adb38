export {
  LocalContent,
  type ContentStore,
  type LocalContentOptions,
  type ReaderAt,
  type ReadOptions,
  type WriterOptions,
} from './store.js';
export type { ContentWriter, CommitOptions, IngestStatus } from './writer.js';
export { BlobFiles } from './blobs.js';
