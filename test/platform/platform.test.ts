import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isInvalidArgument } from '../../src/errors.js';
import * as platforms from '../../src/platform.js';
import type { Platform } from '../../src/platform.js';

const host = platforms.defaultPlatform();
const hostVariant = host.architecture === 'arm' && host.variant !== 'v7' ? host.variant : undefined;

function p(os: string, architecture: string, variant?: string, extra: Partial<Platform> = {}): Platform {
  const out: Platform = { os, architecture, ...extra };
  if (variant) out.variant = variant;
  return out;
}

// containerd platforms_test.go TestParseSelector: input, parsed platform, other spellings
// that must match it, and the formatted form (which must survive a re-parse).
const PARSE_VECTORS: { input: string; expected: Platform; matches?: Platform[]; formatted: string; all?: boolean }[] = [
  { input: 'linux/arm64', expected: p('linux', 'arm64'), matches: [p('linux', 'aarch64'), p('linux', 'aarch64', 'v8'), p('linux', 'arm64', 'v8')], formatted: 'linux/arm64' },
  { input: 'linux/arm64/v8', expected: p('linux', 'arm64', 'v8'), matches: [p('linux', 'aarch64'), p('linux', 'aarch64', 'v8'), p('linux', 'arm64')], formatted: 'linux/arm64/v8' },
  { input: 'linux/arm', expected: p('linux', 'arm'), matches: [p('linux', 'arm', 'v7'), p('linux', 'armhf'), p('linux', 'arm', '7')], formatted: 'linux/arm' },
  { input: 'linux/arm/v6', expected: p('linux', 'arm', 'v6'), matches: [p('linux', 'armel')], formatted: 'linux/arm/v6' },
  { input: 'linux/arm/v7', expected: p('linux', 'arm', 'v7'), matches: [p('linux', 'arm'), p('linux', 'armhf')], formatted: 'linux/arm/v7' },
  { input: 'arm', expected: p(host.os, 'arm'), formatted: `${host.os}/arm` },
  { input: 'armel', expected: p(host.os, 'arm', 'v6'), formatted: `${host.os}/arm/v6` },
  { input: 'armhf', expected: p(host.os, 'arm'), formatted: `${host.os}/arm` },
  { input: 'Aarch64', expected: p(host.os, 'arm64'), formatted: `${host.os}/arm64` },
  { input: 'x86_64', expected: p(host.os, 'amd64'), formatted: `${host.os}/amd64` },
  { input: 'Linux/x86_64', expected: p('linux', 'amd64'), formatted: 'linux/amd64' },
  { input: 'i386', expected: p(host.os, '386'), formatted: `${host.os}/386` },
  { input: 'linux', expected: p('linux', host.architecture, hostVariant), formatted: ['linux', host.architecture, hostVariant].filter(Boolean).join('/') },
  { input: 's390x', expected: p(host.os, 's390x'), formatted: `${host.os}/s390x` },
  { input: 'linux/s390x', expected: p('linux', 's390x'), formatted: 'linux/s390x' },
  { input: 'linux/ppc64le', expected: p('linux', 'ppc64le'), formatted: 'linux/ppc64le' },
  { input: 'linux/riscv64', expected: p('linux', 'riscv64'), formatted: 'linux/riscv64' },
  { input: 'linux/x86-64/v1', expected: p('linux', 'amd64'), formatted: 'linux/amd64' },
  { input: 'macOS', expected: p('darwin', host.architecture, hostVariant), formatted: ['darwin', host.architecture, hostVariant].filter(Boolean).join('/') },
  { input: 'windows', expected: p('windows', host.architecture, hostVariant), formatted: ['windows', host.architecture, hostVariant].filter(Boolean).join('/') },
  { input: 'windows()', expected: p('windows', host.architecture, hostVariant), formatted: ['windows', host.architecture, hostVariant].filter(Boolean).join('/'), all: true },
  { input: 'windows(10.0.17763)', expected: p('windows', host.architecture, hostVariant, { 'os.version': '10.0.17763' }), formatted: ['windows(10.0.17763)', host.architecture, hostVariant].filter(Boolean).join('/'), all: true },
  { input: 'windows(10.0.17763+win32k)', expected: p('windows', host.architecture, hostVariant, { 'os.version': '10.0.17763', 'os.features': ['win32k'] }), formatted: ['windows(10.0.17763+win32k)', host.architecture, hostVariant].filter(Boolean).join('/'), all: true },
  { input: 'linux(+gpu+simd)', expected: p('linux', host.architecture, hostVariant, { 'os.features': ['gpu', 'simd'] }), formatted: ['linux(+gpu+simd)', host.architecture, hostVariant].filter(Boolean).join('/'), all: true },
  { input: 'linux(+unsorted+erofs)', expected: p('linux', host.architecture, hostVariant, { 'os.features': ['unsorted', 'erofs'] }), formatted: ['linux(+erofs+unsorted)', host.architecture, hostVariant].filter(Boolean).join('/'), all: true },
  { input: 'windows(10.0.17763%2Bbuild.42)', expected: p('windows', host.architecture, hostVariant, { 'os.version': '10.0.17763+build.42' }), formatted: ['windows(10.0.17763%2Bbuild.42)', host.architecture, hostVariant].filter(Boolean).join('/'), all: true },
  { input: 'windows(50%25done)', expected: p('windows', host.architecture, hostVariant, { 'os.version': '50%done' }), formatted: ['windows(50%25done)', host.architecture, hostVariant].filter(Boolean).join('/'), all: true },
];

