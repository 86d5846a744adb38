#!/usr/bin/env node
/**
 * The `layerpool` command. Until the pull path lands (see the open issues) it offers
 * `version` and `demo`; the demo exercises what exists: a root, the metadata database
 * and the content store.
 */
import { packageVersion } from '../package.js';

const USAGE = `usage: layerpool <command>

commands:
  version   print the version
  demo      open a throw-away root, write, resume and verify blobs in its content store
`;

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  switch (command) {
    case 'version':
      process.stdout.write(`layerpool ${packageVersion()} (node ${process.version})\n`);
      return 0;
    case 'demo': {
      const { runDemo } = await import('./demo.js');
      await runDemo({ out: process.stdout });
      return 0;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`layerpool: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const code = (err as { code?: string }).code;
    process.stderr.write(`layerpool: ${(err as Error).message}${code ? ` (${code})` : ''}\n`);
    process.exitCode = 1;
  },
);
