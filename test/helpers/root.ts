import type { TestContext } from 'node:test';
import { Root } from '../../src/root.js';
import { tempDir } from './tmp.js';

/** A Root in a fresh temp dir with namespaces `default` and `other`, closed after the test. */
export async function openTestRoot(t: TestContext, path = tempDir(t, 'layerpool-root-')): Promise<Root> {
  const root = await Root.open({ path, namespaces: ['default', 'other'] });
  t.after(() => root.close());
  return root;
}
