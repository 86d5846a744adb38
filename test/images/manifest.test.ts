import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { digestOf } from '../../src/digest.js';
import { isInvalidArgument, NotImplementedError } from '../../src/errors.js';
import {
  childrenOf,
  configPlatform,
  detectDocumentType,
  parseDocument,
  parseImageConfig,
  parseIndex,
  parseManifest,
} from '../../src/images/manifest.js';
import {
  isConfigType,
  isIndexType,
  isLayerType,
  isManifestType,
  isSchema1Type,
  layerCompression,
  MANIFEST_ACCEPT,
  MediaType,
} from '../../src/images/mediatypes.js';

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const desc = (seed: string, mediaType: string = MediaType.OCILayerGzip, extra: Record<string, unknown> = {}) => ({ mediaType, digest: digestOf(seed), size: seed.length, ...extra });
const config = desc('config', MediaType.OCIConfig);
const manifestDoc = { schemaVersion: 2, mediaType: MediaType.OCIManifest, config, layers: [desc('l1'), desc('l2')] };
const indexDoc = {
  schemaVersion: 2,
  mediaType: MediaType.OCIIndex,
  manifests: [desc('m1', MediaType.OCIManifest, { platform: { os: 'linux', architecture: 'amd64' } }), desc('m2', MediaType.OCIManifest, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } })],
  annotations: { 'org.example': 'yes' },
};

describe('parseManifest', () => {
  test('parses an OCI manifest with config, layers, subject and annotations', () => {
    const subject = desc('subject', MediaType.OCIManifest);
    const m = parseManifest(json({ ...manifestDoc, subject, artifactType: 'application/x-test', annotations: { a: 'b' } }), { mediaType: MediaType.OCIManifest });
    assert.deepEqual(m.config, config);
    assert.equal(m.layers.length, 2);
    assert.deepEqual(m.subject, subject);
    assert.equal(m.artifactType, 'application/x-test');
    assert.deepEqual(m.annotations, { a: 'b' });
  });

  test('a body without mediaType is accepted (OCI allows it) and null layers mean none', () => {
    const { mediaType: _omit, ...rest } = manifestDoc;
    assert.equal(parseManifest(json(rest)).mediaType, undefined);
    assert.deepEqual(parseManifest(json({ ...rest, layers: null })).layers, []);
  });

  test('a body whose mediaType disagrees with its descriptor is refused', () => {
    assert.throws(() => parseManifest(json(manifestDoc), { mediaType: MediaType.DockerManifest }), isInvalidArgument);
  });

  test('an index body, or a manifest with manifests, is not a manifest (type confusion)', () => {
    assert.throws(() => parseManifest(json(indexDoc)), isInvalidArgument);
    assert.throws(() => parseManifest(json({ ...manifestDoc, manifests: [] })), isInvalidArgument);
  });

  for (const [why, body] of [
    ['not JSON', Buffer.from('{')],
    ['a JSON array', json([])],
    ['schemaVersion 3', json({ ...manifestDoc, schemaVersion: 3 })],
    ['no config', json({ ...manifestDoc, config: undefined })],
    ['a layer with a bad digest', json({ ...manifestDoc, layers: [{ ...desc('x'), digest: 'sha256:xyz' }] })],
    ['a layer with a negative size', json({ ...manifestDoc, layers: [{ ...desc('x'), size: -1 }] })],
    ['layers not an array', json({ ...manifestDoc, layers: {} })],
    ['a non-string annotation', json({ ...manifestDoc, annotations: { a: 1 } })],
  ] as const) {
    test(`rejects a manifest with ${why}`, () => {
      assert.throws(() => parseManifest(body), isInvalidArgument);
    });
  }

  test('Docker schema 1 is NotImplemented with advice', () => {
    assert.throws(() => parseManifest(json({ schemaVersion: 1, name: 'x', fsLayers: [] })), (err: Error) => err instanceof NotImplementedError && /schema 1/.test(err.message));
  });
});

describe('parseIndex', () => {
  test('parses manifests with their platforms and the annotations', () => {
    const index = parseIndex(json(indexDoc), { mediaType: MediaType.OCIIndex });
    assert.deepEqual(index.manifests.map((m) => m.platform?.architecture), ['amd64', 'arm64']);
    assert.deepEqual(index.annotations, { 'org.example': 'yes' });
  });

  test('a Docker manifest list parses as an index', () => {
    const list = { ...indexDoc, mediaType: MediaType.DockerManifestList };
    assert.equal(parseIndex(json(list), { mediaType: MediaType.DockerManifestList }).mediaType, MediaType.DockerManifestList);
  });

  test('an index with config or layers, or a manifest media type, is refused', () => {
    assert.throws(() => parseIndex(json({ ...indexDoc, config })), isInvalidArgument);
    assert.throws(() => parseIndex(json({ ...indexDoc, layers: [] })), isInvalidArgument);
    assert.throws(() => parseIndex(json({ ...indexDoc, mediaType: MediaType.OCIManifest })), isInvalidArgument);
  });

  for (const [why, platform] of [
    ['a string platform', 'linux/amd64'],
    ['no architecture', { os: 'linux' }],
    ['a numeric variant', { os: 'linux', architecture: 'arm', variant: 7 }],
    ['os.features not strings', { os: 'linux', architecture: 'amd64', 'os.features': [1] }],
  ] as const) {
    test(`rejects an index entry with ${why} (platform matching reads them as strings)`, () => {
      assert.throws(() => parseIndex(json({ ...indexDoc, manifests: [desc('m', MediaType.OCIManifest, { platform })] })), isInvalidArgument);
    });
  }
});

