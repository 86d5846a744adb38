#!/usr/bin/env node
/**
 * The `layerpool` command line. Start-up cost matters (DESIGN.md): this file loads only
 * commander and small modules; each command imports what it needs when it runs, and a
 * command answered by the running service never loads SQLite, the worker pool or tar code.
 */
import { Command, CommanderError, InvalidArgumentError as UsageError, Option } from 'commander';
import type { GlobalOptions } from './context.js';
import { ExitCode, reportError } from './exit.js';

const DEFAULT_SOCKET = '/run/layerpool/layerpool.sock';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
// src/snapshots' SNAPSHOTTER_NAMES; importing them here would load the snapshotters at start-up.
const SNAPSHOTTERS = ['overlay', 'native'];

function globalsOf(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals<Record<string, unknown>>();
  const noServiceEnv = process.env['LAYERPOOL_NO_SERVICE'];
  return {
    ...(typeof o['root'] === 'string' ? { root: o['root'] } : {}),
    namespace: o['namespace'] as string,
    socket: o['socket'] as string,
    service: o['service'] !== false && (noServiceEnv === undefined || noServiceEnv === '' || noServiceEnv === '0'),
    json: o['json'] === true,
    quiet: o['quiet'] === true,
    debug: o['logLevel'] === 'debug' || o['logLevel'] === 'trace',
    stdout: process.stdout,
    stderr: process.stderr,
  };
}

/**
 * An action that loads its command module only when it runs. Commander calls actions
 * with the positional arguments, the options, then the command.
 */
function lazy<A extends unknown[]>(load: () => Promise<(globals: GlobalOptions, ...args: A) => Promise<void>>) {
  return async (...args: unknown[]): Promise<void> => {
    const cmd = args.at(-1) as Command;
    const run = await load();
    await run(globalsOf(cmd), ...(args.slice(0, -1) as A));
  };
}

function integer(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || value.trim() === '') throw new UsageError(`must be an integer >= ${min}`);
    return n;
  };
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
const collectIds = (value: string, previous: number[] = []): number[] => [...previous, integer(0)(value)];

function snapshotterOption(description = 'snapshotter (default: overlay as root, else native)'): Option {
  return new Option('--snapshotter <name>', description).choices(SNAPSHOTTERS);
}

/** Registry settings an embedded client takes (a service takes them at `layerpool serve`). */
function registryOptions(cmd: Command): Command {
  return cmd
    .option('--plain-http <host>', 'reach this registry over plain HTTP (repeatable; loopback hosts always are)', collect)
    .option('--hosts-dir <dir>', 'containerd-style hosts directory (mirrors and TLS settings per registry)')
    .option('--retries <n>', 'tries per registry request, the first included', integer(1));
}

