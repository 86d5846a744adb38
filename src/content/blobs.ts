/**
 * The content store's files: immutable blobs at `content/blobs/<algo>/<hex>` and
 * in-progress ingests at `content/ingest/<dir>/data`. Blobs are shared by namespaces;
 * which namespace has what is the metadata database's business.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest } from '../digest.js';

export class BlobFiles {
  readonly blobsDir: string;
  readonly ingestDir: string;

  constructor(readonly contentDir: string) {
    this.blobsDir = join(contentDir, 'blobs');
    this.ingestDir = join(contentDir, 'ingest');
  }

  async init(): Promise<void> {
    await mkdir(join(this.blobsDir, 'sha256'), { recursive: true });
    await mkdir(join(this.blobsDir, 'sha512'), { recursive: true });
    await mkdir(this.ingestDir, { recursive: true });
  }

  /** Where a blob lives; the digest is validated, so it can never name a path outside. */
  blobPath(digest: string): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.blobsDir, algorithm, encoded);
  }

  /**
   * Ingest folder name for a ref: a hash, so any ref string (they contain `/` and `:`)
   * maps to one safe name, and two namespaces' same ref do not collide.
   */
  static ingestDirName(namespace: string, ref: string): string {
    return createHash('sha256').update(`${namespace}\n${ref}`).digest('hex');
  }

  ingestPath(dir: string): string {
    return join(this.ingestDir, dir);
  }

  ingestDataPath(dir: string): string {
    return join(this.ingestDir, dir, 'data');
  }

  /** Size of a committed blob, or undefined when there is no file. */
  async blobSize(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Move a verified ingest file into place. rename(2) is atomic: readers see no blob or
   * the whole blob. The folder is fsynced so the new name survives a power cut.
   */
  async publish(dataPath: string, digest: string): Promise<void> {
    const target = this.blobPath(digest);
    await rename(dataPath, target);
    await fsyncDir(join(target, '..'));
  }

  async removeBlob(digest: string): Promise<void> {
    await unlink(this.blobPath(digest)).catch(ignoreENOENT);
  }

  async removeIngest(dir: string): Promise<void> {
    await rm(this.ingestPath(dir), { recursive: true, force: true });
  }

  /** Digests of every blob file on disk. */
  async listBlobs(): Promise<string[]> {
    const out: string[] = [];
    for (const algorithm of ['sha256', 'sha512']) {
      const names = await readdir(join(this.blobsDir, algorithm)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [] as string[];
        throw err;
      });
      for (const name of names) out.push(`${algorithm}:${name}`);
    }
    return out;
  }

  async ingestHasData(dir: string): Promise<boolean> {
    try {
      return (await stat(this.ingestDataPath(dir))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async listIngestDirs(): Promise<string[]> {
    return readdir(this.ingestDir);
  }
}

/** fsync a directory so that renames and creations in it are durable. */
export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function ignoreENOENT(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}