describe('parseDocument and children', () => {
  test('picks index or manifest by the descriptor media type', () => {
    const m = json(manifestDoc);
    const i = json(indexDoc);
    assert.equal(parseDocument({ mediaType: MediaType.OCIManifest, digest: digestOf(m) }, m).kind, 'manifest');
    assert.equal(parseDocument({ mediaType: MediaType.OCIIndex, digest: digestOf(i) }, i).kind, 'index');
  });

  test('generic media types fall back to what the body looks like', () => {
    const { mediaType: _m, ...bareManifest } = manifestDoc;
    const { mediaType: _i, ...bareIndex } = indexDoc;
    assert.equal(detectDocumentType(json(bareManifest)), MediaType.OCIManifest);
    assert.equal(detectDocumentType(json(bareIndex)), MediaType.OCIIndex);
    assert.equal(detectDocumentType(json(manifestDoc)), MediaType.OCIManifest);
    assert.equal(detectDocumentType(json({ schemaVersion: 1 })), MediaType.DockerSchema1Manifest);
    assert.throws(() => detectDocumentType(json({ schemaVersion: 2 })), isInvalidArgument);
    assert.equal(parseDocument({ mediaType: 'application/octet-stream', digest: digestOf('x') }, json(bareIndex)).kind, 'index');
    assert.equal(parseDocument({ mediaType: 'application/json', digest: digestOf('x') }, json(bareManifest)).kind, 'manifest');
  });

  test('schema 1 and unknown media types are NotImplemented', () => {
    assert.throws(() => parseDocument({ mediaType: MediaType.DockerSchema1SignedManifest, digest: digestOf('x') }, json({})), NotImplementedError);
    assert.throws(() => parseDocument({ mediaType: 'application/json', digest: digestOf('x') }, json({ schemaVersion: 1 })), NotImplementedError);
    assert.throws(() => parseDocument({ mediaType: 'application/vnd.example+json', digest: digestOf('x') }, json(manifestDoc)), NotImplementedError);
  });

  test('a manifest body behind an index descriptor is refused', () => {
    assert.throws(() => parseDocument({ mediaType: MediaType.OCIIndex, digest: digestOf('x') }, json(manifestDoc)), isInvalidArgument);
  });

  test('children are an index\'s manifests, or a manifest\'s config then layers', () => {
    assert.deepEqual(childrenOf({ mediaType: MediaType.OCIIndex, digest: digestOf('i') }, json(indexDoc)).map((d) => d.digest), indexDoc.manifests.map((d) => d.digest));
    assert.deepEqual(childrenOf({ mediaType: MediaType.OCIManifest, digest: digestOf('m') }, json(manifestDoc)).map((d) => d.digest), [config.digest, ...manifestDoc.layers.map((l) => l.digest)]);
  });
});

describe('parseImageConfig', () => {
  const base = { architecture: 'arm', os: 'linux', variant: 'v7', rootfs: { type: 'layers', diff_ids: [digestOf('a'), digestOf('b')] } };

  test('parses diffIDs and gives the platform, with os.version and os.features', () => {
    const parsed = parseImageConfig(json({ ...base, 'os.version': '1.0', 'os.features': ['gpu'] }));
    assert.deepEqual(parsed.rootfs.diff_ids, base.rootfs.diff_ids);
    assert.deepEqual(configPlatform(parsed), { os: 'linux', architecture: 'arm', variant: 'v7', 'os.version': '1.0', 'os.features': ['gpu'] });
  });

  for (const [why, body] of [
    ['no rootfs', { ...base, rootfs: undefined }],
    ['rootfs.type other than layers', { ...base, rootfs: { type: 'zfs', diff_ids: [] } }],
    ['a bad diffID', { ...base, rootfs: { type: 'layers', diff_ids: ['sha256:nope'] } }],
    ['no os', { ...base, os: undefined }],
    ['a numeric variant', { ...base, variant: 7 }],
  ] as const) {
    test(`rejects a config with ${why}`, () => {
      assert.throws(() => parseImageConfig(json(body)), isInvalidArgument);
    });
  }
});

describe('media types', () => {
  test('classify indexes, manifests, configs and schema 1', () => {
    assert.ok(isIndexType(MediaType.OCIIndex) && isIndexType(MediaType.DockerManifestList));
    assert.ok(isManifestType(MediaType.OCIManifest) && isManifestType(MediaType.DockerManifest));
    assert.ok(!isManifestType(MediaType.OCIIndex) && !isIndexType(MediaType.OCIManifest));
    assert.ok(isConfigType(MediaType.OCIConfig) && isConfigType(MediaType.DockerConfig) && !isConfigType(MediaType.OCIManifest));
    assert.ok(isSchema1Type(MediaType.DockerSchema1Manifest) && isSchema1Type(MediaType.DockerSchema1SignedManifest));
    assert.deepEqual([...MANIFEST_ACCEPT].slice(0, 2), [MediaType.OCIIndex, MediaType.DockerManifestList]);
  });

  test('layer media types give their compression; encrypted and unknown types are not layers', () => {
    assert.equal(layerCompression(MediaType.OCILayer), 'none');
    assert.equal(layerCompression(MediaType.OCILayerGzip), 'gzip');
    assert.equal(layerCompression(MediaType.OCILayerZstd), 'zstd');
    assert.equal(layerCompression(MediaType.DockerLayerGzip), 'gzip');
    assert.equal(layerCompression(MediaType.DockerLayerForeignGzip), 'gzip');
    assert.equal(layerCompression(MediaType.DockerLayerZstd), 'zstd');
    assert.equal(layerCompression('application/vnd.oci.image.layer.v1.tar+lz4'), 'lz4');
    assert.equal(layerCompression('application/vnd.oci.image.layer.v1.tar+gzip+encrypted'), undefined);
    assert.ok(!isLayerType(MediaType.OCIConfig));
  });
});
