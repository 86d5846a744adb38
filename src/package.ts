/**
 * Where layerpool itself is installed: src/ under tsx, dist/src/ after tsc, or
 * node_modules/layerpool/dist/src/ as a dependency. Used to find the native addon and
 * the version.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnavailableError } from './errors.js';

let cached: { root: string; version: string } | undefined;

function find(): { root: string; version: string } {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; ) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === 'layerpool') return { root: dir, version: String(pkg.version) };
      } catch {
        // an unreadable or foreign package.json: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new UnavailableError(`cannot find layerpool's package.json above ${start}`);
    dir = parent;
  }
}

/** The directory holding layerpool's package.json. */
export function packageRoot(): string {
  cached ??= find();
  return cached.root;
}

export function packageVersion(): string {
  cached ??= find();
  return cached.version;
}
