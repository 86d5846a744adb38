import { before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { buildCli, CLI, cliEnv, publishFixture, runOk } from './helpers.js';

before(() => buildCli());

const ESC = '\x1b';
const LAYER_PHASES = ['Waiting', 'Downloading', 'Extracting', 'Verifying', 'Committed', 'Pull complete'];
const SUMMARY = /^Pulled (\S+) \((sha256:[0-9a-f]{64})\): (\d+)\/(\d+) layers applied, \S+ fetched, \S+ written in \S+ \(\d+\.\d\d MB\/s\)$/;

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

describe('layerpool pull output', () => {
  test('without a terminal: one plain line per layer state change, in order, then the summary', async (t) => {
    const [published] = await publishFixture(t);
    const root = tempDir(t);
    const { stdout } = await runOk(t, ['--root', root, 'pull', published!.ref]);
    assert.ok(!stdout.includes(ESC), 'no escape sequences when stdout is not a terminal');
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines[0], `Resolving ${published!.ref}`);
    assert.match(lines[1]!, new RegExp(`^Resolved ${published!.ref}: sha256:[0-9a-f]{64}$`));
    assert.match(lines[2]!, /^Manifest sha256:[0-9a-f]{64} \(linux\/amd64\): 2 layers$/);
    for (const layer of published!.image.manifests[0]!.layers) {
      const id = layer.descriptor.digest.slice('sha256:'.length, 'sha256:'.length + 12);
      const phases = lines
        .filter((l) => l.startsWith(`${id}: `))
        .map((l) => l.slice(id.length + 2))
        .map((text) => (text === 'Pull complete' ? text : text.split(' ')[0]));
      assert.deepEqual(phases, LAYER_PHASES, `the states of layer ${id}`);
    }
    const summary = SUMMARY.exec(lines.at(-1)!);
    assert.ok(summary, `summary line: ${lines.at(-1)}`);
    assert.deepEqual(summary.slice(1, 2).concat(summary.slice(3)), [published!.ref, '2', '2']);
  });

  test('a second pull shows every layer as Already exists and applies nothing', async (t) => {
    const [published] = await publishFixture(t);
    const root = tempDir(t);
    await runOk(t, ['--root', root, 'pull', published!.ref]);
    const { stdout } = await runOk(t, ['--root', root, 'pull', published!.ref]);
    const layerLines = stdout.split('\n').filter((l) => /^[0-9a-f]{12}: /.test(l));
    assert.deepEqual(layerLines.map((l) => l.slice(14)).sort(), ['Already exists', 'Already exists', 'Waiting', 'Waiting']);
    assert.match(stdout, / 0\/2 layers applied, 0B fetched, 0B written /);
  });

  test('in a terminal: redrawn in place with cursor-up and clear-line sequences, then the summary', async (t) => {
    const [published] = await publishFixture(t);
    const root = tempDir(t);
    const command = [process.execPath, CLI, '--root', root, 'pull', published!.ref].map(shellQuote).join(' ');
    // script(1) runs the command on a pseudo-terminal, so stdout.isTTY is true.
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...cliEnv(), COLUMNS: '120' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0, out);
    assert.ok(out.includes(`${ESC}[2K`), 'lines are cleared before they are rewritten');
    assert.match(out, new RegExp(`${ESC}\\[\\d+A`), 'the cursor moves up to redraw');
    assert.match(out, /Total: \S+\/\S+ fetched, \S+ written, \S+\/s/, 'an overall line with bytes and rate');
    assert.match(out, /[0-9a-f]{12}: Pull complete/);
    const last = out.trimEnd().split(/\r?\n/).at(-1)!.replace(/\r/g, '');
    assert.match(last, SUMMARY);
  });

  test('--json prints every event as one JSON line and the summary last', async (t) => {
    const [published] = await publishFixture(t);
    const root = tempDir(t);
    const { stdout } = await runOk(t, ['--root', root, '--json', 'pull', published!.ref]);
    const events = stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as { type: string; [k: string]: unknown });
    const types = new Set(events.map((e) => e.type));
    for (const type of ['resolved', 'manifest', 'layer', 'committed', 'done', 'summary']) assert.ok(types.has(type), `an event of type ${type}`);
    const summary = events.at(-1)!;
    assert.equal(summary.type, 'summary');
    assert.equal(summary['name'], published!.ref);
    assert.equal(summary['digest'], published!.image.descriptor.digest);
    assert.equal(summary['layers'], 2);
    assert.equal(summary['layersApplied'], 2);
    assert.equal(summary['snapshotter'], 'overlay');
    assert.equal((summary['chainIDs'] as string[]).length, 1);
    assert.ok((summary['bytesFetched'] as number) > 0 && (summary['bytesApplied'] as number) > 0);
  });

  test('--quiet prints only the image name; --json --quiet only the summary', async (t) => {
    const [published] = await publishFixture(t);
    const root = tempDir(t);
    assert.equal((await runOk(t, ['--root', root, '--quiet', 'pull', published!.ref])).stdout, `${published!.ref}\n`);
    const { stdout } = await runOk(t, ['--root', join(root, 'second'), '--json', '--quiet', 'pull', published!.ref]);
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines.length, 1);
    assert.equal((JSON.parse(lines[0]!) as { type: string }).type, 'summary');
  });
});
