/**
 * layerpool's public API. Everything a library user needs is exported from here; deep
 * imports into src/ are not part of the API.
 */
export * from './errors.js';
export { chainID, chainIDs, digestOf, Digester, parseDigest, validateDigest, isValidDigest, verifyingStream } from './digest.js';
export type { DigestAlgorithm, ParsedDigest, VerifyingStreamOptions } from './digest.js';
export type { Descriptor, Platform } from './descriptor.js';
export { Root, DEFAULT_ROOT, type RootOptions } from './root.js';
export { KeyedMutex, Semaphore, SingleFlight } from './sync/index.js';
export type { SemaphoreRunOptions, SingleFlightResult } from './sync/index.js';
export * from './metadata/index.js';
export * from './content/index.js';
export { setLogLevel } from './log.js';
