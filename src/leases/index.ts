export {
  LeaseManager,
  withLease,
  type DeleteLeaseOptions,
  type GarbageCollector,
  type LeaseManagerOptions,
  type LeaseOptions,
  type WithLeaseOptions,
} from './manager.js';
