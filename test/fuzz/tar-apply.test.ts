/**
 * Property tests of layer apply on random entry sequences drawn from a grammar of hostile
 * names (`..`, `.`, empty components, absolute prefixes, names aimed at a directory
 * outside the root), symlinks and hardlinks to anywhere, whiteouts and opaque markers,
 * duplicates and overlay xattrs.
 *
 * - Confinement, for every sequence: nothing outside the target root is created,
 *   changed or removed (a sentinel directory next to it, the temp dir's and `/`'s
 *   listings); the apply fails only with a typed error; on success every file holds the
 *   content of one of the entries and every symlink the text of one.
 * - Consistency, for sequences without symlinks: the apply gives exactly the tree a
 *   small model of the layer semantics predicts (last entry wins, directories merge,
 *   implied parents, whiteouts that only hide what the layer did not write, hardlink
 *   groups), or fails where the model says the layer is malformed.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { ErrorCode, LayerpoolError } from '../../src/errors.js';
import type { WhiteoutMode } from '../../src/diff/types.js';
import { applyBuffer, describeTree, escapeFixture, tarLayer, type EntrySpec, type EscapeFixture } from '../helpers/layers.js';
import { fuzzBudget } from './budget.js';

/** Replaced by the absolute path of the directory outside the root. */
const OUT = '@OUT';
const COMPONENTS = ['a', 'b', 'c', '.', '..', '', '.wh.a', '.wh.b', '.wh..wh..opq', '.wh..wh.plnk', '.wh...', '.wh..', '.wh.'] as const;
const CONTENTS = ['one', 'two', 'three'] as const;

const path = (components: readonly string[]) =>
  fc.tuple(fc.constantFrom('', '/', './'), fc.array(fc.constantFrom(...components), { minLength: 1, maxLength: 4 })).map(([prefix, parts]) => prefix + parts.join('/'));
const hostileName = fc.oneof({ weight: 4, arbitrary: path(COMPONENTS) }, { weight: 1, arbitrary: path(['a', 'b', 'sentinel']).map((p) => `${OUT}/${p}`) });
const linkTarget = fc.oneof(hostileName, fc.constantFrom('/', OUT, `${OUT}/sentinel`, `../../../../../../..${OUT}`, '..', '../..', 'a/../../..'));

interface FuzzEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo';
  linkname: string;
  content: string;
  xattrs?: Record<string, string>;
}

const entryArb = (types: readonly FuzzEntry['type'][], names: fc.Arbitrary<string>, links: fc.Arbitrary<string>): fc.Arbitrary<FuzzEntry> =>
  fc.record(
    {
      name: names,
      type: fc.constantFrom(...types),
      linkname: links,
      content: fc.constantFrom(...CONTENTS),
      xattrs: fc.constantFrom<Record<string, string>>({ 'trusted.overlay.opaque': 'y' }, { 'user.overlay.whiteout': 'y' }, { 'user.fuzz': 'v' }),
    },
    { requiredKeys: ['name', 'type', 'linkname', 'content'] },
  );

function toSpecs(entries: readonly FuzzEntry[], outside: string): EntrySpec[] {
  const expand = (s: string) => s.replaceAll(OUT, outside);
  return entries.map((e) => ({
    name: expand(e.name) + (e.type === 'dir' ? '/' : ''),
    type: e.type,
    ...(e.type === 'symlink' || e.type === 'hardlink' ? { linkname: expand(e.linkname) } : {}),
    ...(e.type === 'file' ? { content: e.content } : {}),
    ...(e.xattrs ? { xattrs: e.xattrs } : {}),
  }));
}

/**
 * Apply `entries` next to a watched sentinel; returns the tree, or the typed error. The
 * fixture's folders go when the run ends (a long fuzz run makes hundreds of thousands).
 */
async function applyConfined(entries: readonly FuzzEntry[], mode: WhiteoutMode): Promise<{ tree?: ReturnType<typeof describeTree>; error?: LayerpoolError; outside: string }> {
  const cleanups: (() => void)[] = [];
  try {
    return await applyInFixture(escapeFixture({ after: (fn: () => void) => cleanups.push(fn) } as unknown as TestContext), entries, mode);
  } finally {
    for (const cleanup of cleanups) cleanup();
  }
}

