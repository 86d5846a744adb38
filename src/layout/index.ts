/**
 * OCI image layout directories as an image source and sink (see layout.ts), and the
 * `oci-layout://<dir>[:tag|@digest]` reference syntax.
 */
export { OCILayout, LAYOUT_DEFAULTS, type LayoutImage, type ReadBlobOptions, type WriteBlobOptions } from './layout.js';
export {
  CONTAINERD_IMAGE_NAME_ANNOTATION,
  formatLayoutReference,
  LAYOUT_SCHEME,
  layoutResolveKey,
  parseLayoutReference,
  REF_NAME_ANNOTATION,
  validateRefName,
  type LayoutReference,
} from './reference.js';