describe('parse', () => {
  for (const vector of PARSE_VECTORS) {
    test(`parses ${JSON.stringify(vector.input)} like containerd, matches its other spellings and formats stably`, () => {
      const parsed = platforms.parse(vector.input);
      assert.deepEqual(parsed, vector.expected);
      const m = platforms.matcher(parsed);
      assert.ok(m.match(vector.expected));
      for (const other of vector.matches ?? []) assert.ok(m.match(other), `${vector.input} should match ${JSON.stringify(other)}`);
      const fmt = vector.all ? platforms.formatAll : platforms.format;
      const formatted = fmt(parsed);
      assert.equal(formatted, vector.formatted);
      assert.equal(fmt(platforms.parse(formatted)), formatted);
    });
  }

  for (const input of ['', '/linux/arm', 'linux/arm/', 'linux /arm', 'linux/&arm', 'linux/arm/foo/bar', '*', 'linux/*', 'notanos', 'windows(a(b))', 'linux(%zz)/amd64']) {
    test(`rejects ${JSON.stringify(input)} with InvalidArgument`, () => {
      assert.throws(() => platforms.parse(input), isInvalidArgument);
    });
  }

  test('parseAll names the invalid specifier', () => {
    assert.deepEqual(platforms.parseAll(['linux/amd64', 'linux/arm64']), [p('linux', 'amd64'), p('linux', 'arm64')]);
    assert.throws(() => platforms.parseAll(['linux/amd64', 'linux//x']), (err: Error) => isInvalidArgument(err) && err.message.includes('linux//x'));
  });
});

describe('format', () => {
  for (const [platform, expected] of [
    [p('windows', 'amd64', undefined, { 'os.version': '10.0.17763+build.42' }), 'windows(10.0.17763%2Bbuild.42)/amd64'],
    [p('windows', 'amd64', undefined, { 'os.version': '1.0(beta)' }), 'windows(1.0%28beta%29)/amd64'],
    [p('windows', 'amd64', undefined, { 'os.version': 'a/b' }), 'windows(a%2Fb)/amd64'],
    [p('linux', 'amd64', undefined, { 'os.features': ['feat+v2'] }), 'linux(+feat%2Bv2)/amd64'],
    [p('linux', 'amd64', undefined, { 'os.features': ['', 'gpu', '', 'simd'] }), 'linux(+gpu+simd)/amd64'],
  ] as const) {
    test(`formatAll escapes and round-trips ${expected}`, () => {
      assert.equal(platforms.formatAll(platform), expected);
      const reparsed = platforms.parse(expected);
      assert.equal(reparsed['os.version'], platform['os.version']);
    });
  }

  test('format leaves out os.version and says unknown without an OS', () => {
    assert.equal(platforms.format(p('windows', 'amd64', undefined, { 'os.version': '10.0' })), 'windows/amd64');
    assert.equal(platforms.format({ os: '', architecture: 'amd64' }), 'unknown');
  });
});