async function applyInFixture(fx: EscapeFixture, entries: readonly FuzzEntry[], mode: WhiteoutMode): Promise<{ tree?: ReturnType<typeof describeTree>; error?: LayerpoolError; outside: string }> {
  const slash = readdirSync('/').sort().join('\n');
  let result: { tree?: ReturnType<typeof describeTree>; error?: LayerpoolError };
  try {
    await applyBuffer(tarLayer(toSpecs(entries, fx.outside)), fx.mounts, { whiteoutMode: mode });
    result = { tree: describeTree(fx.root) };
  } catch (err) {
    if (!(err instanceof LayerpoolError)) throw new Error(`untyped ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
    assert.notEqual(err.code, ErrorCode.Internal, `not an internal error: ${err.message}`);
    result = { error: err };
  }
  fx.assertOutsideUntouched();
  assert.equal(readdirSync('/').sort().join('\n'), slash, 'nothing appeared in /');
  return { ...result, outside: fx.outside };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The layer semantics for an empty target, without symlinks: see the module comment. */
class LayerModel {
  private readonly nodes = new Map<string, { type: 'file' | 'dir' | 'fifo' | 'char'; content?: string; inode: number }>();
  private inodes = 0;

  constructor(private readonly mode: WhiteoutMode) {}

  /** Apply every entry; false when the layer is malformed (the apply must fail). */
  applyAll(entries: readonly FuzzEntry[]): boolean {
    try {
      for (const entry of entries) this.apply(entry);
      return true;
    } catch (err) {
      if (err instanceof Malformed) return false;
      throw err;
    }
  }

  /** What describeTree shows, reduced to what the model knows. */
  tree(): Record<string, { type: string; content?: string; inode: string }> {
    const paths = [...this.nodes.keys()].sort();
    const firstOf = new Map<number, string>();
    for (const p of paths) if (!firstOf.has(this.nodes.get(p)!.inode)) firstOf.set(this.nodes.get(p)!.inode, p);
    return Object.fromEntries(paths.map((p) => {
      const node = this.nodes.get(p)!;
      return [p, { type: node.type, ...(node.content === undefined ? {} : { content: sha256(node.content) }), inode: firstOf.get(node.inode)! }];
    }));
  }

  private apply(entry: FuzzEntry): void {
    const name = clean(entry.name);
    if (name === '') return;
    const { parent, base } = split(name);
    if (base.startsWith('.wh.')) return this.whiteout(parent, base);
    this.ensureDir(parent);
    const existing = this.nodes.get(name);
    switch (entry.type) {
      case 'file':
      case 'fifo':
        this.remove(name);
        this.nodes.set(name, { type: entry.type, ...(entry.type === 'file' ? { content: entry.content } : {}), inode: ++this.inodes });
        return;
      case 'dir':
        if (existing?.type !== 'dir') {
          this.remove(name);
          this.nodes.set(name, { type: 'dir', inode: ++this.inodes });
        }
        return;
      case 'hardlink': {
        const target = this.hardlinkTarget(clean(entry.linkname));
        if (existing?.inode === target.node.inode) return;
        this.remove(name);
        // Removing the name may have removed the target with it (the name was its parent).
        if (!this.nodes.has(target.path)) throw new Malformed();
        this.nodes.set(name, target.node);
        return;
      }
      case 'symlink':
        throw new Error('the model has no symlinks');
    }
  }

  private whiteout(parent: string, base: string): void {
    if (base === '.wh..wh..opq') {
      if (this.mode !== 'delete') this.ensureDir(parent);
      return;
    }
    if (base.startsWith('.wh..wh.')) return;
    const hidden = base.slice(4);
    if (hidden === '' || hidden === '.' || hidden === '..') throw new Malformed();
    // Delete mode on an empty target has nothing to delete.
    if (this.mode === 'delete') return;
    this.ensureDir(parent);
    const path = join(parent, hidden);
    if (!this.nodes.has(path)) this.nodes.set(path, { type: 'char', inode: ++this.inodes });
  }

  private hardlinkTarget(path: string): { path: string; node: { type: 'file' | 'dir' | 'fifo' | 'char'; content?: string; inode: number } } {
    if (path === '') throw new Malformed();
    const { parent } = split(path);
    const parts = parent === '' ? [] : parent.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const node = this.nodes.get(parts.slice(0, i).join('/'));
      if (node === undefined) throw new Malformed();
      if (node.type !== 'dir') throw new Malformed();
    }
    const node = this.nodes.get(path);
    if (node === undefined || node.type === 'dir' || node.type === 'char') throw new Malformed();
    return { path, node };
  }

  /** mkdir -p, refusing a non-directory on the way. */
  private ensureDir(path: string): void {
    if (path === '') return;
    const parts = path.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      const node = this.nodes.get(prefix);
      if (node === undefined) this.nodes.set(prefix, { type: 'dir', inode: ++this.inodes });
      else if (node.type !== 'dir') throw new Malformed();
    }
  }

  private remove(path: string): void {
    for (const key of [...this.nodes.keys()]) if (key === path || key.startsWith(`${path}/`)) this.nodes.delete(key);
  }
}

class Malformed extends Error {}

function clean(name: string): string {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw new Malformed();
      parts.pop();
    } else parts.push(part);
  }
  return parts.join('/');
}

function split(path: string): { parent: string; base: string } {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? { parent: '', base: path } : { parent: path.slice(0, slash), base: path.slice(slash + 1) };
}

const join = (dir: string, name: string) => (dir === '' ? name : `${dir}/${name}`);

describe('layer apply on random hostile entry sequences', () => {
  test('nothing outside the root is ever touched; failures are typed; files and links hold what the entries gave', async () => {
    const entries = fc.array(entryArb(['file', 'dir', 'symlink', 'hardlink', 'fifo'], hostileName, linkTarget), { minLength: 1, maxLength: 10 });
    await fc.assert(
      fc.asyncProperty(entries, fc.constantFrom<WhiteoutMode>('overlay', 'delete'), async (sequence, mode) => {
        const result = await applyConfined(sequence, mode);
        if (result.tree === undefined) return;
        const contents = new Set(CONTENTS.map(sha256));
        const links = new Set(sequence.filter((e) => e.type === 'symlink').map((e) => e.linkname.replaceAll(OUT, result.outside)));
        for (const [path, node] of Object.entries(result.tree)) {
          if (node.type === 'file') assert.ok(contents.has(node.content!), `${path} holds the content of an entry`);
          if (node.type === 'symlink') assert.ok(links.has(node.link!), `${path} -> ${node.link} is the text of a symlink entry`);
          if (node.type === 'dir') assert.equal(node.xattrs['user.overlay.whiteout'], undefined, `${path} carries no forged overlay marker`);
        }
      }),
      fuzzBudget(0.25),
    );
  });

  test('without symlinks the tree is exactly what the layer semantics predict, or the layer is rejected where it is malformed', async () => {
    const names = path(COMPONENTS);
    const entries = fc.array(entryArb(['file', 'dir', 'hardlink', 'fifo'], names, names), { minLength: 1, maxLength: 12 });
    await fc.assert(
      fc.asyncProperty(entries, fc.constantFrom<WhiteoutMode>('overlay', 'delete'), async (sequence, mode) => {
        const model = new LayerModel(mode);
        const valid = model.applyAll(sequence);
        const result = await applyConfined(sequence, mode);
        if (!valid) {
          assert.equal(result.error?.code, ErrorCode.InvalidArgument, 'the model calls the layer malformed');
          return;
        }
        assert.equal(result.error, undefined, `the model accepts the layer: ${result.error?.message}`);
        const actual = Object.fromEntries(Object.entries(result.tree!).map(([p, n]) => [p, { type: n.type, ...(n.content === undefined ? {} : { content: n.content }), inode: n.inode }]));
        assert.deepEqual(actual, model.tree());
      }),
      fuzzBudget(0.25),
    );
  });
});
