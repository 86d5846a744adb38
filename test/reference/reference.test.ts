import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isInvalidArgument } from '../../src/errors.js';
import { parseReference, registryAPIHost } from '../../src/reference.js';

const F64 = 'f'.repeat(64);
const F128 = 'f'.repeat(128);

// Vectors from distribution/reference's reference_test.go and normalize_test.go, expressed
// after normalisation (no domain means docker.io; a single component gets library/).
const valid: { input: string; domain: string; path: string; tag?: string; digest?: string }[] = [
  { input: 'test_com', domain: 'docker.io', path: 'library/test_com' },
  { input: 'test.com:tag', domain: 'docker.io', path: 'library/test.com', tag: 'tag' },
  { input: 'test.com:5000', domain: 'docker.io', path: 'library/test.com', tag: '5000' },
  { input: 'test.com/repo:tag', domain: 'test.com', path: 'repo', tag: 'tag' },
  { input: 'test:5000/repo', domain: 'test:5000', path: 'repo' },
  { input: 'test:5000/repo:tag', domain: 'test:5000', path: 'repo', tag: 'tag' },
  { input: `test:5000/repo@sha256:${F64}`, domain: 'test:5000', path: 'repo', digest: `sha256:${F64}` },
  { input: `test:5000/repo:tag@sha256:${F64}`, domain: 'test:5000', path: 'repo', tag: 'tag', digest: `sha256:${F64}` },
  { input: 'lowercase:Uppercase', domain: 'docker.io', path: 'library/lowercase', tag: 'Uppercase' },
  // 255 characters of name exactly (the limit counts the domain).
  { input: `localhost/${'a/'.repeat(122)}a:tag-puts-this-over-max`, domain: 'localhost', path: `${'a/'.repeat(122)}a`, tag: 'tag-puts-this-over-max' },
  { input: 'sub-dom1.foo.com/bar/baz/quux', domain: 'sub-dom1.foo.com', path: 'bar/baz/quux' },
  { input: 'sub-dom1.foo.com/bar/baz/quux:some-long-tag', domain: 'sub-dom1.foo.com', path: 'bar/baz/quux', tag: 'some-long-tag' },
  { input: 'b.gcr.io/test.example.com/my-app:test.example.com', domain: 'b.gcr.io', path: 'test.example.com/my-app', tag: 'test.example.com' },
  { input: 'xn--n3h.com/myimage:xn--n3h.com', domain: 'xn--n3h.com', path: 'myimage', tag: 'xn--n3h.com' },
  { input: `xn--7o8h.com/myimage:xn--7o8h.com@sha512:${F128}`, domain: 'xn--7o8h.com', path: 'myimage', tag: 'xn--7o8h.com', digest: `sha512:${F128}` },
  { input: 'foo_bar.com:8080', domain: 'docker.io', path: 'library/foo_bar.com', tag: '8080' },
  { input: 'foo/foo_bar.com:8080', domain: 'docker.io', path: 'foo/foo_bar.com', tag: '8080' },
  { input: '192.168.1.1', domain: 'docker.io', path: 'library/192.168.1.1' },
  { input: '192.168.1.1:5000', domain: 'docker.io', path: 'library/192.168.1.1', tag: '5000' },
  { input: '192.168.1.1/repo', domain: '192.168.1.1', path: 'repo' },
  { input: '192.168.1.1:5000/repo:5050', domain: '192.168.1.1:5000', path: 'repo', tag: '5050' },
  { input: '[2001:db8::1]/repo', domain: '[2001:db8::1]', path: 'repo' },
  { input: '[2001:db8:1:2:3:4:5:6]/repo:tag', domain: '[2001:db8:1:2:3:4:5:6]', path: 'repo', tag: 'tag' },
  { input: '[2001:db8::1]:5000/repo', domain: '[2001:db8::1]:5000', path: 'repo' },
  { input: `[2001:db8::1]:5000/repo:tag@sha256:${F64}`, domain: '[2001:db8::1]:5000', path: 'repo', tag: 'tag', digest: `sha256:${F64}` },
  { input: '[::1]:5000/repo', domain: '[::1]:5000', path: 'repo' },
  { input: 'localhost/repo', domain: 'localhost', path: 'repo' },
  { input: 'localhost:5000/a/b', domain: 'localhost:5000', path: 'a/b' },
  { input: 'docker-rules/docker', domain: 'docker.io', path: 'docker-rules/docker' },
  { input: 'docker---rules/docker', domain: 'docker.io', path: 'docker---rules/docker' },
  { input: 'dock__er/docker', domain: 'docker.io', path: 'dock__er/docker' },
  { input: 'd/docker', domain: 'docker.io', path: 'd/docker' },
  { input: 'Docker/docker', domain: 'Docker', path: 'docker' },
  { input: 'docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', domain: 'docker.io', path: 'library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a' },
];