describe('normalize', () => {
  test('maps tool spellings to canonical names', () => {
    assert.deepEqual(platforms.normalize(p('Linux', 'x86_64')), p('linux', 'amd64'));
    assert.deepEqual(platforms.normalize(p('linux', 'aarch64', 'v8')), p('linux', 'arm64'));
    assert.deepEqual(platforms.normalize(p('linux', 'arm64', '9.0')), p('linux', 'arm64', 'v9'));
    assert.deepEqual(platforms.normalize(p('linux', 'arm')), p('linux', 'arm', 'v7'));
    assert.deepEqual(platforms.normalize(p('linux', 'arm', '6')), p('linux', 'arm', 'v6'));
    assert.deepEqual(platforms.normalize(p('linux', 'armhf')), p('linux', 'arm', 'v7'));
    assert.deepEqual(platforms.normalize(p('linux', 'i386', 'whatever')), p('linux', '386'));
    assert.deepEqual(platforms.normalize(p('linux', 'amd64', 'v1')), p('linux', 'amd64'));
    assert.deepEqual(platforms.normalize(p('linux', 'amd64', undefined, { 'os.features': ['b', 'a', 'b'] })), p('linux', 'amd64', undefined, { 'os.features': ['a', 'b'] }));
  });
});

// containerd compare_test.go TestOnly / TestOnlyStrict.
const ONLY: Record<string, { yes: string[]; no: string[] }> = {
  'linux/amd64': { yes: ['linux/amd64', 'linux/386'], no: ['linux/amd64/v2', 'linux/arm/v7', 'linux/arm64', 'windows/amd64', 'windows/arm'] },
  'linux/amd64/v2': { yes: ['linux/amd64', 'linux/amd64/v1', 'linux/amd64/v2', 'linux/386'], no: ['linux/amd64/v3', 'linux/amd64/v4', 'linux/arm/v7', 'linux/arm64', 'windows/amd64', 'windows/arm'] },
  'linux/386': { yes: ['linux/386'], no: ['linux/amd64', 'linux/arm/v7', 'linux/arm64', 'windows/amd64', 'windows/arm'] },
  'windows/amd64': { yes: ['windows/amd64', 'windows(10.0.17763)/amd64'], no: ['linux/amd64', 'linux/arm/v7', 'linux/arm64', 'windows/arm'] },
  'linux/arm/v8': { yes: ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8'], no: ['linux/amd64', 'linux/arm/v4', 'linux/arm64', 'windows/amd64', 'windows/arm'] },
  'linux/arm/v7': { yes: ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7'], no: ['linux/amd64', 'linux/arm/v4', 'linux/arm/v8', 'linux/arm64', 'windows/amd64', 'windows/arm'] },
  'linux/arm/v6': { yes: ['linux/arm/v5', 'linux/arm/v6'], no: ['linux/amd64', 'linux/arm', 'linux/arm/v4', 'linux/arm/v7', 'linux/arm/v8', 'linux/arm64', 'windows/amd64', 'windows/arm'] },
  'linux/arm/v5': { yes: ['linux/arm/v5'], no: ['linux/amd64', 'linux/arm', 'linux/arm/v4', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8', 'linux/arm64', 'windows/amd64', 'windows/arm'] },
  'linux/arm/v4': { yes: ['linux/arm/v4'], no: ['linux/amd64', 'linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8', 'linux/arm64', 'windows/amd64', 'windows/arm'] },
  'linux/arm64/v9': {
    yes: ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8', 'linux/arm64', 'linux/arm64/v8', 'linux/arm64/v8.1', 'linux/arm64/v8.2', 'linux/arm64/v8.3', 'linux/arm64/v8.4', 'linux/arm64/v8.5', 'linux/arm64/v9', 'linux/arm64/v9.0'],
    no: ['linux/amd64', 'linux/arm/v4', 'windows/amd64', 'windows/arm', 'linux/arm64/v8.6'],
  },
  'linux/arm64/v8.1': { yes: ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8', 'linux/arm64', 'linux/arm64/v8', 'linux/arm64/v8.1'], no: ['linux/amd64', 'linux/arm/v4', 'linux/arm/v9', 'linux/arm64/v9', 'windows/amd64', 'windows/arm'] },
  'linux/arm64': { yes: ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8', 'linux/arm64', 'linux/arm64/v8'], no: ['linux/amd64', 'linux/arm/v4', 'linux/arm/v9', 'linux/arm64/v9', 'windows/amd64', 'windows/arm'] },
};

const ONLY_STRICT: Record<string, { yes: string[]; no: string[] }> = {
  'linux/amd64': { yes: ['linux/amd64'], no: ['linux/386', 'linux/arm/v7', 'linux/arm64', 'windows/amd64', 'windows/arm'] },
  'windows(10.0.17763)/amd64': { yes: ['windows/amd64', 'windows(10.0.17763)/amd64'], no: ['linux/amd64', 'linux/arm/v7', 'linux/arm64', 'windows/arm'] },
  'linux/arm/v8': { yes: ['linux/arm/v8'], no: ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/amd64', 'linux/arm/v4', 'linux/arm64', 'windows/amd64', 'windows/arm'] },
  'linux/arm/v7': { yes: ['linux/arm', 'linux/arm/v7'], no: ['linux/arm/v5', 'linux/arm/v6', 'linux/amd64', 'linux/arm/v4', 'linux/arm/v8', 'linux/arm64', 'windows/amd64', 'windows/arm'] },
  'linux/arm64/v9': { yes: ['linux/arm64/v9', 'linux/arm64/v9.0'], no: ['linux/arm', 'linux/arm/v8', 'linux/amd64', 'linux/arm/v9', 'linux/arm64/v8', 'linux/arm64/v8.1', 'windows/amd64', 'windows/arm'] },
  'linux/arm64/v8.1': { yes: ['linux/arm64/v8.1'], no: ['linux/arm', 'linux/arm/v8', 'linux/amd64', 'linux/arm64/v8', 'linux/arm64/v9', 'windows/arm'] },
  'linux/arm64': { yes: ['linux/arm64', 'linux/arm64/v8'], no: ['linux/arm', 'linux/arm/v5', 'linux/arm/v8', 'linux/amd64', 'linux/arm/v9', 'linux/arm64/v9', 'windows/amd64'] },
};

describe('only', () => {
  for (const [spec, { yes, no }] of Object.entries(ONLY)) {
    test(`only(${spec}) matches what that platform can run and nothing else`, () => {
      const m = platforms.only(platforms.parse(spec));
      for (const s of yes) assert.equal(m.match(platforms.parse(s)), true, `${spec} should match ${s}`);
      for (const s of no) assert.equal(m.match(platforms.parse(s)), false, `${spec} should not match ${s}`);
    });
  }
  for (const [spec, { yes, no }] of Object.entries(ONLY_STRICT)) {
    test(`onlyStrict(${spec}) matches only spellings of that platform`, () => {
      const m = platforms.onlyStrict(platforms.parse(spec));
      for (const s of yes) assert.equal(m.match(platforms.parse(s)), true, `${spec} should match ${s}`);
      for (const s of no) assert.equal(m.match(platforms.parse(s)), false, `${spec} should not match ${s}`);
    });
  }

  test('a candidate with os.features the host lacks does not match', () => {
    const m = platforms.only(platforms.parse('linux(+gpu)/amd64'));
    assert.equal(m.match(platforms.parse('linux(+gpu)/amd64')), true);
    assert.equal(m.match(platforms.parse('linux/amd64')), true);
    assert.equal(m.match(platforms.parse('linux(+erofs)/amd64')), false);
  });
});

describe('ordering', () => {
  const index = [
    { platform: p('linux', 'arm', 'v6') },
    { platform: p('linux', '386') },
    { platform: p('linux', 'arm64') },
    {},
    { platform: p('linux', 'arm', 'v7') },
    { platform: p('linux', 'amd64') },
  ];

  test('only(arm64) sorts arm64 first, then arm v7, then arm v6', () => {
    const sorted = [...index].sort(platforms.comparator(platforms.only(p('linux', 'arm64'))));
    assert.deepEqual(sorted.slice(0, 3).map((d) => d.platform && platforms.format(d.platform)), ['linux/arm64', 'linux/arm/v7', 'linux/arm/v6']);
  });

  test('only(amd64) prefers amd64 over 386', () => {
    const m = platforms.only(p('linux', 'amd64'));
    assert.equal(m.less(p('linux', 'amd64'), p('linux', '386')), true);
    assert.equal(m.less(p('linux', '386'), p('linux', 'amd64')), false);
    assert.equal(m.less(p('linux', '386'), p('linux', 'arm64')), true);
  });

  test('ordered prefers earlier platforms; anyOf prefers matching ones without ranking them', () => {
    const o = platforms.ordered(p('linux', 'arm64'), p('linux', 'amd64'));
    assert.equal(o.less(p('linux', 'arm64'), p('linux', 'amd64')), true);
    assert.equal(o.less(p('linux', 'amd64'), p('linux', 'arm64')), false);
    const a = platforms.anyOf(p('linux', 'arm64'), p('linux', 'amd64'));
    assert.equal(a.less(p('linux', 'arm64'), p('linux', 'amd64')), false);
    assert.equal(a.less(p('linux', 'amd64'), p('linux', 'arm64')), false);
    assert.equal(a.less(p('linux', 'amd64'), p('linux', 's390x')), true);
    assert.equal(a.match(p('linux', 's390x')), false);
  });

  test('all matches every platform and prefers none', () => {
    assert.equal(platforms.all.match(p('plan9', 'mips')), true);
    assert.equal(platforms.all.less(p('linux', 'amd64'), p('linux', 'arm64')), false);
  });
});

describe('host platform', () => {
  test('the default platform is the normalised host os/arch and the default matcher accepts it', () => {
    const expectedArch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' } as Record<string, string>)[process.arch] ?? process.arch;
    assert.equal(host.os, process.platform === 'win32' ? 'windows' : process.platform);
    assert.equal(host.architecture, expectedArch);
    assert.deepEqual(platforms.normalize(host), host);
    assert.equal(platforms.defaultMatcher().match(host), true);
  });

  test('the ARM variant comes from /proc/cpuinfo, with the Raspberry Pi ARMv6 quirk', () => {
    assert.equal(platforms.armVariantFromCPUInfo('processor\t: 0\nCPU architecture: 8\n', 'arm64'), 'v8');
    assert.equal(platforms.armVariantFromCPUInfo('CPU architecture: 7\nmodel name\t: ARMv7 Processor rev 4 (v7l)\n', 'arm'), 'v7');
    assert.equal(platforms.armVariantFromCPUInfo('model name\t: ARMv6-compatible processor rev 7 (v6l)\nCPU architecture: 7\n', 'arm'), 'v6');
    assert.equal(platforms.armVariantFromCPUInfo('CPU architecture: 5TEJ\n', 'arm'), 'v5');
    assert.equal(platforms.armVariantFromCPUInfo('CPU architecture: weird\n', 'arm'), 'unknown');
    assert.equal(platforms.armVariantFromCPUInfo('flags: fpu vme\n', 'arm'), undefined);
  });
});
