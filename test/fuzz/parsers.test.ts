/**
 * Property tests of the parsers that read untrusted text: image references, digests,
 * platforms, layout references, metadata filters, and index / manifest / config
 * documents. Random strings and mutated valid documents must give either a valid result
 * or a typed LayerpoolError (never a TypeError, a RangeError or a JSON SyntaxError), and
 * a valid result must survive a round trip where one exists.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { digestOf, parseDigest } from '../../src/digest.js';
import { ErrorCode, LayerpoolError } from '../../src/errors.js';
import { detectDocumentType, parseDocument, parseImageConfig, parseIndex, parseManifest } from '../../src/images/manifest.js';
import { MediaType } from '../../src/images/mediatypes.js';
import { parseLayoutReference } from '../../src/layout/reference.js';
import { parseFilters } from '../../src/metadata/filters.js';
import * as platforms from '../../src/platform.js';
import { parseReference } from '../../src/reference.js';
import { fuzzBudget } from './budget.js';

/** The result of `fn`, or undefined when it threw a typed error; anything else fails the property. */
function typedOrValue<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof LayerpoolError)) throw new Error(`untyped ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
    assert.notEqual(err.code, ErrorCode.Internal, `an input error is not an internal one: ${err.message}`);
    return undefined;
  }
}

/** Strings from the characters each grammar cares about, so runs reach past the first check. */
const grammarString = (chars: string, maxLength = 80) => fc.string({ unit: fc.constantFrom(...chars), maxLength });
const anyString = fc.string({ unit: 'binary', maxLength: 120 });
const HEX = '0123456789abcdef';
const validDigest = fc.string({ unit: fc.constantFrom(...HEX), minLength: 64, maxLength: 64 }).map((hex) => `sha256:${hex}`);

const descriptorArb = fc.record({ mediaType: fc.constantFrom(MediaType.OCILayerGzip, MediaType.OCIConfig, MediaType.OCIManifest), digest: validDigest, size: fc.nat() });
const validManifest = fc.record({ schemaVersion: fc.constant(2), mediaType: fc.constant(MediaType.OCIManifest), config: descriptorArb, layers: fc.array(descriptorArb, { maxLength: 4 }) });
const validIndex = fc.record({ schemaVersion: fc.constant(2), mediaType: fc.constant(MediaType.OCIIndex), manifests: fc.array(descriptorArb, { maxLength: 4 }) });
const validConfig = fc.record({ architecture: fc.constant('amd64'), os: fc.constant('linux'), rootfs: fc.record({ type: fc.constant('layers'), diff_ids: fc.array(validDigest, { maxLength: 4 }) }) });

/** Every path to a value inside a JSON document. */
function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const paths: (string | number)[][] = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => paths.push(...pathsOf(v, [...prefix, i])));
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) paths.push(...pathsOf(v, [...prefix, k]));
  return paths;
}

type Mutation = { pick: number; action: 'replace' | 'delete'; value: unknown };
const mutationArb: fc.Arbitrary<Mutation> = fc.record({ pick: fc.nat(), action: fc.constantFrom('replace', 'delete'), value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), anyString, validDigest, fc.constant(null)) });

/** Apply mutations to a (copied) document: replace or delete the value at a path picked from it. */
function mutate(doc: unknown, mutations: readonly Mutation[]): unknown {
  let root = structuredClone(doc) as unknown;
  for (const { pick, action, value } of mutations) {
    const paths = pathsOf(root);
    const path = paths[pick % paths.length] as (string | number)[];
    if (path.length === 0) {
      root = value;
      continue;
    }
    let parent = root as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
    const last = path.at(-1) as string | number;
    if (action === 'delete' && !Array.isArray(parent)) delete parent[last];
    else parent[last] = value;
  }
  return root;
}

const encode = (doc: unknown): Uint8Array => Buffer.from(JSON.stringify(doc) ?? 'undefined');

describe('parsers never throw untyped errors', () => {
  test('image references: random text is a Reference that round-trips, or InvalidArgument', () => {
    const referenceText = fc.oneof(anyString, grammarString('abcAB09._-/:@+ ', 60), validDigest.map((d) => `registry:5000/app@${d}`));
    fc.assert(
      fc.property(referenceText, (input) => {
        const ref = typedOrValue(() => parseReference(input));
        if (ref !== undefined) assert.equal(parseReference(ref.toString()).toString(), ref.toString());
      }),
      fuzzBudget(),
    );
  });

  test('digests: random text parses to algorithm and encoded part that print back to it, or InvalidArgument', () => {
    fc.assert(
      fc.property(fc.oneof(anyString, grammarString(`sha256:512${HEX}G+.-_`, 140), validDigest), (input) => {
        const parsed = typedOrValue(() => parseDigest(input));
        if (parsed !== undefined) assert.equal(`${parsed.algorithm}:${parsed.encoded}`, input);
      }),
      fuzzBudget(),
    );
  });

  test('platforms: random specifiers parse to a platform whose formatAll parses back equal, or InvalidArgument', () => {
    fc.assert(
      fc.property(fc.oneof(anyString, grammarString('linuxwndosamd64rm/v78%() ', 40)), (input) => {
        const platform = typedOrValue(() => platforms.parse(input));
        if (platform !== undefined) assert.deepEqual(platforms.parse(platforms.formatAll(platform)), platform);
      }),
      fuzzBudget(),
    );
  });

  test('OCI layout references: random text after the scheme parses, or InvalidArgument', () => {
    fc.assert(
      fc.property(fc.oneof(anyString, grammarString('/tmp:@ab1.-_sha256', 60)), (input) => {
        typedOrValue(() => parseLayoutReference(`oci-layout://${input}`));
      }),
      fuzzBudget(),
    );
  });

  test('metadata filters: random filter text parses and evaluates, or InvalidArgument at parse time', () => {
    const adaptor = fc.func(fc.option(anyString, { nil: undefined }));
    fc.assert(
      fc.property(fc.array(fc.oneof(anyString, grammarString('labels.ab"\\,=!~^$.*[](){}+? ', 50)), { maxLength: 3 }), adaptor, (inputs, fieldValue) => {
        const filter = typedOrValue(() => parseFilters(inputs));
        if (filter !== undefined) assert.equal(typeof filter((fieldpath) => fieldValue(fieldpath.join('.'))), 'boolean');
      }),
      fuzzBudget(),
    );
  });

  test('documents: random bytes and mutated manifests, indexes and configs parse, or fail typed', () => {
    const documents = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.tuple(fc.oneof(validManifest, validIndex, validConfig), fc.array(mutationArb, { maxLength: 4 })).map(([doc, mutations]) => encode(mutate(doc, mutations))),
    );
    const mediaTypes = fc.constantFrom(MediaType.OCIManifest, MediaType.OCIIndex, MediaType.DockerManifest, MediaType.DockerManifestList, 'application/json', MediaType.DockerSchema1Manifest, 'text/plain');
    fc.assert(
      fc.property(documents, mediaTypes, (bytes, mediaType) => {
        typedOrValue(() => parseManifest(bytes));
        typedOrValue(() => parseIndex(bytes));
        typedOrValue(() => parseImageConfig(bytes));
        typedOrValue(() => detectDocumentType(bytes));
        const parsed = typedOrValue(() => parseDocument({ mediaType, digest: digestOf(bytes) }, bytes));
        if (parsed?.kind === 'manifest') for (const d of [parsed.manifest.config, ...parsed.manifest.layers]) parseDigest(d.digest);
        if (parsed?.kind === 'index') for (const d of parsed.index.manifests) parseDigest(d.digest);
      }),
      fuzzBudget(),
    );
  });
});
