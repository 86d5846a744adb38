import { readdirSync, readlinkSync } from 'node:fs';

/**
 * Files under `dir` this process (any of its threads) holds open, except those whose
 * path matches `except` (a root's database and lock, which stay open on purpose).
 */
export function openFilesUnder(dir: string, except?: RegExp): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed since the listing (the readdir's own descriptor)
    }
    if (target.startsWith(`${dir}/`) && !except?.test(target)) open.push(target);
  }
  return open;
}
