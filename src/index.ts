/**
 * layerpool's public API. Everything a library user needs is exported from here; deep
 * imports into src/ are not part of the API.
 */
export { Client, kClientDefaults, type ClientOptions, type PullOptions, type PullResult } from './client.js';
export { Image, type ImageContext, type ImageUnpackOptions, type UsageOptions } from './images/image.js';
export type { ImageManifest } from './images/graph.js';
export type { ImageConfig, Index, Manifest } from './images/manifest.js';
export { MediaType } from './images/mediatypes.js';
export type { PullProgressEvent, ProgressCallback, LayerStatus } from './unpack/progress.js';
export type { UnpackResult } from './unpack/unpacker.js';
export * from './errors.js';
export { chainID, chainIDs, digestOf, Digester, parseDigest, validateDigest, isValidDigest, verifyingStream } from './digest.js';
export type { DigestAlgorithm, ParsedDigest, VerifyingStreamOptions } from './digest.js';
export type { Descriptor, Platform } from './descriptor.js';
export * as platforms from './platform.js';
export { parseReference, Reference } from './reference.js';
export { Root, DEFAULT_ROOT, type RootOptions } from './root.js';
export { KeyedMutex, Semaphore, SingleFlight } from './sync/index.js';
export type { SemaphoreRunOptions, SingleFlightResult } from './sync/index.js';
export * from './metadata/index.js';
export * from './content/index.js';
export { LeaseManager, withLease, type LeaseOptions, type DeleteLeaseOptions } from './leases/index.js';
export { Collector, GCScheduler, type GCStats, type SchedulerOptions } from './gc/index.js';
export {
  createSnapshotter,
  formatMountCommand,
  mountAll,
  unmount,
  NativeSnapshotter,
  OverlaySnapshotter,
  type Mount,
  type Snapshotter,
  type SnapshotInfo,
  type SnapshotterName,
} from './snapshots/index.js';
export { applyLayer, TarApplier } from './diff/apply.js';
export type { ApplyOptions, ApplyStats, Applier, WhiteoutMode } from './diff/types.js';
export { OCILayout, parseLayoutReference } from './layout/index.js';
export type { Fetcher, Pusher, Resolver, Resolved } from './remote/types.js';
export {
  RegistryResolver,
  pushImage,
  contentFetcher,
  dockerConfigCredentials,
  type RegistryResolverOptions,
  type PushImageOptions,
  type CredentialsProvider,
} from './remote/index.js';
export { fetchBlob, type FetchBlobOptions } from './remote/fetch.js';
export { setLogLevel } from './log.js';
