/**
 * Media types layerpool understands: OCI image spec v1.1 and Docker image manifest v2
 * schema 2. Docker schema 1 is recognised only to be refused with a clear error.
 */

export const MediaType = {
  OCIIndex: 'application/vnd.oci.image.index.v1+json',
  OCIManifest: 'application/vnd.oci.image.manifest.v1+json',
  OCIConfig: 'application/vnd.oci.image.config.v1+json',
  OCILayer: 'application/vnd.oci.image.layer.v1.tar',
  OCILayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCILayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCILayerNonDistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OCILayerNonDistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OCILayerNonDistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  OCIEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  DockerSchema1Manifest: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1SignedManifest: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** What a registry is asked for when resolving: indexes first, then single manifests. */
export const MANIFEST_ACCEPT = [
  MediaType.OCIIndex,
  MediaType.DockerManifestList,
  MediaType.OCIManifest,
  MediaType.DockerManifest,
] as const;

export function isIndexType(mediaType: string): boolean {
  return mediaType === MediaType.OCIIndex || mediaType === MediaType.DockerManifestList;
}

export function isManifestType(mediaType: string): boolean {
  return mediaType === MediaType.OCIManifest || mediaType === MediaType.DockerManifest;
}

export function isSchema1Type(mediaType: string): boolean {
  return mediaType === MediaType.DockerSchema1Manifest || mediaType === MediaType.DockerSchema1SignedManifest;
}

export function isConfigType(mediaType: string): boolean {
  return mediaType === MediaType.OCIConfig || mediaType === MediaType.DockerConfig;
}

/**
 * Layer media types, with their compression. Registries and tools add suffixes such as
 * `+encrypted` that layerpool cannot read: those are not layers here.
 */
export type LayerCompression = 'none' | 'gzip' | 'zstd' | 'lz4';

const LAYER_COMPRESSION: Record<string, LayerCompression> = {
  [MediaType.OCILayer]: 'none',
  [MediaType.OCILayerGzip]: 'gzip',
  [MediaType.OCILayerZstd]: 'zstd',
  [MediaType.OCILayerNonDistributable]: 'none',
  [MediaType.OCILayerNonDistributableGzip]: 'gzip',
  [MediaType.OCILayerNonDistributableZstd]: 'zstd',
  [MediaType.DockerLayer]: 'none',
  [MediaType.DockerLayerGzip]: 'gzip',
  [MediaType.DockerLayerForeignGzip]: 'gzip',
  [MediaType.DockerLayerZstd]: 'zstd',
  'application/vnd.oci.image.layer.v1.tar+lz4': 'lz4',
};

/** The compression a layer media type declares, or undefined if it is not a layer type we read. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  return LAYER_COMPRESSION[mediaType];
}

export function isLayerType(mediaType: string): boolean {
  return layerCompression(mediaType) !== undefined;
}
