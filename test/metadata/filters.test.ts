import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseFilters, type FieldAdaptor } from '../../src/metadata/index.js';
import { labelField } from '../../src/metadata/filters.js';
import { desc, dg, INDEX, invalid, MANIFEST, setup } from './helpers.js';

interface Obj {
  name?: string;
  kind?: string;
  labels?: Record<string, string>;
}

function adaptor(obj: Obj): FieldAdaptor {
  return (path) => {
    if (path[0] === 'labels') return labelField(obj.labels ?? {}, path);
    if (path.length !== 1) return undefined;
    if (path[0] === 'name') return obj.name;
    if (path[0] === 'kind') return obj.kind;
    return undefined;
  };
}

/** Names of the objects the filters select. */
function select(objects: Obj[], ...filters: string[]): (string | undefined)[] {
  const match = parseFilters(filters);
  return objects.filter((o) => match(adaptor(o))).map((o) => o.name);
}

const OBJECTS: Obj[] = [
  { name: 'alpine', kind: 'image', labels: { env: 'prod', 'a.b': 'dotted', 'containerd.io/gc.root': 'true' } },
  { name: 'busybox', kind: 'image', labels: { env: 'dev' } },
  { name: 'cirros', kind: 'vm', labels: {} },
  { name: 'a"b', labels: { 'q"k': 'v,1' } },
  { name: 'a\\b' },
  { name: 'sp ace' },
  { name: 'x\ty\nz' },
];

