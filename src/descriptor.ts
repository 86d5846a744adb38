/**
 * The OCI content descriptor: what every reference to a blob carries (media type,
 * digest, size). Shared by the registry client, the content store and image records.
 */
import { validateDigest } from './digest.js';
import { InvalidArgumentError } from './errors.js';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  urls?: string[];
  platform?: Platform;
  artifactType?: string;
}

/** Check the parts every use relies on; a descriptor from a registry is untrusted input. */
export function validateDescriptor(desc: Descriptor, what = 'descriptor'): Descriptor {
  if (typeof desc !== 'object' || desc === null) throw new InvalidArgumentError(`${what}: not an object`);
  if (typeof desc.mediaType !== 'string' || desc.mediaType.length === 0 || desc.mediaType.length > 255) {
    throw new InvalidArgumentError(`${what}: missing or invalid mediaType`);
  }
  try {
    validateDigest(desc.digest);
  } catch (err) {
    throw new InvalidArgumentError(`${what}: ${(err as Error).message}`);
  }
  if (!Number.isSafeInteger(desc.size) || desc.size < 0) {
    throw new InvalidArgumentError(`${what}: size must be a non-negative integer, got ${String(desc.size)}`);
  }
  return desc;
}
