import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { freePort } from '../../bench/lib/registry.js';
import { startRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';
import { buildCli, publishFixture, recordedModules, recordModulesArgs, runCli, runJSON, startStalledPull } from './helpers.js';

before(() => buildCli());

/** The stderr of a failed command is exactly one `layerpool: <message> (<code>)` line. */
function assertOneErrorLine(stderr: string, code: string): void {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${stderr}`);
  assert.match(lines[0]!, new RegExp(`^layerpool: .+ \\(${code}\\)$`));
}

describe('layerpool usage errors', () => {
  test('an unknown command exits 2 with commander\'s suggestion and the usage', async (t) => {
    const result = await runCli(t, ['pul', 'alpine']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^layerpool: unknown command 'pul'/);
    assert.match(result.stderr, /\(Did you mean pull\?\)/);
    assert.match(result.stderr, /Usage: layerpool \[options\] \[command\]/);
  });

  test('an unknown option of a subcommand exits 2 and shows that command\'s usage', async (t) => {
    const result = await runCli(t, ['images', 'ls', '--colour']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown option '--colour'/);
    assert.match(result.stderr, /Usage: layerpool images ls\|list \[options\]/);
  });

  test('an option value out of range is a usage error (exit 2)', async (t) => {
    const result = await runCli(t, ['pull', 'alpine', '--max-concurrent-downloads', '0']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--max-concurrent-downloads <n>' argument '0' is invalid/);
  });
});

describe('layerpool failures: one line, stable exit codes', () => {
  test('a bad reference prints one line and exits 6', async (t) => {
    const result = await runCli(t, ['--root', tempDir(t), 'pull', 'Not/A Reference!']);
    assert.equal(result.code, 6);
    assertOneErrorLine(result.stderr, 'LP_ERR_INVALID_ARGUMENT');
    assert.match(result.stderr, /invalid reference/);
  });

  test('an unreachable registry exits 5 after the retries given with --retries', async (t) => {
    const port = await freePort(); // bound, released: nothing listens there
    const result = await runCli(t, ['--root', tempDir(t), 'pull', '--retries', '1', `127.0.0.1:${port}/app/web:v1`]);
    assert.equal(result.code, 5);
    assertOneErrorLine(result.stderr, 'LP_ERR_UNAVAILABLE');
    assert.match(result.stderr, /ECONNREFUSED/);
  });

  test('an image the registry does not have exits 3; so does inspecting an unknown image', async (t) => {
    const [published] = await publishFixture(t);
    const root = tempDir(t);
    const missing = await runCli(t, ['--root', root, 'pull', `${published!.registry.host}/cli/absent:v1`]);
    assert.equal(missing.code, 3);
    assertOneErrorLine(missing.stderr, 'LP_ERR_NOT_FOUND');
    const inspect = await runCli(t, ['--root', root, 'images', 'inspect', 'absent']);
    assert.equal(inspect.code, 3);
    assertOneErrorLine(inspect.stderr, 'LP_ERR_NOT_FOUND');
  });

  test('a registry that refuses the credentials exits 4; --user with the right ones pulls', async (t) => {
    const registry = await startRegistry(t, { auth: 'htpasswd', users: { puller: 'right-pw' } });
    const [published] = await publishFixture(t, 'tiny', { registry });
    const anonymous = await runCli(t, ['--root', tempDir(t), 'pull', published!.ref]);
    assert.equal(anonymous.code, 4);
    assertOneErrorLine(anonymous.stderr, 'LP_ERR_UNAUTHORIZED');
    const wrong = await runCli(t, ['--root', tempDir(t), 'pull', '--user', 'puller:wrong-pw', published!.ref]);
    assert.equal(wrong.code, 4);
    assertOneErrorLine(wrong.stderr, 'LP_ERR_UNAUTHORIZED');
    assert.ok(!wrong.stderr.includes('wrong-pw'), 'the password is not echoed');
    const right = await runCli(t, ['--root', tempDir(t), '--quiet', 'pull', '--user', 'puller:right-pw', published!.ref]);
    assert.equal(right.code, 0, right.stderr);
    assert.equal(right.stdout, `${published!.ref}\n`);
  });

  test('the stack trace is printed only with --log-level debug', async (t) => {
    const root = tempDir(t);
    const quiet = await runCli(t, ['--root', root, 'images', 'inspect', 'absent']);
    assert.ok(!quiet.stderr.includes('    at '), quiet.stderr);
    const debug = await runCli(t, ['--root', root, '--log-level', 'debug', 'images', 'inspect', 'absent']);
    assert.equal(debug.code, 3);
    assert.match(debug.stderr, /NotFoundError: .*\n\s+at /);
  });

  test('Ctrl-C during a pull exits 130 and leaves no prepared snapshot and no image record', async (t) => {
    const root = tempDir(t);
    const pull = await startStalledPull(t, ['--root', root]);
    pull.kill('SIGINT');
    const result = await pull.result;
    assert.equal(result.code, 130, result.stderr);
    assertOneErrorLine(result.stderr, 'LP_ERR_CANCELED');
    const snapshots = await runJSON<{ key: string }[]>(t, ['--root', root, 'snapshots', 'ls']);
    assert.deepEqual(snapshots.filter((s) => s.key.startsWith('extract-')), []);
    assert.deepEqual(await runJSON(t, ['--root', root, 'images', 'ls']), []);
    assert.deepEqual(await runJSON(t, ['--root', root, 'leases', 'ls']), [], 'the pull released its lease');
  });
});

describe('layerpool start-up cost', () => {
  test('`--json version` loads commander and the CLI\'s small modules, nothing of the pull path', async (t) => {
    const file = join(tempDir(t), 'modules.txt');
    const result = await runCli(t, ['--json', 'version'], { nodeArgs: recordModulesArgs(file) });
    assert.equal(result.code, 0, result.stderr);
    assert.equal((JSON.parse(result.stdout) as { version: string }).version, '0.1.0');
    const loaded = recordedModules(file);
    assert.ok(loaded.some((url) => url.includes('/node_modules/commander/')), 'the recording works: commander was loaded');
    for (const heavy of ['better-sqlite3', 'piscina', 'tar-stream', 'pino', '/src/client.js', '/src/root.js', '/src/server/local.js', '/src/diff/']) {
      assert.deepEqual(loaded.filter((url) => url.includes(heavy)), [], `${heavy} is not loaded`);
    }
  });
});