describe('parseFilters', () => {
  test('no filter matches everything', () => {
    assert.equal(select(OBJECTS).length, OBJECTS.length);
  });

  test('an empty or blank filter string matches everything', () => {
    assert.equal(select(OBJECTS, '').length, OBJECTS.length);
    assert.equal(select(OBJECTS, '   ').length, OBJECTS.length);
  });

  test('== matches equal values only', () => {
    assert.deepEqual(select(OBJECTS, 'name==alpine'), ['alpine']);
    assert.deepEqual(select(OBJECTS, 'name==alp'), []);
  });

  test('== on a missing field matches nothing', () => {
    assert.deepEqual(select(OBJECTS, 'labels.nope==x'), []);
  });

  test('!= matches different values and missing fields', () => {
    assert.deepEqual(select(OBJECTS, 'labels.env!=prod'), ['busybox', 'cirros', 'a"b', 'a\\b', 'sp ace', 'x\ty\nz']);
    assert.deepEqual(select(OBJECTS, 'kind!=image'), ['cirros', 'a"b', 'a\\b', 'sp ace', 'x\ty\nz']);
  });

  test('~= matches a regular expression anywhere in the value', () => {
    assert.deepEqual(select(OBJECTS, 'name~=bo'), ['busybox']);
    assert.deepEqual(select(OBJECTS, 'name~=^[ab]'), ['alpine', 'busybox', 'a"b', 'a\\b']);
    assert.deepEqual(select(OBJECTS, 'name~=e$'), ['alpine', 'sp ace']);
  });

  test('~= never matches a missing field', () => {
    assert.deepEqual(select(OBJECTS, 'labels.env~=.*'), ['alpine', 'busybox']);
  });

  test('a field path alone tests presence', () => {
    assert.deepEqual(select(OBJECTS, 'labels.env'), ['alpine', 'busybox']);
    assert.deepEqual(select(OBJECTS, 'kind'), ['alpine', 'busybox', 'cirros']);
  });

  test('presence of a label named like an Object.prototype member needs the label', () => {
    assert.deepEqual(select(OBJECTS, 'labels.constructor'), []);
    assert.deepEqual(select(OBJECTS, 'labels.toString~=.'), []);
    assert.deepEqual(select(OBJECTS, 'labels.__proto__'), []);
    assert.deepEqual(select([{ name: 'has', labels: { constructor: 'yes' } }, { name: 'not' }], 'labels.constructor'), ['has']);
  });

  test('a quoted field name may contain dots and slashes', () => {
    assert.deepEqual(select(OBJECTS, 'labels."a.b"==dotted'), ['alpine']);
    assert.deepEqual(select(OBJECTS, 'labels."containerd.io/gc.root"'), ['alpine']);
    assert.deepEqual(select(OBJECTS, 'labels."containerd.io/gc.root"==true,name==alpine'), ['alpine']);
  });

  test('an unquoted dotted label path is joined back into one key', () => {
    assert.deepEqual(select(OBJECTS, 'labels.a.b==dotted'), ['alpine']);
  });

  test('a quoted field name may contain an escaped quote', () => {
    assert.deepEqual(select(OBJECTS, 'labels."q\\"k"'), ['a"b']);
  });

  test('a quoted value may hold commas, spaces and escaped quotes and backslashes', () => {
    assert.deepEqual(select(OBJECTS, 'labels."q\\"k"=="v,1"'), ['a"b']);
    assert.deepEqual(select(OBJECTS, 'name=="sp ace"'), ['sp ace']);
    assert.deepEqual(select(OBJECTS, 'name=="a\\"b"'), ['a"b']);
    assert.deepEqual(select(OBJECTS, 'name=="a\\\\b"'), ['a\\b']);
  });

  test('a quoted value decodes \\t and \\n escapes like containerd (Go string syntax)', () => {
    assert.deepEqual(select(OBJECTS, 'name=="x\\ty\\nz"'), ['x\ty\nz']);
    assert.deepEqual(select(OBJECTS, 'name=="\\x61lpine"'), ['alpine']);
    assert.deepEqual(select(OBJECTS, 'name=="\\u0062usybox"'), ['busybox']);
  });

  test('a quoted value decodes octal and \\U escapes', () => {
    assert.deepEqual(select(OBJECTS, 'name=="\\141lpine"'), ['alpine']);
    assert.deepEqual(select([{ name: '🐄' }, { name: 'x' }], 'name=="\\U0001F404"'), ['🐄']);
  });

  test('a quoted regexp needs doubled backslashes, as in containerd', () => {
    const objects = [{ name: 'v1.2' }, { name: 'v1x2' }];
    assert.deepEqual(select(objects, 'name~="^v1\\\\.2$"'), ['v1.2']);
  });

  for (const bad of ['"\\xZZ"', '"\\x4"', '"\\u12"', '"\\uD800"', '"\\U00110000"', '"\\400"', '"\\9"']) {
    test(`a malformed numeric escape ${bad} fails with InvalidArgument`, () => {
      invalid(() => parseFilters([`name==${bad}`]), /escape/);
    });
  }

  test('an unknown escape in a quoted string fails with InvalidArgument (it would silently change a regexp)', () => {
    invalid(() => parseFilters(['name~="a\\.b"']));
    invalid(() => parseFilters(['labels."\\g"']));
  });

  test('/regex/ values are regular expressions', () => {
    assert.deepEqual(select(OBJECTS, 'name~=/^b.*x$/'), ['busybox']);
    assert.deepEqual(select(OBJECTS, 'name~=/[abc]{0,2}rr/'), ['cirros']);
  });

  test('/regex/ values keep regexp escapes and unescape \\/', () => {
    assert.deepEqual(select([{ name: 'docker.io/library' }, { name: 'dockerXio/library' }], 'name~=/^docker\\.io\\/lib/'), [
      'docker.io/library',
    ]);
  });

  test('a comma inside /regex/ or quotes is not a separator', () => {
    assert.deepEqual(select(OBJECTS, 'name~=/^(alpine|busybox){1,2}$/'), ['alpine', 'busybox']);
    assert.deepEqual(select([{ name: 'a,b' }, { name: 'a' }], 'name=="a,b"'), ['a,b']);
  });

  test('a comma joins selectors that must all match (AND)', () => {
    assert.deepEqual(select(OBJECTS, 'kind==image,labels.env==prod'), ['alpine']);
    assert.deepEqual(select(OBJECTS, 'kind==image,labels.env==qa'), []);
    assert.deepEqual(select(OBJECTS, 'kind==image,name~=box,labels.env'), ['busybox']);
  });

  test('several filter strings are alternatives (OR)', () => {
    assert.deepEqual(select(OBJECTS, 'name==alpine', 'name==cirros'), ['alpine', 'cirros']);
    assert.deepEqual(select(OBJECTS, 'kind==vm', 'labels.env==dev,kind==image'), ['busybox', 'cirros']);
  });

  test('an empty alternative among others does not widen the match', () => {
    assert.deepEqual(select(OBJECTS, 'name==alpine', ''), ['alpine']);
  });

  test('whitespace around tokens is ignored', () => {
    assert.deepEqual(select(OBJECTS, ' kind == image , labels.env == prod '), ['alpine']);
  });

  test('a bare value may hold punctuation', () => {
    const objects = [{ name: 'docker.io/library/alpine:3.19@sha256:abc' }, { name: 'other' }];
    assert.deepEqual(select(objects, 'name==docker.io/library/alpine:3.19@sha256:abc'), ['docker.io/library/alpine:3.19@sha256:abc']);
  });

  for (const bad of [
    'name==',
    'name!=',
    'name~=',
    '==alpine',
    'name=alpine',
    'name==alpine,',
    ',name==alpine',
    'name==a,,kind==b',
    'name==a b',
    'name alpine',
    'labels.',
    'labels..a',
    '.name',
    'labels."unterminated',
    'name=="unterminated',
    'name~=/unterminated',
    'name~=[',
    'name~=/(/',
    'labels.containerd.io/gc.root',
    '!name',
    'name<=a',
  ]) {
    test(`malformed filter ${JSON.stringify(bad)} fails with InvalidArgument`, () => {
      invalid(() => parseFilters([bad]), /invalid filter/);
    });
  }

  test('one malformed alternative fails the whole list', () => {
    invalid(() => parseFilters(['name==ok', 'name==']));
  });
});

