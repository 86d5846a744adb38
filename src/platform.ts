/**
 * Platforms: parsing the `os[(version+features)]/arch[/variant]` specifier syntax,
 * normalising what tools write (x86_64, aarch64, armhf...), the host's default platform,
 * and matchers that pick manifests out of an index. Semantics follow containerd's
 * `platforms` package, so a specifier means here what it means to `ctr` and nerdctl.
 *
 * Meant to be imported as a namespace, like containerd's package:
 *
 *   import * as platforms from './platform.js';
 *   const want = platforms.only(platforms.parse('linux/arm64'));
 *   const best = index.manifests.filter((m) => m.platform && want.match(m.platform)).sort(platforms.comparator(want))[0];
 *
 * Windows `os.version` matching (build-number compatibility) is not implemented: layerpool
 * unpacks Linux layers, so os.version is carried along but never compared.
 */
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import type { Platform } from './descriptor.js';
import { InvalidArgumentError } from './errors.js';
import { logger } from './log.js';

export type { Platform };

/** Matches platforms a component (image, runtime) declares. */
export interface Matcher {
  match(platform: Platform): boolean;
}

/** A Matcher that also orders platforms by preference: `less(a, b)` means a is preferred. */
export interface MatchComparer extends Matcher {
  less(a: Platform, b: Platform): boolean;
}

// Go's syslist.go, as containerd's database.go: a lone word is an OS if it is one of these.
const KNOWN_OS = new Set([
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux',
  'nacl', 'netbsd', 'openbsd', 'plan9', 'solaris', 'windows', 'zos',
]);
const KNOWN_ARCH = new Set([
  '386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'ppc64', 'ppc64le', 'loong64',
  'mips', 'mipsle', 'mips64', 'mips64le', 'mips64p32', 'mips64p32le', 'ppc', 'riscv', 'riscv64',
  's390', 's390x', 'sparc', 'sparc64', 'wasm',
]);

const COMPONENT = /^[A-Za-z0-9_.-]+$/;
// `os` optionally followed by `(version+feature+feature...)`; `%` escapes `+ ( ) / %`.
const OS_COMPONENT = /^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?$/;

const NODE_OS: Record<string, string> = {
  linux: 'linux', darwin: 'darwin', win32: 'windows', freebsd: 'freebsd', openbsd: 'openbsd',
  netbsd: 'netbsd', aix: 'aix', sunos: 'solaris', android: 'android',
};
const NODE_ARCH: Record<string, string> = {
  x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', s390x: 's390x', s390: 's390',
  riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle', ppc: 'ppc',
  // Node says ppc64 for both byte orders; Linux distributions ship the little-endian one.
  ppc64: endianness() === 'LE' ? 'ppc64le' : 'ppc64',
};

function normalizeOS(os: string): string {
  if (os === '') return hostOS();
  const lower = os.toLowerCase();
  return lower === 'macos' ? 'darwin' : lower;
}

/** containerd's normalizeArch: canonical architecture and variant names. */
function normalizeArch(arch: string, variant: string): { architecture: string; variant: string } {
  arch = arch.toLowerCase();
  variant = variant.toLowerCase();
  switch (arch) {
    case 'i386':
      return { architecture: '386', variant: '' };
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return { architecture: 'amd64', variant: variant === 'v1' ? '' : variant };
    case 'aarch64':
    case 'arm64':
      // v8 is the arm64 baseline, written without a variant; v9.0 is v9.
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      else if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9';
      return { architecture: 'arm64', variant };
    case 'armhf':
      return { architecture: 'arm', variant: 'v7' };
    case 'armel':
      return { architecture: 'arm', variant: 'v6' };
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      return { architecture: 'arm', variant };
    default:
      return { architecture: arch, variant };
  }
}

function make(os: string, architecture: string, variant: string, extra: Pick<Platform, 'os.version' | 'os.features'> = {}): Platform {
  const platform: Platform = { os, architecture };
  if (variant !== '') platform.variant = variant;
  if (extra['os.version']) platform['os.version'] = extra['os.version'];
  if (extra['os.features'] && extra['os.features'].length > 0) platform['os.features'] = extra['os.features'];
  return platform;
}

