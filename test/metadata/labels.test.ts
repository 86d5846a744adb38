import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { applyLabelFieldpaths, MAX_LABEL_SIZE, validateLabels, type Labels } from '../../src/metadata/index.js';
import { validateLabel } from '../../src/metadata/labels.js';
import { dg, invalid, setup } from './helpers.js';

const GC_REF = 'containerd.io/gc.ref.content.l.0';

describe('label validation', () => {
  test('the maximum is 4096 bytes of key plus value', () => {
    assert.equal(MAX_LABEL_SIZE, 4096);
  });

  test('key plus value of exactly 4096 bytes is accepted and stored whole', (t) => {
    const { ns } = setup(t);
    const key = 'k'.repeat(96);
    const value = 'v'.repeat(4000);
    const info = ns.content.add({ digest: dg('a'), size: 1, labels: { [key]: value } });
    assert.equal(info.labels[key], value);
    assert.equal(ns.content.info(dg('a')).labels[key], value);
  });

  test('key plus value of 4097 bytes fails with InvalidArgument', (t) => {
    const { ns } = setup(t);
    invalid(() => ns.content.add({ digest: dg('a'), size: 1, labels: { ['k'.repeat(96)]: 'v'.repeat(4001) } }), /4097/);
    assert.equal(ns.content.has(dg('a')), false);
  });

  test('size is counted in UTF-8 bytes, not characters', () => {
    // 1 + 2048 * 2 = 4097 bytes in 2049 characters.
    invalid(() => validateLabel('k', 'é'.repeat(2048)));
    // 2 + 2047 * 2 = 4096 bytes.
    validateLabel('kk', 'é'.repeat(2047));
    // A 4-byte character in the key counts 4 too.
    invalid(() => validateLabel('😀', 'v'.repeat(4093)));
    validateLabel('😀', 'v'.repeat(4092));
  });

  test('a key alone longer than 4096 bytes fails with InvalidArgument', () => {
    invalid(() => validateLabels({ ['k'.repeat(4097)]: 'v' }));
  });

  test('an empty key fails with InvalidArgument', () => {
    invalid(() => validateLabels({ '': 'v' }));
  });

  for (const [name, key] of [
    ['a space', 'a b'],
    ['a leading space', ' a'],
    ['a tab', 'a\tb'],
    ['a newline', 'a\nb'],
    ['a carriage return', 'a\rb'],
    ['a NUL', 'a\u0000b'],
    ['an escape character', 'a\u001bb'],
    ['DEL', 'a\u007fb'],
    ['a no-break space', 'a\u00a0b'],
    ['a line separator', 'a\u2028b'],
  ] as const) {
    test(`a key with ${name} fails with InvalidArgument`, () => {
      invalid(() => validateLabels({ [key]: 'v' }));
    });
  }

  test('a value with a NUL byte fails with InvalidArgument', () => {
    invalid(() => validateLabels({ k: 'a\u0000b' }));
  });

  test('values may hold spaces, newlines and any printable text', (t) => {
    const { ns } = setup(t);
    const labels = { k: 'a value\nwith lines\tand tabs', 'containerd.io/gc.expire': '2030-01-01T00:00:00Z', u: '牛 🐄' };
    assert.deepEqual(ns.leases.create({ id: 'l', labels }).labels, labels);
  });

  test('keys may hold dots, slashes and other punctuation', () => {
    const labels = { [GC_REF]: dg('x'), 'containerd.io/gc.ref.snapshot.overlayfs/1': 'sha256:abc', 'a=b,c"d': 'v' };
    assert.deepEqual(validateLabels(labels), labels);
  });

  test('a non-string value fails with InvalidArgument', () => {
    invalid(() => validateLabels({ k: 1 } as unknown as Labels));
    invalid(() => validateLabels({ k: null } as unknown as Labels));
  });

  test('labels that are not a plain object fail with InvalidArgument', () => {
    invalid(() => validateLabels(['a'] as unknown as Labels));
    invalid(() => validateLabels('a=b' as unknown as Labels));
    invalid(() => validateLabels(null as unknown as Labels));
  });

  test('an empty value means absent', (t) => {
    const { ns } = setup(t);
    assert.deepEqual(validateLabels({ a: '', b: 'x' }), { b: 'x' });
    assert.deepEqual(ns.images.create({ name: 'i', target: { mediaType: 'm', digest: dg('i'), size: 1 }, labels: { a: '' } }).labels, {});
  });

  test('validateLabels returns a copy, never the caller object', () => {
    const input = { a: '1' };
    const out = validateLabels(input);
    out['b'] = '2';
    assert.deepEqual(input, { a: '1' });
  });

  test('undefined labels are an empty set', () => {
    assert.deepEqual(validateLabels(undefined), {});
  });

  test('a label named like an Object.prototype member round-trips', (t) => {
    const { ns } = setup(t);
    const labels = { constructor: 'c', toString: 't', __proto__x: 'p' };
    assert.deepEqual(ns.content.add({ digest: dg('a'), size: 1, labels }).labels, labels);
  });

  test('a label with the key "__proto__" is stored, not silently dropped', (t) => {
    const { ns } = setup(t);
    const labels = JSON.parse('{"__proto__": "x", "a": "1"}') as Labels;
    const stored = ns.content.add({ digest: dg('a'), size: 1, labels }).labels;
    assert.equal(Object.hasOwn(stored, '__proto__'), true);
    assert.equal(Object.getOwnPropertyDescriptor(stored, '__proto__')?.value, 'x');
    assert.equal(stored['a'], '1');
    const updated = ns.content.update({ digest: dg('a'), labels: JSON.parse('{"__proto__": "y"}') as Labels }, ['labels.__proto__']);
    assert.equal(Object.getOwnPropertyDescriptor(updated.labels, '__proto__')?.value, 'y');
    assert.equal(updated.labels['a'], '1');
  });
});

