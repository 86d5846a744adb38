/**
 * Image references: `[host[:port]/]path[:tag][@digest]`, parsed per the distribution
 * reference grammar and normalised the way Docker and containerd do it
 * (`alpine` is `docker.io/library/alpine:latest`).
 */
import { parseDigest } from './digest.js';
import { InvalidArgumentError } from './errors.js';

/** The registry that short names (`alpine`, `user/img`) belong to. */
export const DOCKER_HUB_DOMAIN = 'docker.io';
/** docker.io is an alias: the registry API is served by this host. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
const LEGACY_DOCKER_HUB_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';

// distribution/reference regexp.go, term by term.
const ALPHANUMERIC = '[a-z0-9]+';
// One period, one or two underscores, or any number of dashes.
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const DOMAIN_NAME_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_NAME_COMPONENT}(?:\\.${DOMAIN_NAME_COMPONENT})*`;
// Bracketed IPv6 without zone identifiers or IPv4-mapped forms.
const IPV6_ADDRESS = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN_AND_PORT = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
// Loose on purpose: the digest is then validated by src/digest.ts (sha256/sha512 only).
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const REFERENCE_RE = new RegExp(`^((?:${DOMAIN_AND_PORT}/)?${REMOTE_NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const NAME_RE = new RegExp(`^(?:(${DOMAIN_AND_PORT})/)?(${REMOTE_NAME})$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const HEX_IDENTIFIER_RE = /^[a-f0-9]{64}$/;

/** distribution's NameTotalLengthMax: domain and path together. */
const NAME_MAX = 255;
// Longest possible reference: name + ':' + tag + '@sha512:' + 128 hex. Checked before any
// regular expression runs, so a hostile string cannot make matching slow.
const REFERENCE_MAX = NAME_MAX + 1 + 128 + 1 + 7 + 128;

export interface ParseReferenceOptions {
  /** Tag added when the reference has neither tag nor digest; `false` adds none. Default `latest`. */
  defaultTag?: string | false;
}

/** A parsed, normalised image reference. Immutable. */
export class Reference {
  /** Registry domain as written, normalised for Docker Hub: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly domain: string;
  /** Repository path inside the registry: `library/alpine`. */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;

  constructor(parts: { domain: string; path: string; tag?: string | undefined; digest?: string | undefined }) {
    this.domain = parts.domain;
    this.path = parts.path;
    this.tag = parts.tag;
    this.digest = parts.digest;
  }

  /** Repository name with its domain: `docker.io/library/alpine`. */
  get name(): string {
    return `${this.domain}/${this.path}`;
  }

  /**
   * What `/v2/<path>/manifests/<object>` names: the digest when there is one (a digest
   * pins the content; the tag is then only informative), else the tag.
   */
  get object(): string {
    const object = this.digest ?? this.tag;
    if (object === undefined) throw new InvalidArgumentError(`reference ${this.toString()} has neither tag nor digest`);
    return object;
  }

  /** The short name people type: `alpine`, `user/img`, `localhost:5000/img`. */
  familiarName(): string {
    if (this.domain !== DOCKER_HUB_DOMAIN) return this.name;
    const rest = this.path.slice(OFFICIAL_REPO_PREFIX.length);
    return this.path.startsWith(OFFICIAL_REPO_PREFIX) && !rest.includes('/') ? rest : this.path;
  }

  /** `familiarName()` with tag and digest: `busybox:latest@sha256:...`. */
  familiarString(): string {
    return this.familiarName() + this.suffix();
  }

  /** Canonical form: `docker.io/library/alpine:latest`, `host:5000/a/b:tag@sha256:...`. */
  toString(): string {
    return this.name + this.suffix();
  }

  withTag(tag: string): Reference {
    validateTag(tag);
    return new Reference({ domain: this.domain, path: this.path, tag, digest: this.digest });
  }

  withDigest(digest: string): Reference {
    parseDigest(digest);
    return new Reference({ domain: this.domain, path: this.path, tag: this.tag, digest });
  }

  private suffix(): string {
    return (this.tag === undefined ? '' : `:${this.tag}`) + (this.digest === undefined ? '' : `@${this.digest}`);
  }
}

/**
 * Split the first path component off as the domain when it looks like one: it contains
 * `.` or `:`, is `localhost`, or has uppercase letters (which a path never has).
 * Otherwise the whole string is a Docker Hub path (distribution's splitDockerDomain).
 */
function splitDockerDomain(input: string): { domain: string; remainder: string } {
  const slash = input.indexOf('/');
  const first = slash === -1 ? '' : input.slice(0, slash);
  let domain: string;
  let remainder: string;
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DOCKER_HUB_DOMAIN;
    remainder = input;
  } else {
    domain = first;
    remainder = input.slice(slash + 1);
  }
  if (domain === LEGACY_DOCKER_HUB_DOMAIN) domain = DOCKER_HUB_DOMAIN;
  if (domain === DOCKER_HUB_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/**
 * Parse and normalise a reference. Malformed input (bad grammar, uppercase in the path,
 * a name over 255 characters, an invalid or unsupported digest) is InvalidArgument.
 */
export function parseReference(input: string, options: ParseReferenceOptions = {}): Reference {
  if (typeof input !== 'string' || input.length === 0) throw new InvalidArgumentError('invalid reference: empty');
  const shown = JSON.stringify(input.length > 140 ? `${input.slice(0, 140)}...` : input);
  if (input.length > REFERENCE_MAX) throw new InvalidArgumentError(`invalid reference ${shown}: too long`);
  if (HEX_IDENTIFIER_RE.test(input)) {
    throw new InvalidArgumentError(`invalid reference ${shown}: a 64-character hex string is an image ID, not a repository name`);
  }
  const { domain, remainder } = splitDockerDomain(input);
  const remoteName = remainder.split(/[:@]/, 1)[0] as string;
  if (remoteName.toLowerCase() !== remoteName) {
    throw new InvalidArgumentError(`invalid reference ${shown}: repository name ${JSON.stringify(remoteName)} must be lowercase`);
  }
  const match = REFERENCE_RE.exec(`${domain}/${remainder}`);
  if (!match) throw new InvalidArgumentError(`invalid reference format: ${shown}`);
  const name = match[1] as string;
  if (name.length > NAME_MAX) throw new InvalidArgumentError(`invalid reference ${shown}: repository name must not be more than ${NAME_MAX} characters`);
  const parts = NAME_RE.exec(name);
  if (!parts || parts[1] === undefined) throw new InvalidArgumentError(`invalid reference format: ${shown}`);
  let tag = match[2];
  const digest = match[3];
  if (digest !== undefined) {
    try {
      parseDigest(digest);
    } catch (err) {
      throw new InvalidArgumentError(`invalid reference ${shown}: ${(err as Error).message}`);
    }
  }
  const defaultTag = options.defaultTag ?? DEFAULT_TAG;
  if (tag === undefined && digest === undefined && defaultTag !== false) tag = defaultTag;
  return new Reference({ domain: parts[1], path: parts[2] as string, tag, digest });
}

/** A tag: `[\w][\w.-]{0,127}`; anything else is InvalidArgument. */
export function validateTag(tag: string): string {
  if (typeof tag !== 'string' || !TAG_RE.test(tag)) throw new InvalidArgumentError(`invalid tag ${JSON.stringify(String(tag).slice(0, 140))}`);
  return tag;
}

/** The host that serves the registry API for a reference domain (docker.io is an alias). */
export function registryAPIHost(domain: string): string {
  return domain === DOCKER_HUB_DOMAIN ? DOCKER_HUB_API_HOST : domain;
}
