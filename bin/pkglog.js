#!/usr/bin/env node
// The single `pkglog` command: dispatches to the module that owns each subcommand, loading only that module
// (the client and witness never load the log server's dependencies).
// It runs the compiled JavaScript in dist/ (built by `npm ci` through the `prepare` script, or `npm run build`):
// nothing compiles TypeScript at start-up. Keep this file free of heavy imports: `--version` and `--help` load nothing.

const COMMANDS = {
  serve: '../dist/server/cli.js',
  registry: '../dist/server/cli.js',
  witnesses: '../dist/server/cli.js',
  backup: '../dist/server/cli.js',
  fsck: '../dist/server/cli.js',
  witness: '../dist/witness/cli.js',
  evidence: '../dist/witness/cli.js',
  keygen: '../dist/client/cli.js',
  submit: '../dist/client/cli.js',
  verify: '../dist/client/cli.js',
  proof: '../dist/client/cli.js',
  monitor: '../dist/client/cli.js',
  audit: '../dist/client/cli.js',
};

const USAGE = `pkglog — a transparency log for software package uploads

Usage: pkglog <command> [options]   (pkglog <command> --help for details)
       pkglog --version

The log:
  serve                 run the log (HTTP API, sequencer, SQLite store)
  registry add|list     configure registries allowed to submit
  witnesses add|list    configure witnesses the log asks for cosignatures
  backup --out FILE     online backup of the log's database
  fsck                  check every stored entry, tile and checkpoint; name what is wrong
Witness:
  witness               run a witness; witness add-log|add-peer configure it
  evidence verify FILE  check fork evidence against a log's vkey
Clients:
  keygen                create a signer key file and print its vkey
  submit FILE           sign and submit an upload (publisher + registry keys)
  verify FILE           verify an artifact against the log and a trust policy
  proof FILE            fetch an offline tlog-proof for an artifact
  monitor               follow the log and report watched packages and keys
  audit                 replay the whole log and check every promise
`;

const [command, ...rest] = process.argv.slice(2);
if (command === '--version' || command === '-V') {
  const { readFileSync } = await import('node:fs');
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`pkglog ${version}\n`);
  process.exit(0);
}
if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
  process.stdout.write(USAGE);
  process.exit(command === undefined ? 2 : 0);
}
const target = COMMANDS[command];
if (target === undefined) {
  process.stderr.write(`pkglog: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  process.exit(2);
}
const url = new URL(target, import.meta.url);
let mod;
try {
  mod = await import(url.href);
} catch (e) {
  if (e?.code === 'ERR_MODULE_NOT_FOUND' && e.url === url.href) {
    process.stderr.write(`pkglog: ${target.slice(3)} is missing: build the JavaScript first with 'npm run build' (npm ci does it)\n`);
    process.exit(1);
  }
  throw e;
}
const code = await mod.main([command, ...rest]);
if (typeof code === 'number') process.exitCode = code;
