export { Collector, labelReferences, type CollectorOptions, type GCStats, type SnapshotFolderRemover } from './collector.js';
export { GCScheduler, kSchedulerDefaults, type SchedulerOptions } from './scheduler.js';
