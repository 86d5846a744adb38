export type {
  Fetcher,
  FetchOptions,
  Pusher,
  PushOptions,
  PushStatus,
  RangeFetcher,
  RangeOptions,
  RangeResponse,
  Resolved,
  ResolveOptions,
  Resolver,
} from './types.js';
export { isRangeFetcher } from './types.js';
export { RegistryResolver, RESOLVER_DEFAULTS, type RegistryResolverOptions } from './resolver.js';
export { RegistryFetcher } from './fetcher.js';
export { RegistryPusher, pushImage, PUSH_IMAGE_DEFAULTS, type PushImageOptions, type PushImageProgress, type RegistryPusherOptions } from './push.js';
export {
  fetchBlob,
  ingestRef,
  PARALLEL_FETCH_DEFAULTS,
  type FetchBlobOptions,
  type FetchBlobResult,
  type ParallelFetchOptions,
} from './fetch.js';
export { contentFetcher } from './content-fetcher.js';
export {
  configureHosts,
  parseHostsFile,
  type HostCapability,
  type HostsOptions,
  type HostTLS,
  type ParseHostsOptions,
  type RegistryHost,
  type RegistryHosts,
} from './hosts.js';
export { dockerConfigCredentials, type Credentials, type CredentialsProvider, type DockerConfigOptions } from './credentials.js';
export { parseChallenges, repositoryScope, type Challenge } from './auth.js';
export { TIMEOUT_DEFAULTS, type Timeouts } from './http.js';
export { RETRY_DEFAULTS, type RetryPolicy } from './retry.js';
