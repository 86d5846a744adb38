/**
 * Walking an image: root descriptor -> (index -> platform-matched manifests) -> config,
 * fetching each document into the content store and labelling parents with their
 * children (`gc.ref.content.m.<i>`, `.config`, `.l.<i>`), so that the image record alone
 * keeps the whole graph alive. Layers are not fetched here: the unpacker does that.
 */
import type { ContentStore } from '../content/store.js';
import type { Descriptor, Platform } from '../descriptor.js';
import { NotFoundError } from '../errors.js';
import { Label, type Labels } from '../metadata/labels.js';
import { format as formatPlatform, type MatchComparer } from '../platform.js';
import { parseDocument, parseImageConfig, type ImageConfig, type Manifest } from './manifest.js';

/** One platform's image: its manifest and config. */
export interface ImageManifest {
  desc: Descriptor;
  manifest: Manifest;
  configDesc: Descriptor;
  config: ImageConfig;
  /** From the index entry, when the manifest came from an index. */
  platform?: Platform;
}

export interface WalkOptions {
  content: ContentStore;
  /** Brings a document into the content store (no-op when present). */
  fetchDocument: (desc: Descriptor) => Promise<void>;
  /** Which manifests of an index to take. */
  platforms: MatchComparer;
  /** Take every manifest of an index (that is an image), not only the best match. */
  allPlatforms?: boolean;
  /** Largest document read into memory. */
  maxDocumentSize?: number;
  /** Set `gc.ref.content.*` labels on parents (pull: yes; read-only walks: no). */
  label?: boolean;
}

const MAX_DOCUMENT = 4 << 20;
const MAX_INDEX_DEPTH = 4;

// BuildKit attaches attestations (SBOM, provenance) to indexes as pseudo-platform
// manifests; they are not images to unpack.
function isAttestation(desc: Descriptor): boolean {
  return desc.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' || desc.platform?.os === 'unknown';
}

/** Fetch and read a document as JSON bytes. */
async function readDocument(desc: Descriptor, options: WalkOptions): Promise<Buffer> {
  await options.fetchDocument(desc);
  return options.content.readBlob(desc.digest, { maxSize: options.maxDocumentSize ?? MAX_DOCUMENT });
}

async function setChildLabels(options: WalkOptions, parent: Descriptor, labels: Labels): Promise<void> {
  if (!options.label || Object.keys(labels).length === 0) return;
  await options.content.update({ digest: parent.digest, labels }, Object.keys(labels).map((k) => `labels.${k}`));
}

/**
 * The manifests a root descriptor stands for, fetched with their configs. An index with
 * no manifest for the wanted platform is NotFound, listing what it does have.
 */
export async function walkImage(root: Descriptor, options: WalkOptions, depth = 0): Promise<ImageManifest[]> {
  const bytes = await readDocument(root, options);
  const doc = parseDocument(root, bytes);
  if (doc.kind === 'manifest') {
    const { manifest } = doc;
    const labels: Labels = { [`${Label.gcRefContent}.config`]: manifest.config.digest };
    manifest.layers.forEach((layer, i) => (labels[`${Label.gcRefContent}.l.${i}`] = layer.digest));
    await setChildLabels(options, root, labels);
    const configBytes = await readDocument(manifest.config, options);
    const config = parseImageConfig(configBytes, `config ${manifest.config.digest}`);
    return [{ desc: root, manifest, configDesc: manifest.config, config, ...(root.platform ? { platform: root.platform } : {}) }];
  }

  if (depth >= MAX_INDEX_DEPTH) throw new NotFoundError(`index ${root.digest} nests deeper than ${MAX_INDEX_DEPTH} levels`);
  const candidates = doc.index.manifests
    .map((desc, position) => ({ desc, position }))
    .filter(({ desc }) => !isAttestation(desc))
    .filter(({ desc }) => desc.platform === undefined || options.allPlatforms || options.platforms.match(desc.platform));
  candidates.sort((a, b) => {
    const pa = a.desc.platform;
    const pb = b.desc.platform;
    if (pa && pb && options.platforms.less(pa, pb)) return -1;
    if (pa && pb && options.platforms.less(pb, pa)) return 1;
    return a.position - b.position;
  });
  const chosen = options.allPlatforms ? candidates : candidates.slice(0, 1);
  if (chosen.length === 0) {
    const available = doc.index.manifests
      .filter((d) => !isAttestation(d) && d.platform)
      .map((d) => formatPlatform(d.platform as Platform));
    throw new NotFoundError(
      `no manifest for the requested platform in index ${root.digest}; it has: ${available.length > 0 ? available.join(', ') : 'no platform-specific manifests'}`,
    );
  }
  const labels: Labels = {};
  for (const { desc, position } of chosen) labels[`${Label.gcRefContent}.m.${position}`] = desc.digest;
  await setChildLabels(options, root, labels);
  const out: ImageManifest[] = [];
  for (const { desc } of chosen) {
    for (const found of await walkImage(desc, options, depth + 1)) {
      out.push(found.platform || !desc.platform ? found : { ...found, platform: desc.platform });
    }
  }
  return out;
}
