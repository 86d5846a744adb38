/**
 * Parsing and validation of indexes, manifests and image configs. These bytes come from
 * registries and layouts written by strangers: everything is checked before use, and a
 * malformed document is an InvalidArgument error naming what is wrong.
 */
import { validateDigest } from '../digest.js';
import { validateDescriptor, type Descriptor, type Platform } from '../descriptor.js';
import { InvalidArgumentError, NotImplementedError } from '../errors.js';
import { isIndexType, isManifestType, isSchema1Type, MediaType } from './mediatypes.js';

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  created?: string;
  author?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, object>;
    Volumes?: Record<string, object>;
    StopSignal?: string;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean }[];
}

export type ParsedDocument = { kind: 'index'; index: Index } | { kind: 'manifest'; manifest: Manifest };

function parseJSON(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function descriptors(value: unknown, what: string): Descriptor[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError(`${what} must be an array`);
  return value.map((d, i) => {
    const desc = validateDescriptor(d as Descriptor, `${what}[${i}]`);
    if (desc.platform !== undefined) checkPlatform(desc.platform, `${what}[${i}].platform`);
    return desc;
  });
}

/** Platform matching reads these fields as strings: a malformed one must not reach it. */
function checkPlatform(platform: unknown, what: string): void {
  const p = platform as Record<string, unknown> | null;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new InvalidArgumentError(`${what} must be an object`);
  if (typeof p['os'] !== 'string' || typeof p['architecture'] !== 'string') throw new InvalidArgumentError(`${what}: os and architecture must be strings`);
  for (const key of ['variant', 'os.version']) {
    if (p[key] !== undefined && typeof p[key] !== 'string') throw new InvalidArgumentError(`${what}: ${key} must be a string`);
  }
  const features = p['os.features'];
  if (features !== undefined && (!Array.isArray(features) || features.some((f) => typeof f !== 'string'))) {
    throw new InvalidArgumentError(`${what}: os.features must be an array of strings`);
  }
}

function checkSchemaVersion(doc: Record<string, unknown>, what: string): void {
  if (doc['schemaVersion'] === 1) throw new NotImplementedError(`${what} is a Docker schema 1 manifest, which layerpool does not support (it was deprecated in 2017); rebuild or re-push the image`);
  if (doc['schemaVersion'] !== 2) throw new InvalidArgumentError(`${what}: schemaVersion must be 2, got ${JSON.stringify(doc['schemaVersion'])}`);
}

/**
 * The document type a body claims, when the descriptor's media type is not specific: a
 * body's own `mediaType` wins; otherwise `manifests` means an index and `config` a
 * manifest (OCI bodies may omit mediaType).
 */
export function detectDocumentType(bytes: Uint8Array, what = 'document'): string {
  const doc = parseJSON(bytes, what);
  if (typeof doc['mediaType'] === 'string' && doc['mediaType'] !== '') return doc['mediaType'];
  if (doc['schemaVersion'] === 1) return MediaType.DockerSchema1Manifest;
  if (Array.isArray(doc['manifests'])) return MediaType.OCIIndex;
  if (typeof doc['config'] === 'object' && doc['config'] !== null) return MediaType.OCIManifest;
  throw new InvalidArgumentError(`${what}: cannot tell whether it is an index or a manifest`);
}

/** A body's `mediaType`, when present, must agree with the descriptor that named it. */
function checkMediaType(doc: Record<string, unknown>, expected: string | undefined, what: string): string | undefined {
  const declared = doc['mediaType'];
  if (declared === undefined) return undefined;
  if (typeof declared !== 'string') throw new InvalidArgumentError(`${what}: mediaType must be a string`);
  if (expected !== undefined && declared !== expected) {
    throw new InvalidArgumentError(`${what}: body says mediaType ${declared}, but it was referenced as ${expected}`);
  }
  return declared;
}

function annotations(value: unknown, what: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError(`${what}: annotations must be an object`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new InvalidArgumentError(`${what}: annotation ${k} must be a string`);
  }
  return value as Record<string, string>;
}

export function parseIndex(bytes: Uint8Array, options: { mediaType?: string; what?: string } = {}): Index {
  const what = options.what ?? 'index';
  const doc = parseJSON(bytes, what);
  checkSchemaVersion(doc, what);
  const mediaType = checkMediaType(doc, options.mediaType, what);
  if (mediaType !== undefined && !isIndexType(mediaType)) throw new InvalidArgumentError(`${what}: ${mediaType} is not an index`);
  if ('config' in doc || 'layers' in doc) throw new InvalidArgumentError(`${what}: an index must not have config or layers`);
  const index: Index = { schemaVersion: 2, manifests: descriptors(doc['manifests'], `${what}.manifests`) };
  if (mediaType !== undefined) index.mediaType = mediaType;
  if (typeof doc['artifactType'] === 'string') index.artifactType = doc['artifactType'];
  if (doc['subject'] !== undefined) index.subject = validateDescriptor(doc['subject'] as Descriptor, `${what}.subject`);
  const notes = annotations(doc['annotations'], what);
  if (notes) index.annotations = notes;
  return index;
}

export function parseManifest(bytes: Uint8Array, options: { mediaType?: string; what?: string } = {}): Manifest {
  const what = options.what ?? 'manifest';
  const doc = parseJSON(bytes, what);
  checkSchemaVersion(doc, what);
  const mediaType = checkMediaType(doc, options.mediaType, what);
  if (mediaType !== undefined && !isManifestType(mediaType)) throw new InvalidArgumentError(`${what}: ${mediaType} is not a manifest`);
  if ('manifests' in doc) throw new InvalidArgumentError(`${what}: a manifest must not have manifests`);
  const manifest: Manifest = {
    schemaVersion: 2,
    config: validateDescriptor(doc['config'] as Descriptor, `${what}.config`),
    layers: doc['layers'] === undefined || doc['layers'] === null ? [] : descriptors(doc['layers'], `${what}.layers`),
  };
  if (mediaType !== undefined) manifest.mediaType = mediaType;
  if (typeof doc['artifactType'] === 'string') manifest.artifactType = doc['artifactType'];
  if (doc['subject'] !== undefined) manifest.subject = validateDescriptor(doc['subject'] as Descriptor, `${what}.subject`);
  const notes = annotations(doc['annotations'], what);
  if (notes) manifest.annotations = notes;
  return manifest;
}

/** Parse an index or a manifest, as `desc.mediaType` says (or as the body says, for generic types). */
export function parseDocument(desc: Pick<Descriptor, 'mediaType' | 'digest'>, bytes: Uint8Array): ParsedDocument {
  const what = `${desc.mediaType} ${desc.digest}`;
  let mediaType = desc.mediaType;
  if (isSchema1Type(mediaType)) {
    throw new NotImplementedError(`${desc.digest} is a Docker schema 1 manifest, which layerpool does not support; rebuild or re-push the image`);
  }
  if (!isIndexType(mediaType) && !isManifestType(mediaType)) {
    if (mediaType !== 'application/json' && mediaType !== 'application/octet-stream') {
      throw new NotImplementedError(`unsupported manifest media type ${mediaType} (${desc.digest})`);
    }
    mediaType = detectDocumentType(bytes, what);
  }
  if (isIndexType(mediaType)) return { kind: 'index', index: parseIndex(bytes, { what }) };
  if (isManifestType(mediaType)) return { kind: 'manifest', manifest: parseManifest(bytes, { what }) };
  if (isSchema1Type(mediaType)) throw new NotImplementedError(`${desc.digest} is a Docker schema 1 manifest, which layerpool does not support`);
  throw new NotImplementedError(`unsupported manifest media type ${mediaType} (${desc.digest})`);
}

/** Direct children of a document: an index's manifests, a manifest's config and layers. */
export function childrenOf(desc: Pick<Descriptor, 'mediaType' | 'digest'>, bytes: Uint8Array): Descriptor[] {
  const doc = parseDocument(desc, bytes);
  return doc.kind === 'index' ? doc.index.manifests : [doc.manifest.config, ...doc.manifest.layers];
}

export function parseImageConfig(bytes: Uint8Array, what = 'image config'): ImageConfig {
  const doc = parseJSON(bytes, what);
  const rootfs = doc['rootfs'] as { type?: unknown; diff_ids?: unknown } | undefined;
  if (typeof rootfs !== 'object' || rootfs === null) throw new InvalidArgumentError(`${what}: missing rootfs`);
  if (rootfs.type !== 'layers') throw new InvalidArgumentError(`${what}: rootfs.type must be "layers"`);
  if (!Array.isArray(rootfs.diff_ids)) throw new InvalidArgumentError(`${what}: rootfs.diff_ids must be an array`);
  rootfs.diff_ids.forEach((d, i) => {
    try {
      validateDigest(d as string);
    } catch (err) {
      throw new InvalidArgumentError(`${what}: rootfs.diff_ids[${i}]: ${(err as Error).message}`);
    }
  });
  if (typeof doc['os'] !== 'string' || typeof doc['architecture'] !== 'string') {
    throw new InvalidArgumentError(`${what}: os and architecture are required`);
  }
  for (const key of ['variant', 'os.version']) {
    if (doc[key] !== undefined && typeof doc[key] !== 'string') throw new InvalidArgumentError(`${what}: ${key} must be a string`);
  }
  return doc as unknown as ImageConfig;
}

/** The platform an image config describes. */
export function configPlatform(config: ImageConfig): Platform {
  const platform: Platform = { os: config.os, architecture: config.architecture };
  if (config.variant) platform.variant = config.variant;
  if (config['os.version']) platform['os.version'] = config['os.version'];
  const features = config['os.features'];
  if (Array.isArray(features) && features.length > 0 && features.every((f) => typeof f === 'string')) platform['os.features'] = features;
  return platform;
}