function buildProgram(): Command {
  const program = new Command('layerpool')
    .description('pull OCI and Docker images and unpack their layers into snapshots')
    .addOption(new Option('--root <dir>', 'root directory (default /var/lib/layerpool)').env('LAYERPOOL_ROOT'))
    .addOption(new Option('-n, --namespace <name>', 'namespace').env('LAYERPOOL_NAMESPACE').default('default'))
    .addOption(new Option('--socket <path>', 'socket of the layerpool service').env('LAYERPOOL_SOCKET').default(DEFAULT_SOCKET))
    .option('--no-service', 'open the root in this process even if a service runs (also LAYERPOOL_NO_SERVICE=1)')
    .addOption(new Option('--log-level <level>', 'log level (stderr)').choices(LOG_LEVELS))
    .option('--json', 'machine-readable output (JSON; NDJSON progress for pull)')
    .option('-q, --quiet', 'print only the essentials (pull: the image name)')
    .exitOverride()
    .showHelpAfterError(true)
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'layerpool: ')) });

  program.hook('preAction', (_, action) => {
    const level = action.optsWithGlobals<{ logLevel?: string }>().logLevel;
    // src/log.ts reads it when first loaded, which is after this.
    if (level !== undefined) process.env['LAYERPOOL_LOG'] = level;
  });

  registryOptions(
    program
      .command('pull <ref>')
      .description('pull an image (registry reference or oci-layout://DIR:TAG) and unpack it')
      .option('--platform <os/arch[/variant]>', 'platform to unpack (default: this host)')
      .option('--all-platforms', 'fetch every platform of an index (unpack only --platform)')
      .addOption(snapshotterOption())
      .option('--max-concurrent-downloads <n>', 'layers downloading at once (default 3)', integer(1))
      .option('--discard-content', 'after unpacking, let GC free the layer blobs (snapshots stay)')
      .option('--sync-fs', 'syncfs before each commit, so snapshots survive a power cut')
      .option('--no-unpack', 'fetch the content only')
      .option('--user <user:password>', "credentials for the reference's registry"),
  ).action(lazy(async () => (await import('./commands/pull.js')).pullCommand));

  registryOptions(
    program
      .command('push <ref>')
      .description('push a local image to a registry or an OCI layout')
      .option('--source <name>', 'local image to push (default: <ref>)')
      .option('--user <user:password>', "credentials for the reference's registry"),
  ).action(lazy(async () => (await import('./commands/push.js')).pushCommand));

  const images = program.command('images').alias('image').description('image records');
  images
    .command('ls')
    .alias('list')
    .description('list images')
    .option('--filter <filter>', 'containerd filter, e.g. name~=^docker.io (repeatable, ORed)', collect)
    .action(lazy(async () => (await import('./commands/images.js')).listImages));
  images
    .command('rm <names...>')
    .alias('remove')
    .description('remove image records (GC frees what nothing else uses)')
    .option('--sync', 'collect garbage before returning')
    .action(lazy(async () => (await import('./commands/images.js')).removeImages));
  images
    .command('inspect <name>')
    .description('manifest, config, layers and chain IDs of an image')
    .option('--platform <os/arch[/variant]>', 'platform (default: this host)')
    .addOption(snapshotterOption())
    .action(lazy(async () => (await import('./commands/images.js')).inspectImage));
  images
    .command('usage [names...]')
    .description('bytes each image uses: content and unpacked snapshots')
    .action(lazy(async () => (await import('./commands/images.js')).imageUsage));

  const content = program.command('content').description('blobs in the content store');
  content
    .command('ls')
    .alias('list')
    .description('list blobs')
    .option('--filter <filter>', 'containerd filter, e.g. labels."containerd.io/uncompressed" (repeatable)', collect)
    .action(lazy(async () => (await import('./commands/content.js')).listContent));
  content
    .command('get <digest>')
    .description("write a blob's bytes to stdout")
    .action(lazy(async () => (await import('./commands/content.js')).getContent));
  content
    .command('rm <digests...>')
    .alias('remove')
    .description('remove blobs')
    .action(lazy(async () => (await import('./commands/content.js')).removeContent));
  content
    .command('prune')
    .description('free the layer blobs of unpacked images (their snapshots stay), then collect garbage')
    .action(lazy(async () => (await import('./commands/content.js')).pruneContent));

  const snapshots = program.command('snapshots').alias('snapshot').description('snapshots (unpacked layers, views)');
  snapshots
    .command('ls')
    .alias('list')
    .description('list snapshots')
    .addOption(snapshotterOption())
    .option('--filter <filter>', 'containerd filter, e.g. kind==committed (repeatable)', collect)
    .action(lazy(async () => (await import('./commands/snapshots.js')).listSnapshots));
  snapshots
    .command('tree')
    .description('snapshots as a tree of parents and children')
    .addOption(snapshotterOption())
    .action(lazy(async () => (await import('./commands/snapshots.js')).snapshotTree));
  snapshots
    .command('mounts <key> [target]')
    .description('the mount command for an active snapshot or a view (target default /mnt)')
    .addOption(snapshotterOption())
    .action(lazy(async () => (await import('./commands/snapshots.js')).snapshotMounts));
  snapshots
    .command('rm <keys...>')
    .alias('remove')
    .description('remove snapshots (without children)')
    .addOption(snapshotterOption())
    .action(lazy(async () => (await import('./commands/snapshots.js')).removeSnapshots));
  snapshots
    .command('usage [key]')
    .description('disk use of one snapshot or all')
    .addOption(snapshotterOption())
    .action(lazy(async () => (await import('./commands/snapshots.js')).snapshotUsage));

  const leases = program.command('leases').alias('lease').description('leases (what protects objects from GC)');
  leases
    .command('ls')
    .alias('list')
    .description('list leases')
    .option('--filter <filter>', 'containerd filter, e.g. id~=^pull (repeatable)', collect)
    .action(lazy(async () => (await import('./commands/leases.js')).listLeases));
  leases
    .command('create')
    .description('create a lease and print its id')
    .option('--id <id>', 'lease id (default: generated)')
    .option('--expire <duration>', 'expire after this long (Go syntax: 24h, 1h30m; 0 = never)', '24h')
    .option('--flat', 'keep only the resources, not what they reference')
    .option('--label <key=value>', 'label (repeatable)', collect)
    .action(lazy(async () => (await import('./commands/leases.js')).createLease));
  leases
    .command('rm <ids...>')
    .alias('remove')
    .description('delete leases')
    .option('--sync', 'collect garbage before returning')
    .action(lazy(async () => (await import('./commands/leases.js')).removeLeases));

  program
    .command('gc')
    .description('collect garbage now')
    .action(lazy(async () => (await import('./commands/maintenance.js')).gcCommand));
  program
    .command('du')
    .description('disk use per image: unique and shared bytes, content and snapshots')
    .action(lazy(async () => (await import('./commands/maintenance.js')).duCommand));

  program
    .command('export <ref> <dest>')
    .description('copy the flattened root filesystem of an image to a directory, or to a .tar file')
    .option('--platform <os/arch[/variant]>', 'platform (default: this host)')
    .addOption(snapshotterOption())
    .action(lazy(async () => (await import('./commands/rootfs.js')).exportCommand));
  program
    .command('mount <ref> <target>')
    .description("mount a read-only view of an image's root filesystem")
    .option('--platform <os/arch[/variant]>', 'platform (default: this host)')
    .addOption(snapshotterOption())
    .action(lazy(async () => (await import('./commands/rootfs.js')).mountCommand));
  program
    .command('unmount <target>')
    .alias('umount')
    .description('unmount what `layerpool mount` mounted and remove its view')
    .action(lazy(async () => (await import('./commands/rootfs.js')).unmountCommand));

  registryOptions(
    program
      .command('serve')
      .description('own the root and serve the API on the socket (HTTP + JSON) until SIGTERM/SIGINT')
      .option('--allow-uid <uid>', 'also serve this user (repeatable; own user and root always)', collectIds)
      .option('--allow-gid <gid>', 'also serve members of this group (repeatable)', collectIds)
      .addOption(snapshotterOption('default snapshotter of the service'))
      .option('--workers <n>', 'worker threads for layer apply (default: cores)', integer(1)),
  ).action(lazy(async () => (await import('./commands/serve.js')).serveCommand));

  program
    .command('version')
    .description("print layerpool's version (and the service's, when one answers)")
    .action(lazy(async () => (await import('./commands/version.js')).versionCommand));
  program
    .command('demo')
    .description('start a local registry, push a sample image, pull it with progress, show where it went')
    .addOption(snapshotterOption())
    .option('--rm', 'remove the demo root at the end (by default it stays, to mount or export)')
    .action(lazy(async () => (await import('./demo.js')).demoCommand));

  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return ExitCode.Ok;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    const debug = process.env['LAYERPOOL_LOG'] === 'debug' || process.env['LAYERPOOL_LOG'] === 'trace';
    return reportError(err, { stderr: process.stderr, debug });
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
