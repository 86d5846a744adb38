/**
 * Where images come from: a registry reference (`registry:5000/app:v1`, `alpine`) goes
 * to the registry resolver; `oci-layout://<dir>[:tag|@digest]` to an OCI image layout
 * directory. Both implement Resolver, so the pull path never knows which one it reads.
 */
import { isNotFound } from '../errors.js';
import { OCILayout } from '../layout/layout.js';
import { layoutResolveKey, parseLayoutReference } from '../layout/reference.js';
import type { RegistryResolver, RegistryResolverOptions } from '../remote/resolver.js';
import type { Resolver } from '../remote/types.js';

export type ImageSourceOptions = Pick<
  RegistryResolverOptions,
  'hostsDir' | 'plainHTTP' | 'credentials' | 'dockerConfig' | 'userAgent' | 'timeouts' | 'retry' | 'uploadChunkSize'
>;

export const LAYOUT_SCHEME = 'oci-layout://';

export class ImageSources {
  private registry: RegistryResolver | undefined;

  constructor(private readonly options: ImageSourceOptions) {}

  /**
   * The resolver for `ref` and the name to resolve with it. Pushing to a layout that
   * does not exist creates it; pulling from one fails.
   */
  async resolverFor(ref: string, purpose: 'pull' | 'push' = 'pull'): Promise<{ resolver: Resolver; name: string }> {
    if (ref.startsWith(LAYOUT_SCHEME)) {
      const parsed = parseLayoutReference(ref);
      const layout = await OCILayout.open(parsed.dir).catch(async (err: unknown) => {
        if (purpose === 'push' && isNotFound(err)) return OCILayout.create(parsed.dir);
        throw err;
      });
      return { resolver: layout, name: layoutResolveKey(parsed) };
    }
    if (this.registry === undefined) {
      // The HTTP stack loads only when a registry is used (not for layouts, not for listings).
      const { RegistryResolver } = await import('../remote/resolver.js');
      this.registry ??= new RegistryResolver(this.options);
    }
    return { resolver: this.registry, name: ref };
  }

  async close(): Promise<void> {
    await this.registry?.close();
  }
}