describe('filters through the stores', () => {
  test('images.list filters by name, target.digest, target.mediatype and labels', (t) => {
    const { ns } = setup(t);
    ns.images.create({ name: 'docker.io/library/alpine:3', target: desc('a', INDEX), labels: { env: 'prod', 'a.b': 'x' } });
    ns.images.create({ name: 'docker.io/library/busybox:1', target: desc('b'), labels: { env: 'dev' } });
    ns.images.create({ name: 'ghcr.io/org/tool:v1', target: desc('c') });
    const names = (...filters: string[]) => ns.images.list(...filters).map((i) => i.name);
    assert.deepEqual(names('name==docker.io/library/alpine:3'), ['docker.io/library/alpine:3']);
    assert.deepEqual(names('name~=^docker\\.io/'), ['docker.io/library/alpine:3', 'docker.io/library/busybox:1']);
    assert.deepEqual(names(`target.digest==${dg('b')}`), ['docker.io/library/busybox:1']);
    assert.deepEqual(names(`target.mediatype==${MANIFEST}`), ['docker.io/library/busybox:1', 'ghcr.io/org/tool:v1']);
    assert.deepEqual(names('labels.env'), ['docker.io/library/alpine:3', 'docker.io/library/busybox:1']);
    assert.deepEqual(names('labels."a.b"==x'), ['docker.io/library/alpine:3']);
    assert.deepEqual(names('labels.env==dev', 'name~=tool'), ['docker.io/library/busybox:1', 'ghcr.io/org/tool:v1']);
    assert.deepEqual(names('labels.env!=prod'), ['docker.io/library/busybox:1', 'ghcr.io/org/tool:v1']);
    assert.deepEqual(names('unknownfield'), []);
    invalid(() => ns.images.list('name=='));
  });

  test('content.list filters by digest, size and labels', (t) => {
    const { ns } = setup(t);
    ns.content.add({ digest: dg('1'), size: 10, labels: { 'containerd.io/uncompressed': dg('u1') } });
    ns.content.add({ digest: dg('2'), size: 20 });
    ns.content.add({ digest: dg('3'), size: 10, labels: { 'containerd.io/gc.root': 'true' } });
    const digests = (...filters: string[]) => ns.content.list(...filters).map((c) => c.digest);
    assert.deepEqual(digests(`digest==${dg('2')}`), [dg('2')]);
    assert.deepEqual(digests('size==10').sort(), [dg('1'), dg('3')].sort());
    assert.deepEqual(digests('labels."containerd.io/uncompressed"'), [dg('1')]);
    assert.deepEqual(digests('labels."containerd.io/gc.root"==true', `digest==${dg('2')}`).sort(), [dg('2'), dg('3')].sort());
    assert.deepEqual(digests('size==10,labels."containerd.io/gc.root"'), [dg('3')]);
    invalid(() => ns.content.list('size=10'));
  });

  test('snapshots.list filters by kind, key/name, parent and labels within one snapshotter', (t) => {
    const { ns } = setup(t);
    ns.snapshots.create({ snapshotter: 'overlayfs', key: 'base-active', kind: 'active' });
    ns.snapshots.commit('overlayfs', 'base-active', 'base');
    ns.snapshots.create({ snapshotter: 'overlayfs', key: 'child', parent: 'base', kind: 'active', labels: { x: '1' } });
    ns.snapshots.create({ snapshotter: 'overlayfs', key: 'view', parent: 'base', kind: 'view' });
    ns.snapshots.create({ snapshotter: 'native', key: 'other', kind: 'active', labels: { x: '1' } });
    const keys = (...filters: string[]) => ns.snapshots.list('overlayfs', ...filters).map((s) => s.key);
    assert.deepEqual(keys(), ['base', 'child', 'view']);
    assert.deepEqual(keys('kind==committed'), ['base']);
    assert.deepEqual(keys('kind==view', 'kind==active'), ['child', 'view']);
    assert.deepEqual(keys('parent==base'), ['child', 'view']);
    assert.deepEqual(keys('parent'), ['child', 'view']);
    assert.deepEqual(keys('name==child'), ['child']);
    assert.deepEqual(keys('key~=^b'), ['base']);
    assert.deepEqual(keys('labels.x==1'), ['child']);
    assert.deepEqual(keys('snapshotter==overlayfs,kind!=committed'), ['child', 'view']);
    invalid(() => ns.snapshots.list('overlayfs', 'kind~=['));
  });

  test('leases.list filters by id and labels', (t) => {
    const { ns } = setup(t);
    ns.leases.create({ id: 'pull-1', labels: { 'containerd.io/gc.flat': 'true' } });
    ns.leases.create({ id: 'pull-2' });
    ns.leases.create({ id: 'user-1', labels: { 'containerd.io/gc.expire': '2030-01-01T00:00:00Z' } });
    const ids = (...filters: string[]) => ns.leases.list(...filters).map((l) => l.id);
    assert.deepEqual(ids('id==pull-2'), ['pull-2']);
    assert.deepEqual(ids('id~=^pull-').sort(), ['pull-1', 'pull-2']);
    assert.deepEqual(ids('labels."containerd.io/gc.flat"'), ['pull-1']);
    assert.deepEqual(ids('labels."containerd.io/gc.expire"~=^2030', 'id==pull-2').sort(), ['pull-2', 'user-1']);
    invalid(() => ns.leases.list('id=="x'));
  });

  test('ingests.list filters by ref, expected and labels', (t) => {
    const { ns } = setup(t);
    ns.ingests.create({ ref: 'layer-1', dir: 'd1', expected: dg('l1'), labels: { k: 'v' } });
    ns.ingests.create({ ref: 'layer-2', dir: 'd2' });
    ns.ingests.create({ ref: 'manifest-1', dir: 'd3', expected: dg('m1') });
    const refs = (...filters: string[]) => ns.ingests.list(...filters).map((i) => i.ref);
    assert.deepEqual(refs('ref~=^layer'), ['layer-1', 'layer-2']);
    assert.deepEqual(refs('expected'), ['layer-1', 'manifest-1']);
    assert.deepEqual(refs(`expected==${dg('m1')}`), ['manifest-1']);
    assert.deepEqual(refs('labels.k==v'), ['layer-1']);
    invalid(() => ns.ingests.list('ref=='));
  });
});