/**
 * The canonical form of a platform: lower case, `x86_64` -> `amd64`, `aarch64` -> `arm64`,
 * arm64 `v8` -> no variant, arm without variant -> `v7`, `armhf` -> arm v7, `armel` ->
 * arm v6, amd64 `v1` -> no variant; os.features sorted and deduplicated.
 */
export function normalize(platform: Platform): Platform {
  const { architecture, variant } = normalizeArch(platform.architecture, platform.variant ?? '');
  const features = platform['os.features'] ? [...new Set(platform['os.features'])].sort() : undefined;
  const extra: Pick<Platform, 'os.version' | 'os.features'> = {};
  if (platform['os.version']) extra['os.version'] = platform['os.version'];
  if (features) extra['os.features'] = features;
  return make(normalizeOS(platform.os), architecture, variant, extra);
}

function decodeOSOption(value: string, specifier: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new InvalidArgumentError(`invalid platform ${JSON.stringify(specifier)}: bad %-escape in ${JSON.stringify(value)}`);
  }
}

function encodeOSOption(value: string): string {
  return value.replace(/[%+()/]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Parse a platform specifier: `<os>|<arch>|<os>/<arch>[/<variant>]`, where `<os>` may carry
 * `(<os.version>[+<feature>]*)`. A lone word is an OS if it is a known one (the host's
 * architecture is filled in), else an architecture (the host's OS is filled in). The result
 * is normalised, except that `linux/arm64/v8` keeps its explicit v8 (as containerd does).
 * Anything else is InvalidArgument.
 */
export function parse(specifier: string): Platform {
  const invalid = (why: string): InvalidArgumentError =>
    new InvalidArgumentError(`invalid platform ${JSON.stringify(specifier)}: ${why}`);
  if (typeof specifier !== 'string' || specifier === '') throw invalid('empty specifier');
  if (specifier.includes('*')) throw invalid('wildcards are not supported');
  const parts = specifier.split('/');
  if (parts.length > 3) throw invalid('expected <os>/<arch>[/<variant>]');
  const osMatch = OS_COMPONENT.exec(parts[0] as string);
  if (!osMatch) throw invalid(`${JSON.stringify(parts[0])} is not a valid OS component`);
  for (const part of parts.slice(1)) {
    if (!COMPONENT.test(part)) throw invalid(`${JSON.stringify(part)} must match ${COMPONENT.source}`);
  }
  const os = normalizeOS(osMatch[1] as string);
  const extra: Pick<Platform, 'os.version' | 'os.features'> = {};
  const version = decodeOSOption(osMatch[2] ?? '', specifier);
  if (version !== '') extra['os.version'] = version;
  if (osMatch[3]) extra['os.features'] = osMatch[3].slice(1).split('+').map((f) => decodeOSOption(f, specifier));

  if (parts.length === 1) {
    if (KNOWN_OS.has(os)) {
      const host = hostPlatform();
      // The host's arm variant is kept unless it is v7, the arm default written without one.
      const variant = host.architecture === 'arm' && host.variant !== 'v7' ? (host.variant ?? '') : '';
      return make(os, host.architecture, variant, extra);
    }
    const { architecture, variant } = normalizeArch(parts[0] as string, '');
    if (KNOWN_ARCH.has(architecture)) return make(hostOS(), architecture, architecture === 'arm' && variant === 'v7' ? '' : variant);
    throw invalid('unknown operating system or architecture');
  }
  if (parts.length === 2) {
    const { architecture, variant } = normalizeArch(parts[1] as string, '');
    return make(os, architecture, architecture === 'arm' && variant === 'v7' ? '' : variant, extra);
  }
  const { architecture, variant } = normalizeArch(parts[1] as string, parts[2] as string);
  return make(os, architecture, architecture === 'arm64' && variant === '' ? 'v8' : variant, extra);
}

/** Parse several specifiers; the first invalid one throws. */
export function parseAll(specifiers: readonly string[]): Platform[] {
  return specifiers.map(parse);
}

/** `os/arch[/variant]`, or `unknown` when the OS is empty. */
export function format(platform: Platform): string {
  if (!platform.os) return 'unknown';
  return [platform.os, platform.architecture, platform.variant].filter((p) => p).join('/');
}

/** Like format, with os.version and sorted os.features: `windows(10.0.17763+win32k)/amd64`. */
export function formatAll(platform: Platform): string {
  if (!platform.os) return 'unknown';
  let options = encodeOSOption(platform['os.version'] ?? '');
  for (const feature of [...(platform['os.features'] ?? [])].filter((f) => f !== '').sort()) options += `+${encodeOSOption(feature)}`;
  const os = options === '' ? platform.os : `${platform.os}(${options})`;
  return [os, platform.architecture, platform.variant].filter((p) => p).join('/');
}

/**
 * Exact matcher: equal os, architecture and variant after normalisation; the candidate's
 * os.features must be a subset of the wanted ones (a feature the host lacks is a mismatch).
 */
export function matcher(platform: Platform): Matcher {
  const want = normalize(platform);
  const wantFeatures = new Set(want['os.features'] ?? []);
  return {
    match(candidate: Platform): boolean {
      const got = normalize(candidate);
      if (got.os !== want.os || got.architecture !== want.architecture || (got.variant ?? '') !== (want.variant ?? '')) return false;
      return (got['os.features'] ?? []).every((f) => wantFeatures.has(f));
    },
  };
}

function withVariant(platform: Platform, architecture: string, variant: string): Platform {
  const out = make(platform.os, architecture, variant);
  if (platform['os.version']) out['os.version'] = platform['os.version'];
  if (platform['os.features']) out['os.features'] = platform['os.features'];
  return out;
}

function variantNumber(variant: string | undefined): number {
  return /^v\d+$/.test(variant ?? '') ? Number((variant as string).slice(1)) : NaN;
}

/**
 * The platforms a normalised platform can run, most preferred first (containerd's
 * platformVector): amd64/vN runs amd64 v(N-1)..v1 and 386; arm/vN runs arm v(N-1)..v5;
 * arm64/v8.x runs v8.(x-1)..v8 and 32-bit arm v8..v5; arm64/v9.x runs v9.(x-1)..v9,
 * then v8.(x+5)..v8 (v9.0 forked from v8.5) and 32-bit arm.
 */
function compatible(platform: Platform): Platform[] {
  const vector = [platform];
  switch (platform.architecture) {
    case 'amd64': {
      const level = variantNumber(platform.variant);
      for (let v = level - 1; v >= 1; v--) vector.push(withVariant(platform, 'amd64', `v${v}`));
      vector.push(withVariant(platform, '386', ''));
      break;
    }
    case 'arm': {
      const level = variantNumber(platform.variant);
      for (let v = level - 1; v >= 5; v--) vector.push(withVariant(platform, 'arm', `v${v}`));
      break;
    }
    case 'arm64': {
      const variant = platform.variant ?? 'v8';
      const match = /^v(\d+)(?:\.(\d+))?$/.exec(variant);
      if (match && Number(match[1]) >= 8) {
        let major = Number(match[1]);
        let minor = match[2] === undefined ? 0 : Number(match[2]);
        const push = (ma: number, mi: number): void => {
          vector.push(withVariant(platform, 'arm64', mi === 0 ? `v${ma}` : `v${ma}.${mi}`));
        };
        if (major === 9) {
          for (let m = minor - 1; m >= 0; m--) push(9, m);
          minor += 5;
          major = 8;
          push(8, minor);
        }
        for (let m = minor - 1; m >= 0; m--) push(major, m);
      }
      vector.push(...compatible(withVariant(platform, 'arm', /^v[89]\./.test(variant) ? 'v8' : variant)));
      break;
    }
  }
  return vector;
}

/** A comparer over matchers, preferring the first that matches. */
export function ordered(...platforms: Platform[]): MatchComparer {
  const matchers = platforms.map(matcher);
  return {
    match: (p) => matchers.some((m) => m.match(p)),
    less(a, b) {
      for (const m of matchers) {
        const am = m.match(a);
        const bm = m.match(b);
        if (am && !bm) return true;
        if (am || bm) return false;
      }
      return false;
    },
  };
}

/** Matches any of the platforms, with no preference among them (matching ones sort first). */
export function anyOf(...platforms: Platform[]): MatchComparer {
  const matchers = platforms.map(matcher);
  return {
    match: (p) => matchers.some((m) => m.match(p)),
    less: (a, b) => matchers.some((m) => m.match(a)) && !matchers.some((m) => m.match(b)),
  };
}

/**
 * The platform and everything it can run, best first: `only(linux/arm64)` also matches
 * linux/arm/v8..v5 and prefers arm64; `only(linux/amd64)` also matches linux/386.
 */
export function only(platform: Platform): MatchComparer {
  return ordered(...compatible(normalize(platform)));
}

/** The platform alone (after normalisation): arm/v7 does not match arm/v6, amd64 not 386. */
export function onlyStrict(platform: Platform): MatchComparer {
  return ordered(normalize(platform));
}

/** Matches every platform, prefers none: `allPlatforms`. */
export const all: MatchComparer = { match: () => true, less: () => false };

/** An Array.prototype.sort comparator: preferred platforms first, a stable order otherwise. */
export function comparator(comparer: MatchComparer): (a: { platform?: Platform }, b: { platform?: Platform }) => number {
  return (a, b) => {
    if (!a.platform || !b.platform) return a.platform ? -1 : b.platform ? 1 : 0;
    if (comparer.less(a.platform, b.platform)) return -1;
    return comparer.less(b.platform, a.platform) ? 1 : 0;
  };
}

function hostOS(): string {
  return NODE_OS[process.platform] ?? process.platform;
}

/**
 * The ARM variant the kernel reports in /proc/cpuinfo (`CPU architecture: 7` -> v7), with
 * the Raspberry Pi quirk (ARMv6 boards report 7, their model name says ARMv6). Exported
 * for tests; `undefined` when the text has no answer.
 */
export function armVariantFromCPUInfo(cpuinfo: string, architecture: string): string | undefined {
  const field = (name: string): string | undefined => {
    for (const line of cpuinfo.split('\n')) {
      const colon = line.indexOf(':');
      if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) return line.slice(colon + 1).trim();
    }
    return undefined;
  };
  let value = field('cpu architecture')?.toLowerCase();
  if (value === undefined) return undefined;
  if (architecture === 'arm' && value === '7' && field('model name')?.toLowerCase().startsWith('armv6-compatible')) value = '6';
  if (value === '8' || value === 'aarch64') return 'v8';
  if (['7', '7m', '?(12)', '?(13)', '?(14)', '?(15)', '?(16)', '?(17)'].includes(value)) return 'v7';
  if (value === '6' || value === '6tej') return 'v6';
  if (['5', '5t', '5te', '5tej'].includes(value)) return 'v5';
  if (value === '4' || value === '4t') return 'v4';
  if (value === '3') return 'v3';
  return 'unknown';
}

let host: Platform | undefined;

function hostPlatform(): Platform {
  if (host) return host;
  const architecture = NODE_ARCH[process.arch] ?? process.arch;
  let variant = '';
  if (architecture === 'arm' || architecture === 'arm64') {
    try {
      variant = armVariantFromCPUInfo(readFileSync('/proc/cpuinfo', 'utf8'), architecture) ?? '';
    } catch (err) {
      logger('platform').warn({ err }, 'cannot read /proc/cpuinfo for the ARM variant');
    }
    if (variant === '' && architecture === 'arm64') variant = 'v8';
  }
  host = make(hostOS(), architecture, variant);
  return host;
}

/**
 * The host's platform, as images declare it: os and architecture from Node, the ARM
 * variant from /proc/cpuinfo (arm64 v8 is written without a variant, after normalisation).
 * amd64 gets no microarchitecture level: unlike containerd >= 2.0, layerpool does not
 * prefer amd64/v3 images on a v3 host; `only(parse('linux/amd64/v3'))` does, when asked.
 */
export function defaultPlatform(): Platform {
  return normalize(hostPlatform());
}

/** What a pull picks when no platform is given: the host's platform and what it can run. */
export function defaultMatcher(): MatchComparer {
  return only(hostPlatform());
}