const invalid = [
  '',
  ':justtag',
  `@sha256:${F64}`,
  'repo@sha256:ffffffffffffffffffffffffffffffffff',
  `validname@invaliddigest:${F64}`,
  `validname@md5:${'f'.repeat(32)}`,
  'Uppercase:tag',
  'test:5000/Uppercase/lowercase:tag',
  `${'a/'.repeat(128)}a:tag`,
  // Valid for distribution's Parse, but normalised it becomes docker.io/a/a/... (265 characters).
  `${'a/'.repeat(127)}a:tag-puts-this-over-max`,
  'aa/asdf$$^/aa',
  '[2001:db8::1]',
  '[2001:db8::1]:5000',
  '[2001:db8::1]:tag',
  '[fe80::1%eth0]:5000/repo',
  '[fe80::1%@invalidzone]:5000/repo',
  'https://github.com/docker/docker',
  'docker/Docker',
  '-docker',
  '-docker/docker',
  '-docker.io/docker/docker',
  'docker///docker',
  'docker.io/docker/Docker',
  'fc00::1:5000/debian',
  '[2001:db8:3:4::192.0.2.33]:5000/debian',
  '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
  'docker-/docker',
  '____/____',
  '_docker/_docker',
  'dock..er/docker',
  'dock_.er/docker',
  'dock-.er/docker',
  'docker/',
  `${'x'.repeat(300)}/docker`,
  'repo:-tag',
  `repo:${'t'.repeat(129)}`,
  `${'a'.repeat(5000)}`,
];

describe('parseReference', () => {
  test('parses the distribution reference grammar and normalises Docker Hub names', () => {
    for (const v of valid) {
      const ref = parseReference(v.input, { defaultTag: false });
      assert.equal(ref.domain, v.domain, v.input);
      assert.equal(ref.path, v.path, v.input);
      assert.equal(ref.tag, v.tag, v.input);
      assert.equal(ref.digest, v.digest, v.input);
      assert.equal(ref.name, `${v.domain}/${v.path}`);
    }
  });

  test('rejects malformed references with InvalidArgument', () => {
    for (const input of invalid) {
      assert.throws(() => parseReference(input), (err: unknown) => isInvalidArgument(err), JSON.stringify(input.slice(0, 60)));
    }
  });

  test('names the uppercase repository in the error', () => {
    assert.throws(() => parseReference('test:5000/Uppercase/lowercase:tag'), /"Uppercase\/lowercase" must be lowercase/);
  });

  test('adds the latest tag only when neither tag nor digest is given', () => {
    assert.equal(parseReference('alpine').toString(), 'docker.io/library/alpine:latest');
    assert.equal(parseReference('user/img').toString(), 'docker.io/user/img:latest');
    assert.equal(parseReference(`alpine@sha256:${F64}`).toString(), `docker.io/library/alpine@sha256:${F64}`);
    assert.equal(parseReference('alpine', { defaultTag: false }).toString(), 'docker.io/library/alpine');
    assert.equal(parseReference('alpine', { defaultTag: 'edge' }).tag, 'edge');
  });

  test('treats index.docker.io and docker.io as Docker Hub', () => {
    for (const input of ['index.docker.io/library/debian', 'docker.io/debian', 'index.docker.io/debian', 'debian', 'library/debian']) {
      assert.equal(parseReference(input).toString(), 'docker.io/library/debian:latest', input);
    }
    assert.equal(parseReference('index.docker.io/docker/docker').name, 'docker.io/docker/docker');
  });

  test('familiarName drops docker.io and library/ like the docker CLI', () => {
    const cases: [string, string][] = [
      ['docker.io/fooo/bar', 'fooo/bar'],
      ['docker.io/library/ubuntu', 'ubuntu'],
      ['docker.io/library/foo/bar', 'library/foo/bar'],
      ['docker.io/store/foo/bar', 'store/foo/bar'],
      ['docker.io/other/library', 'other/library'],
      ['127.0.0.1:8000/private/moonbase', '127.0.0.1:8000/private/moonbase'],
      ['example.com/privatebase', 'example.com/privatebase'],
      ['Foo/bar', 'Foo/bar'],
    ];
    for (const [input, familiar] of cases) assert.equal(parseReference(input).familiarName(), familiar, input);
  });

  test('keeps tag and digest together, and the digest is what gets fetched', () => {
    const short = `busybox:latest@sha256:${F64}`;
    const ref = parseReference(short);
    assert.equal(ref.toString(), `docker.io/library/${short}`);
    assert.equal(ref.familiarString(), short);
    assert.equal(ref.object, `sha256:${F64}`);
    assert.equal(parseReference('busybox:1.36').object, '1.36');
  });

  test('withTag and withDigest validate what they add', () => {
    const ref = parseReference('test.com:8000/foo', { defaultTag: false });
    assert.equal(ref.withTag('TAG5').toString(), 'test.com:8000/foo:TAG5');
    assert.equal(ref.withDigest(`sha256:${F64}`).withTag('t').toString(), `test.com:8000/foo:t@sha256:${F64}`);
    assert.throws(() => ref.withTag('-foo'), (err: unknown) => isInvalidArgument(err));
    assert.throws(() => ref.withDigest('foo'), (err: unknown) => isInvalidArgument(err));
  });

  test('docker.io is served by registry-1.docker.io, other domains by themselves', () => {
    assert.equal(registryAPIHost(parseReference('alpine').domain), 'registry-1.docker.io');
    assert.equal(registryAPIHost(parseReference('localhost:5000/a').domain), 'localhost:5000');
  });
});
