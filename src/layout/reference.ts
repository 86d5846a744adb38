/**
 * References to images in an OCI image layout: `oci-layout://<dir>[:<tag>][@<digest>]`,
 * and the names a layout's index.json gives them (`org.opencontainers.image.ref.name`).
 */
import { parseDigest } from '../digest.js';
import { InvalidArgumentError } from '../errors.js';

export const LAYOUT_SCHEME = 'oci-layout://';

/** The annotation that names an index.json entry (image-spec annotations.md). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
/** containerd's export also writes the full image name here; read as a fallback. */
export const CONTAINERD_IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';

// image-spec annotations.md, org.opencontainers.image.ref.name:
//   ref       ::= component ("/" component)*
//   component ::= alphanum (separator alphanum)*
//   separator ::= [-._:@+] | "--"
const REF_NAME = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

/** Validate a name for `org.opencontainers.image.ref.name`; InvalidArgument otherwise. */
export function validateRefName(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 4096 || !REF_NAME.test(name)) {
    throw new InvalidArgumentError(`invalid OCI layout ref name ${JSON.stringify(String(name).slice(0, 200))}: must match the image-spec ref grammar (e.g. "latest", "v1.2", "example.com/app:v1")`);
  }
  return name;
}

export interface LayoutReference {
  /** The layout directory, as written (relative paths stay relative). */
  dir: string;
  tag?: string;
  digest?: string;
}

/**
 * Parse `oci-layout://<dir>[:<tag>][@<digest>]`. The digest is split at the last `@`; the
 * tag is what follows the last `:` after the last `/`, so directories with colons in
 * earlier components still work (`oci-layout:///mnt/c:/images/app:v1`).
 */
export function parseLayoutReference(reference: string): LayoutReference {
  if (typeof reference !== 'string' || !reference.startsWith(LAYOUT_SCHEME)) {
    throw new InvalidArgumentError(`not an OCI layout reference: ${JSON.stringify(String(reference).slice(0, 200))} (expected ${LAYOUT_SCHEME}<dir>[:tag|@digest])`);
  }
  let rest = reference.slice(LAYOUT_SCHEME.length);
  const out: Partial<LayoutReference> = {};
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const digest = rest.slice(at + 1);
    try {
      parseDigest(digest);
    } catch (err) {
      throw new InvalidArgumentError(`invalid OCI layout reference ${JSON.stringify(reference)}: ${(err as Error).message}`);
    }
    out.digest = digest;
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    const tag = rest.slice(colon + 1);
    try {
      out.tag = validateRefName(tag);
    } catch (err) {
      throw new InvalidArgumentError(`invalid OCI layout reference ${JSON.stringify(reference)}: ${(err as Error).message}`);
    }
    rest = rest.slice(0, colon);
  }
  if (rest === '') throw new InvalidArgumentError(`invalid OCI layout reference ${JSON.stringify(reference)}: no directory`);
  return { dir: rest, ...out };
}

export function formatLayoutReference(ref: LayoutReference): string {
  return `${LAYOUT_SCHEME}${ref.dir}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** What `OCILayout.resolve` takes for a parsed reference: the digest if any, else the tag, else "". */
export function layoutResolveKey(ref: LayoutReference): string {
  return ref.digest ?? ref.tag ?? '';
}
