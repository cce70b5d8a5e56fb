#!/usr/bin/env node
// The single `pkglog` command: dispatches to the module that owns each subcommand, loading only that module
// (the client and witness never load the log server's dependencies).
// It runs the compiled JavaScript in dist/ (built by `npm ci` through the `prepare` script, or `npm run build`):
// nothing compiles TypeScript at start-up. Keep this file free of heavy imports: `--version` and `--help` load nothing.

const COMMANDS = {
  serve: '../dist/server/cli.js',
  registry: '../dist/server/cli.js',
  witnesses: '../dist/server/cli.js',
  mirrors: '../dist/server/cli.js',
  backup: '../dist/server/cli.js',
  fsck: '../dist/server/cli.js',
  migrate: '../dist/server/cli.js',
  witness: '../dist/witness/cli.js',
  evidence: '../dist/witness/cli.js',
  mirror: '../dist/mirror/cli.js',
  keygen: '../dist/client/cli.js',
  submit: '../dist/client/cli.js',
  verify: '../dist/client/cli.js',
  proof: '../dist/client/cli.js',
  monitor: '../dist/client/cli.js',
  audit: '../dist/client/cli.js',
  proxy: '../dist/client/cli.js',
  'verify-lock': '../dist/client/cli.js',
  history: '../dist/client/cli.js',
};

const USAGE = `pkglog — a transparency log for software package uploads

Usage: pkglog <command> [options]   (pkglog <command> --help or pkglog help <command> for details)
       pkglog --version

The log:
  serve                 run the log (HTTP API, sequencer, SQLite store)
  registry add|list     configure registries allowed to submit
  witnesses add|list    configure witnesses the log asks for cosignatures
  mirrors add|list      configure mirrors the log pushes its entries to
  backup --out FILE     online backup of the log's database
  fsck                  check every stored entry, tile and checkpoint; name what is wrong
  migrate               apply the store's pending schema migrations (SQLite or --database URL)
Witness:
  witness               run a witness; witness add-log|add-peer configure it
  evidence verify FILE  check fork evidence against a log's vkey
Mirror:
  mirror                run a mirror (C2SP tlog-mirror); mirror add-log configures it
Clients:
  keygen                create a signer key file and print its vkey
  submit FILE           sign and submit an upload (publisher + registry keys)
  verify FILE           verify an artifact against the log and a trust policy
  proof FILE            fetch an offline tlog-proof for an artifact
  monitor               follow the log and report watched packages and keys
  audit                 replay the whole log and check every promise
  proxy                 a verifying proxy for pip and npm (PyPI simple index, npm registry)
  verify-lock FILE      check every artifact a requirements.txt or package-lock.json pins
  history ECO/NAME      the proven complete history of a package (the log's index)
`;

const DEBUG = process.env.PKGLOG_DEBUG === '1';

/** One line for a failure nobody handled (a bug): the stack only with PKGLOG_DEBUG=1 (docs/errors.md). */
function crash(command, e) {
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`pkglog${command ? ` ${command}` : ''}: internal error: ${message}${DEBUG ? '' : ' (PKGLOG_DEBUG=1 shows the stack)'}\n`);
  if (DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
}

function usageError(message) {
  process.stderr.write(`pkglog: ${message} (see pkglog --help)\n`);
  process.exit(2);
}

const [first, ...args] = process.argv.slice(2);
if (first === '--version' || first === '-V') {
  const { readFileSync } = await import('node:fs');
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`pkglog ${version}\n`);
  process.exit(0);
}
if (first === '--help' || first === '-h' || (first === 'help' && args.length === 0)) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (first === undefined) {
  process.stderr.write(USAGE);
  process.exit(2);
}
if (first.startsWith('-')) usageError(`unknown option '${first}'`);
// `pkglog help CMD [SUB]` is `pkglog CMD [SUB] --help`.
const [command, rest] = first === 'help' ? [args[0], [...args.slice(1), '--help']] : [first, args];
if (!Object.hasOwn(COMMANDS, command)) usageError(`unknown command '${command}'`);
const target = COMMANDS[command];
const url = new URL(target, import.meta.url);
let mod;
try {
  mod = await import(url.href);
} catch (e) {
  if (e?.code === 'ERR_MODULE_NOT_FOUND' && e.url === url.href) {
    process.stderr.write(`pkglog: ${target.slice(3)} is missing: build the JavaScript first with 'npm run build' (npm ci does it)\n`);
    process.exit(1);
  }
  crash(command, e);
}
// Whatever escapes a running server or witness later is one line too.
process.on('uncaughtException', (e) => crash(command, e));
process.on('unhandledRejection', (e) => crash(command, e));
try {
  const code = await mod.main([command, ...rest]);
  if (typeof code === 'number') process.exitCode = code;
} catch (e) {
  crash(command, e);
}