describe('applyLabelFieldpaths', () => {
  const current: Labels = { a: '1', b: '2', [GC_REF]: dg('old') };

  test('without field paths the new labels replace the current ones', () => {
    assert.deepEqual(applyLabelFieldpaths(current, { c: '3' }, undefined), { labels: { c: '3' }, rest: [] });
    assert.deepEqual(applyLabelFieldpaths(current, { c: '3' }, []), { labels: { c: '3' }, rest: [] });
    assert.deepEqual(applyLabelFieldpaths(current, undefined, undefined), { labels: {}, rest: [] });
  });

  test('"labels" replaces every label', () => {
    assert.deepEqual(applyLabelFieldpaths(current, { c: '3' }, ['labels']).labels, { c: '3' });
  });

  test('"labels.<key>" sets only that key', () => {
    const { labels } = applyLabelFieldpaths(current, { a: 'new', b: 'not-selected', c: 'not-selected' }, ['labels.a']);
    assert.deepEqual(labels, { a: 'new', b: '2', [GC_REF]: dg('old') });
  });

  test('"labels.<key>" adds a key that was absent', () => {
    const { labels } = applyLabelFieldpaths({ a: '1' }, { z: '26' }, ['labels.z']);
    assert.deepEqual(labels, { a: '1', z: '26' });
  });

  test('"labels.<key>" keeps dots and slashes of the key (everything after the first dot)', () => {
    const { labels } = applyLabelFieldpaths(current, { [GC_REF]: dg('new') }, [`labels.${GC_REF}`]);
    assert.deepEqual(labels, { a: '1', b: '2', [GC_REF]: dg('new') });
  });

  test('"labels.<key>" with an empty value deletes the key', () => {
    const { labels } = applyLabelFieldpaths(current, { [GC_REF]: '' }, [`labels.${GC_REF}`]);
    assert.deepEqual(labels, { a: '1', b: '2' });
  });

  test('"labels.<key>" with the key missing from the input deletes the key', () => {
    const { labels } = applyLabelFieldpaths(current, {}, ['labels.a']);
    assert.deepEqual(labels, { b: '2', [GC_REF]: dg('old') });
  });

  test('"labels." without a key fails with InvalidArgument', () => {
    invalid(() => applyLabelFieldpaths(current, {}, ['labels.']));
  });

  test('several paths apply in order: "labels" then "labels.<key>"', () => {
    const { labels } = applyLabelFieldpaths(current, { x: '1', a: '9' }, ['labels', 'labels.a']);
    assert.deepEqual(labels, { x: '1', a: '9' });
  });

  test('paths that are not about labels are returned in rest, untouched', () => {
    const { labels, rest } = applyLabelFieldpaths(current, { a: 'x' }, ['target', 'labels.a', 'name', 'labelsx']);
    assert.deepEqual(rest, ['target', 'name', 'labelsx']);
    assert.equal(labels['a'], 'x');
  });

  test('the new labels are validated even when only some keys are selected', () => {
    invalid(() => applyLabelFieldpaths(current, { a: 'ok', 'bad key': 'x' }, ['labels.a']));
  });

  test('does not modify the current labels object', () => {
    const before = { ...current };
    applyLabelFieldpaths(current, { a: '' }, ['labels.a']);
    applyLabelFieldpaths(current, {}, ['labels']);
    assert.deepEqual(current, before);
  });

  test('through a store: set, replace and delete a gc.ref label with dots in its key', (t) => {
    const { ns } = setup(t);
    ns.content.add({ digest: dg('m'), size: 1, labels: { keep: 'yes' } });
    let info = ns.content.update({ digest: dg('m'), labels: { [GC_REF]: dg('layer') } }, [`labels.${GC_REF}`]);
    assert.deepEqual(info.labels, { keep: 'yes', [GC_REF]: dg('layer') });
    info = ns.content.update({ digest: dg('m'), labels: { [GC_REF]: '' } }, [`labels.${GC_REF}`]);
    assert.deepEqual(info.labels, { keep: 'yes' });
    info = ns.content.update({ digest: dg('m'), labels: { only: 'this' } }, ['labels']);
    assert.deepEqual(info.labels, { only: 'this' });
    assert.deepEqual(ns.content.info(dg('m')).labels, { only: 'this' });
  });
});
