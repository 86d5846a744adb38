/**
 * Disk usage of a snapshot's tree, as containerd's fs.DiskUsage counts it: every inode
 * once (two hard links are one file), the tree's own root included.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Usage } from './snapshotter.js';

/** `size`: bytes of regular files, each inode once; `inodes`: distinct inodes under `dir`, `dir` included. */
export async function diskUsage(dir: string): Promise<Usage> {
  const seen = new Set<bigint>();
  let size = 0;
  const pending = [dir];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    const st = await lstat(path, { bigint: true });
    // One filesystem per tree (a snapshot folder), so the inode number alone is unique.
    if (seen.has(st.ino)) continue;
    seen.add(st.ino);
    if (st.isFile()) size += Number(st.size);
    else if (st.isDirectory()) for (const name of await readdir(path)) pending.push(join(path, name));
  }
  return { size, inodes: seen.size };
}
