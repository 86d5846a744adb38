export { MetadataDB, type MetadataOptions, type NamespacedMetadata } from './db.js';
export { NamespaceStore, type Namespace } from './namespaces.js';
export { ImageStore, type ImageRecord, type ImageInput } from './images.js';
export { ContentMetadata, type ContentInfo, type ContentInput } from './content.js';
export { SnapshotMetadata, type SnapshotRecord, type SnapshotInput, type SnapshotKind } from './snapshots.js';
export { LeaseStore, type LeaseRecord, type LeaseResource, generateLeaseId } from './leases.js';
export { IngestMetadata, type IngestRecord, type IngestInput } from './ingests.js';
export { parseFilters, type Filter, type FieldAdaptor } from './filters.js';
export { validateLabels, applyLabelFieldpaths, MAX_LABEL_SIZE, type Labels } from './labels.js';
